"""What every screen shares: the header line, the footer, and receiving polled data."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.screen import Screen
from textual.widgets import Footer

from archivist_tui.messages import ActionDone
from archivist_tui.widgets.header import HeaderLine


class ArchivistScreen(Screen):
    """A screen of the workstation; ``MODE`` names it, ``poll()`` runs in a thread worker."""

    MODE = ""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.MODE:  # the help panel's heading over this screen's keys
            cls.BINDING_GROUP_TITLE = f"{cls.MODE.title()} keys"

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """The keys in force: this screen's own first, then the workstation's, then the generic ones.

        Textual lists the focused widget's keys first (a table's cursor keys, focus and copy), so
        ``?`` opened on cursor movement. Which key wins a clash is decided before this: the order
        is only how the footer and the help panel list them.
        """
        bindings = super().active_bindings
        own = {b.action for b in type(self).BINDINGS if isinstance(b, Binding)}
        app_own = {b.action for b in type(self.app).BINDINGS if isinstance(b, Binding)}

        def rank(item: tuple[str, ActiveBinding]) -> int:
            node, action = item[1].node, item[1].binding.action
            if node is self and action in own:
                return 0
            return 1 if node is self.app and action in app_own else 2

        return dict(sorted(bindings.items(), key=rank))

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

    def run_and_report(self, args: list[str], done: str) -> None:
        """Run ``archivist ARGS`` as a child process and tell the app how it went.

        Call it from a thread worker (it waits for the child). The app shows ``done`` when the
        command succeeded, else the command's own one-line error.
        """
        from archivist_tui.data import run_archivist

        result = run_archivist(args)
        self.app.post_message(ActionDone(done if result.ok else result.message, result.ok))
