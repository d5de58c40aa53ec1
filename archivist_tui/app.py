"""The workstation: a Textual app with the Queue, Profiles, Training and Models screens.

The app is a client of the engine: it reads the store, the library and the runs' files from a
thread worker that posts :class:`Polled` messages and re-schedules itself with ``set_timer`` (so
polls never pile up), and it asks the engine to act by starting ``archivist`` child processes.
It never imports torch.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from archivist_tui.messages import ActionDone, Polled
from archivist_tui.screens.base import ArchivistScreen
from archivist_tui.screens.models import ModelsScreen
from archivist_tui.screens.profiles import ProfilesScreen
from archivist_tui.screens.queue import QueueScreen
from archivist_tui.screens.training import TrainingScreen

POLL_SECONDS = 1.0


class ArchivistApp(App):
    """``archivist`` with no arguments."""

    TITLE = "Archivist"
    BINDING_GROUP_TITLE = "Everywhere"
    MODES = {"queue": QueueScreen, "profiles": ProfilesScreen, "training": TrainingScreen, "models": ModelsScreen}
    BINDINGS = [
        Binding("1", "switch_mode('queue')", "Queue", show=False),
        Binding("2", "switch_mode('profiles')", "Profiles", show=False),
        Binding("3", "switch_mode('training')", "Training", show=False),
        Binding("4", "switch_mode('models')", "Models", show=False),
        Binding("question_mark", "toggle_help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+p", "command_palette", "Commands", show=False),
    ]

    def __init__(self, start: str = "queue", images: str = "halfcell", poll_seconds: float = POLL_SECONDS,
                 files_root: str | None = None):
        super().__init__()
        self.files_root = files_root
        self.start_mode = start if start in self.MODES else "queue"
        self.image_mode = images
        self.poll_seconds = poll_seconds
        self._polling = False
        self._poll_again = False
        self._timer = None

    # -- life cycle --------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.switch_mode(self.start_mode)
        try:
            self._install_hangup()
        except (ValueError, OSError):  # not the main thread (tests), no signals here
            pass
        self.poll()

    def _install_hangup(self) -> None:
        """SSH drop → SIGHUP: leave quietly (jobs run in the daemon, not here).

        The terminal is gone, so restoring it may block or fail: ask the app to exit, and if it
        has not within two seconds, end the process outright (it holds no state of its own).
        """
        import asyncio
        import threading

        loop = asyncio.get_running_loop()

        def hangup(signum, frame) -> None:
            timer = threading.Timer(2.0, os._exit, (0,))
            timer.daemon = True
            timer.start()
            loop.call_soon_threadsafe(self.exit)

        signal.signal(signal.SIGHUP, hangup)

    # -- polling -----------------------------------------------------------------------------
    def poll(self) -> None:
        """Read the current screen's data now (at most one poll in flight)."""
        if self._polling:
            self._poll_again = True
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._polling = True
        self.run_worker(self._poll_worker, thread=True, group="poll", exit_on_error=False)

    def _poll_worker(self) -> None:
        from archivist_tui import data

        mode = self.current_mode
        screen_cls = self.MODES.get(mode)
        try:
            payload = screen_cls.poll() if screen_cls is not None else None
        except Exception as exc:  # a half-written file, a locked store: show it, try again
            payload = exc
        if _terminal_gone():
            self.call_from_thread(self.exit)
            return
        self.post_message(Polled(mode, data.daemon_state(), data.device_summary(), payload))

    def on_polled(self, message: Polled) -> None:
        self._polling = False
        if not self.is_running or not self.screen_stack:
            return  # quitting
        screen = self.screen
        if isinstance(screen, ArchivistScreen):
            screen.set_header(message.daemon, message.devices)
            if screen.MODE == message.mode:
                if isinstance(message.data, Exception):
                    self.notify(f"{message.data}", severity="error", timeout=4)
                else:
                    screen.show(message.data)
        if self._poll_again:
            self._poll_again = False
            self.poll()
        else:
            self._timer = self.set_timer(self.poll_seconds, self.poll)

    def on_action_done(self, message: ActionDone) -> None:
        self.notify(message.text, severity="information" if message.ok else "error",
                    timeout=3 if message.ok else 8)
        self.poll()

    def switch_mode(self, mode: str):  # type: ignore[override]
        result = super().switch_mode(mode)
        self.call_after_refresh(self.poll)
        return result

    # -- help and the command palette --------------------------------------------------------
    def action_toggle_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, label in (("queue", "Queue"), ("profiles", "Profiles"), ("training", "Training"),
                            ("models", "Models")):
            yield SystemCommand(f"Go to {label}", f"Show the {label} screen",
                                lambda m=mode: self.switch_mode(m))
        # Every action of the current screen, named as in its footer.
        for binding in getattr(screen, "BINDINGS", []):
            if isinstance(binding, Binding) and binding.description:
                yield SystemCommand(f"{screen.MODE.title()}: {binding.description}" if hasattr(screen, "MODE")
                                    else binding.description, f"key {binding.key_display or binding.key}",
                                    lambda a=binding.action, s=screen: self.call_later(s.run_action, a))


def _terminal_gone() -> bool:
    """True when our terminal has gone away (pty closed, parent shell dead)."""
    import termios

    stdin = sys.__stdin__
    try:
        if stdin is None or not os.isatty(stdin.fileno()):
            return False  # headless (tests): nothing to lose
        termios.tcgetattr(stdin.fileno())
    except (OSError, ValueError, termios.error):
        return True
    return os.getppid() == 1


def run(images: str = "auto", start: str = "queue", root: str | None = None) -> int:
    """Open the TUI; returns the exit code."""
    from archivist_tui.output import guard_screen_stream
    from archivist_tui.terminal import why_no_workstation
    from archivist_tui.widgets.image import resolve_mode
    from engine.errors import ArchivistError

    problem = why_no_workstation()
    if problem is not None:
        # Without a terminal Textual would read an exhausted stdin forever, and on one that cannot
        # move its cursor it would print escape codes as text: say so in one line and leave.
        raise ArchivistError(f"the workstation needs a terminal ({problem}); "
                             "for scripts use the commands: archivist --help")
    # Textual draws on stderr: in a locale that cannot encode the workstation's symbols (C, ASCII,
    # Latin-1) each one becomes a look-alike of the same width, so the screen stays aligned.
    guard_screen_stream(sys.__stderr__)
    mode = resolve_mode(images)
    if mode in ("auto", "kitty", "sixel"):
        # textual-image asks the terminal what it supports when imported; the answers must come
        # back before Textual owns stdin, or they arrive as key presses.
        try:
            import textual_image.widget  # noqa: F401
        except Exception:
            mode = "halfcell"
    app = ArchivistApp(start=start, images=mode, files_root=root)
    try:
        app.run()
    except (EOFError, BrokenPipeError):
        pass
    return app.return_code or 0
