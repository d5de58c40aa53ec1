"""Small modal dialogs: a one-line prompt and a yes/no confirmation."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class Prompt(ModalScreen[str | None]):
    """Ask for one value; enter returns it, escape returns None."""

    DEFAULT_CSS = """
    Prompt { align: center middle; }
    Prompt > Vertical { width: 80%; max-width: 100; height: auto; border: round $accent; padding: 0 1;
                        background: $surface; }
    Prompt Label { width: 1fr; }
    Prompt .hint { color: $text-muted; }
    """
    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", hint: str = "", placeholder: str = ""):
        super().__init__()
        self.title_text = title
        self.value = value
        self.hint = hint
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(value=self.value, placeholder=self.placeholder, id="prompt-input")
            if self.hint:
                yield Label(self.hint, classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """``y`` confirms, anything else cancels."""

    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical { width: auto; max-width: 90; height: auto; border: round $warning; padding: 0 1;
                         background: $surface; }
    """
    BINDINGS = [("y", "yes", "Yes"), ("n", "no", "No"), ("escape", "no", "No")]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"{self.question}  [b]y[/b]es / [b]n[/b]o")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class LogView(ModalScreen[None]):
    """A job's log, following its end (re-read once a second); escape or q closes."""

    DEFAULT_CSS = """
    LogView { align: center middle; }
    LogView > Vertical { width: 95%; height: 90%; border: round $accent; background: $surface; }
    LogView #log-text { height: 1fr; overflow-y: auto; padding: 0 1; }
    """
    BINDINGS = [("escape", "close", "Close"), ("q", "close", "Close")]

    def __init__(self, title: str, path: str | None):
        super().__init__()
        self.title_text = title
        self.path = path

    def compose(self) -> ComposeResult:
        from textual.containers import VerticalScroll
        from textual.widgets import Static

        with Vertical():
            yield Label(self.title_text)
            with VerticalScroll(id="log-text"):
                yield Static("", id="log-body")

    def on_mount(self) -> None:
        self._reload()
        self.set_interval(1.0, self._reload)

    def _reload(self) -> None:
        from textual.widgets import Static

        from archivist_tui.data import log_tail

        lines = log_tail(self.path, lines=300, max_bytes=65536) if self.path else []
        text = "\n".join(lines) if lines else "(no log yet)"
        self.query_one("#log-body", Static).update(text)
        self.query_one("#log-text").scroll_end(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
