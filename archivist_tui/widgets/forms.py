"""Forms in dialogs: the add-a-restore-job form (input and output with path completion, the chain,
codec, priority) and the save-as form of the profile editor (a new name and its own description)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Label


class PathSuggester(Suggester):
    """Completes a path one component at a time, relative paths resolved under ``root``."""

    def __init__(self, root: Path):
        super().__init__(use_cache=False, case_sensitive=True)
        self.root = root

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        expanded = Path(os.path.expanduser(value))
        base = expanded if expanded.is_absolute() else self.root / expanded
        folder, stem = (base, "") if value.endswith("/") else (base.parent, base.name)
        try:
            names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir()
                           if p.name.startswith(stem) and not p.name.startswith("."))
        except OSError:
            return None
        if not names:
            return None
        return value + names[0][len(stem):]


@dataclass
class RestoreRequest:
    """What the form collected; ``argv()`` is the ``archivist restore ... --queue`` command."""

    input: str
    output: str
    models: list[str]
    codec: str = ""
    priority: int = 0
    device: str = "any"
    job_id: int | None = None  # set once the queue took it

    def argv(self) -> list[str]:
        args = ["restore", self.input, "-o", self.output]
        for m in self.models:
            args += ["-m", m]
        if self.codec:
            args += ["--codec", self.codec]
        args += ["--queue", "--priority", str(self.priority), "--device", self.device]
        return args


class AddRestoreForm(ModalScreen[RestoreRequest | None]):
    """``a`` on the Queue: validated before anything is queued; escape cancels.

    The form queues the job itself and closes only when the queue took it: a refusal (the form's
    own checks or the command's) shows as one line in the form, with everything typed kept.
    """

    DEFAULT_CSS = """
    AddRestoreForm { align: center middle; }
    AddRestoreForm > Vertical { width: 90%; max-width: 110; height: auto; border: round $accent;
                                padding: 0 1; background: $surface; }
    AddRestoreForm Input { margin: 0; width: 1fr; }
    AddRestoreForm .field { height: 1; margin-top: 1; }
    AddRestoreForm .field-label { width: 10; color: $text-muted; }
    AddRestoreForm #form-error { color: $error; height: auto; }
    AddRestoreForm .hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Queue it")]

    def __init__(self, root: Path, models: list[str]):
        super().__init__()
        self.root = root
        self.models = models
        self._sending = False

    def compose(self) -> ComposeResult:
        suggest = PathSuggester(self.root)
        default_chain = self.models[0] if self.models else ""  # your own models come before built-ins
        with Vertical():
            yield Label(f"Add a restore job   (paths relative to {self.root}; → accepts a completion)")
            # Each field has its name beside it: a placeholder vanishes once a value (0, any) is in.
            for name, label, value, placeholder, completes in (
                ("input", "input", "", "a video, an image or a folder", True),
                ("output", "output", "", "a file (video) or a folder (images)", True),
                ("chain", "chain", default_chain, "MODEL[:strength[:sigma]] ...", False),
                ("codec", "codec", "", "ffv1, x264, x265, prores, png, tiff (empty: default)", False),
                ("priority", "priority", "0", "a whole number, higher runs first", False),
                ("device", "GPU slot", "any", "any, cpu or cuda:N", False),
            ):
                with Horizontal(classes="field"):
                    yield Label(label, classes="field-label")
                    yield Input(value=value, placeholder=placeholder, id=f"form-{name}", compact=True,
                                suggester=suggest if completes else None)
                if name == "chain":
                    yield Label("models: " + (", ".join(self.models) or "none (import one on 4 Models)"),
                                classes="hint")
            yield Label("", id="form-error")
            yield Label("enter next field (queues on the last)   ctrl+s queue   escape cancel", classes="hint")

    def _value(self, name: str) -> str:
        return self.query_one(f"#form-{name}", Input).value.strip()

    def _resolve(self, value: str) -> Path:
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else self.root / p

    def validate(self) -> RestoreRequest | str:
        """The request, or the first problem as one line."""
        src = self._value("input")
        if not src:
            return "input: required"
        src_path = self._resolve(src)
        if not src_path.exists():
            return f"input: {src_path} does not exist"
        out = self._value("output")
        if not out:
            return "output: required"
        out_path = self._resolve(out)
        if not out_path.parent.is_dir():
            return f"output: folder {out_path.parent} does not exist"
        out_text = str(out_path)
        from engine.media import is_video

        if (not is_video(src_path) and out_path.suffix.lower() not in (".png", ".tif", ".tiff")
                and not out_text.endswith(os.sep)):
            out_text += os.sep  # images go into a folder, as the field says (a name without a suffix)
        # The engine's own rules (imported here, when the form is sent: no torch, and none at start-up):
        # the stage syntax with its strength and sigma ranges, the codecs, the device requests.
        from engine.errors import ArchivistError
        from engine.inference.chain import parse_stage
        from engine.queue.client import check_device_request
        from engine.video.codecs import CODECS  # (no numpy, no PyAV in the TUI process)

        chain = self._value("chain").split()
        if not chain:
            return "chain: at least one model"
        for text in chain:
            try:
                name = parse_stage(text).model
            except ArchivistError as exc:
                return f"chain: {exc}"
            if name not in self.models and not Path(os.path.expanduser(name)).is_file():
                return f"chain: {name!r} is neither a library model nor a model file"
        codec = self._value("codec")
        if codec and codec not in CODECS:
            return f"codec: {codec!r} not one of {', '.join(CODECS)}"
        try:
            priority = int(self._value("priority") or "0")
        except ValueError:
            return "priority: a whole number"
        try:
            device = check_device_request(self._value("device") or "any")
        except ArchivistError as exc:
            return f"device: {exc}"
        return RestoreRequest(str(src_path), out_text, chain, codec, priority, device)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        inputs = list(self.query(Input))
        index = inputs.index(event.input)
        if index + 1 < len(inputs):
            inputs[index + 1].focus()
        else:
            self.action_submit()

    def action_submit(self) -> None:
        if self._sending:
            return  # one submission at a time: a second ctrl+s would queue the job twice
        result = self.validate()
        error = self.query_one("#form-error", Label)
        if isinstance(result, str):
            error.update(f"✗ {result}")
            return
        self._sending = True
        error.update("queueing…")
        self.run_worker(lambda: self._send(result), thread=True, group="add-form", exit_on_error=False)

    def _send(self, request: RestoreRequest) -> None:
        """Runs ``archivist restore ... --queue`` (in a thread: it starts a child process)."""
        from archivist_tui.data import run_archivist

        result = run_archivist(request.argv())
        last = result.stdout.strip().splitlines()[-1:] or [""]
        if result.ok and last[0].strip().isdigit():
            request.job_id = int(last[0])  # `--queue` prints the new job's id
        self.app.call_from_thread(self._sent, request, result.ok, result.message)

    def _sent(self, request: RestoreRequest, ok: bool, message: str) -> None:
        self._sending = False
        if ok:
            self.dismiss(request)
        else:
            # The command's refusal (the output is the input, the output exists, ...): the form
            # stays, so nothing typed is lost and the next keys go to the form, not the job list.
            self.query_one("#form-error", Label).update(f"✗ {message}")

    def action_cancel(self) -> None:
        self.dismiss(None)


class SaveAsDialog(ModalScreen[tuple[str, str] | None]):
    """``S`` on Profiles: a new name and the new profile's (or mix's) own description.

    ``taken`` maps every name already used (shipped or yours, profile or mix) to what uses it;
    a taken name is refused here, before anything is written.
    """

    DEFAULT_CSS = """
    SaveAsDialog { align: center middle; }
    SaveAsDialog > Vertical { width: 90%; max-width: 100; height: auto; border: round $accent;
                              padding: 0 1; background: $surface; }
    SaveAsDialog #save-error { color: $error; height: auto; }
    SaveAsDialog .hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str, name: str, description: str, taken: dict[str, str]):
        super().__init__()
        self.what = what
        self.default_name = name
        self.default_description = description
        self.taken = taken

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Save the {self.what} as")
            yield Label("name (letters, digits, '_', '-', '.')", classes="hint")
            yield Input(value=self.default_name, id="save-name")
            yield Label("description (what it is for)", classes="hint")
            yield Input(value=self.default_description, id="save-description")
            yield Label("", id="save-error")
            yield Label("enter: on to the description   escape: cancel", classes="hint", id="save-keys")

    def on_descendant_focus(self, event) -> None:
        last = getattr(event.widget, "id", None) == "save-description"
        self.query_one("#save-keys", Label).update(
            f"enter: {'save' if last else 'on to the description'}   escape: cancel")

    def problem(self, name: str) -> str | None:
        """Why ``name`` cannot be used, or None."""
        from engine.degrade.schema import NAME_PATTERN

        if not NAME_PATTERN.match(name):
            return f"name {name!r} is not allowed; allowed: letters, digits, '_', '-', '.' (up to 64)"
        if name in self.taken:
            return f"name {name!r} is taken by {self.taken[name]}; choose another"
        return None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "save-name":
            self.query_one("#save-description", Input).focus()
            return
        name = self.query_one("#save-name", Input).value.strip()
        problem = self.problem(name)
        if problem:
            self.query_one("#save-error", Label).update(f"✗ {problem}")
            self.query_one("#save-name", Input).focus()
            return
        self.dismiss((name, self.query_one("#save-description", Input).value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)
