"""The one header line: screen tabs, the daemon's state and the devices at a glance."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

SCREENS = (("queue", "1 Queue"), ("profiles", "2 Profiles"), ("training", "3 Training"), ("models", "4 Models"))


class HeaderLine(Widget):
    """`` Archivist   1 Queue  2 Profiles  3 Training  4 Models      daemon ● up   cpu 12%``."""

    DEFAULT_CSS = """
    HeaderLine { height: 1; background: $panel; color: $text; }
    """

    daemon: reactive[str] = reactive("none")
    devices: reactive[str] = reactive("")

    def __init__(self, current: str, **kwargs):
        super().__init__(**kwargs)
        self.current = current

    def render(self) -> Text:
        left = Text(" Archivist ", style="bold")
        for mode, label in SCREENS:
            left.append("  ")
            if mode == self.current:
                left.append(f" {label} ", style="reverse bold")
            else:
                left.append(f" {label} ", style="dim")
        colour = {"up": "green", "down": "red"}.get(self.daemon, "yellow")
        label = {"none": "no queue"}.get(self.daemon, self.daemon)
        right = Text("daemon ")
        right.append("● ", style=colour)
        right.append(label)
        if self.devices:
            right.append(f"   {self.devices}")
        right.append(" ")
        gap = max(1, self.size.width - left.cell_len - right.cell_len)
        if left.cell_len + right.cell_len + 1 > self.size.width:
            return left + Text(" ") + right
        return left + Text(" " * gap) + right
