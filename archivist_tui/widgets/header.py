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
        """Tabs on the left, daemon and devices on the right; the tabs give way first.

        The device figure is what a glance is for, so it is never cut while the tabs can shrink:
        first the title goes, then the other screens' labels (their numbers stay), then the word
        "daemon".
        """
        width = self.size.width
        for right in self._rights():
            for left in self._lefts():
                if left.cell_len + right.cell_len + 1 <= width:
                    return left + Text(" " * (width - left.cell_len - right.cell_len)) + right
        return right

    def _tab(self, mode: str, label: str, short: bool) -> Text:
        if mode == self.current:
            return Text(f" {label} ", style="reverse bold")
        return Text(f" {label.split()[0] if short else label} ", style="dim")

    def _lefts(self):
        for title, short, sep in ((True, False, "  "), (False, False, " "), (False, True, "")):
            left = Text(" Archivist ", style="bold") if title else Text(" ")
            for i, (mode, label) in enumerate(SCREENS):
                if i or title:
                    left.append(sep)
                left.append_text(self._tab(mode, label, short))
            yield left

    def _rights(self):
        colour = {"up": "green", "down": "red"}.get(self.daemon, "yellow")
        label = {"none": "no queue"}.get(self.daemon, self.daemon)
        for word in ("daemon ", ""):
            right = Text(word)
            right.append("● ", style=colour)
            right.append(label)
            if self.devices:
                right.append(f"   {self.devices}")
            right.append(" ")
            yield right
