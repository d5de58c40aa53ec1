"""What every screen shares: the header line, the footer, and receiving polled data."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from archivist_tui.widgets.header import HeaderLine


class ArchivistScreen(Screen):
    """A screen of the workstation; ``MODE`` names it, ``poll()`` runs in a thread worker."""

    MODE = ""

    def compose_header(self) -> ComposeResult:
        yield HeaderLine(self.MODE, id="header")

    def compose_footer(self) -> ComposeResult:
        yield Footer()

    @staticmethod
    def poll() -> Any:
        """Read what this screen shows (runs in a thread: no widgets here)."""
        return None

    def show(self, data: Any) -> None:
        """Show what ``poll`` read (on the UI thread)."""

    def set_header(self, daemon: str, devices: str) -> None:
        for header in self.query(HeaderLine):
            header.daemon = daemon
            header.devices = devices

    @property
    def images(self) -> str:
        return getattr(self.app, "image_mode", "halfcell")
