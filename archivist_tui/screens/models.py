"""4 Models: the library, its actions, a before/after preview and a speed test.

Listing reads safetensors headers here; every change (import, fetch, rename, role, export,
remove) and every picture or timing runs in a child process (``archivist models ...``,
``archivist preview``, ``archivist models speed``) so torch never loads in the TUI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from archivist_tui.messages import ActionDone
from archivist_tui.screens.base import ArchivistScreen
from archivist_tui.widgets.dialogs import Confirm, Prompt
from archivist_tui.widgets.image import InlineImage
from archivist_tui.widgets.tables import fill_table

EXPORT_FORMATS = ("pth", "safetensors", "onnx")
COLUMNS = (("name", "NAME", 8), ("arch", "ARCH", 7), ("size", "SIZE", 6), ("role", "ROLE", 9),
           ("params", "PARAMS", 6), ("iters", "ITERS", 5), ("sha256", "SHA256", 12))


class ModelsScreen(ArchivistScreen):
    MODE = "models"
    CSS_PATH = "models.tcss"
    BINDINGS = [
        Binding("i", "import_model", "Import"),
        Binding("f", "fetch", "Fetch"),
        Binding("e", "export", "Export"),
        Binding("n", "rename", "Rename"),
        Binding("o", "role", "Role"),
        Binding("x", "remove", "Remove"),
        Binding("v", "preview", "Preview"),
        Binding("c", "preview_chain", "Chain preview", show=False),
        Binding("g", "frame", "Frame", show=False),
        Binding("b", "speed", "Speed test"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[Any] = []
        self.frame: Path | None = None
        self._signature: tuple = ()

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        with Horizontal(id="models-body"):
            table = DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
            yield table
            with Vertical(id="models-side"):
                yield Static("before │ after   (v preview, c chain, g frame)", classes="info", id="models-caption")
                yield InlineImage(self.images, id="models-preview")
                yield Static("frame: sample cel (g change)", classes="info", id="models-frame")
                yield Static("", id="models-detail")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        fill_table(self.query_one(DataTable), COLUMNS, [])

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "narrow")

    # -- data --------------------------------------------------------------------------------
    @staticmethod
    def poll() -> Any:
        from archivist_tui.data import list_models

        return list_models()

    def show(self, data: Any) -> None:
        from archivist_tui.data import human_count

        signature = tuple((e.name, e.role, e.sha256, e.size_bytes) for e in data)
        if signature == self._signature:
            return
        self._signature = signature
        table = self.query_one(DataTable)
        selected = self.selected.name if self.selected else None
        self.entries = list(data)
        fill_table(table, COLUMNS, [(e.name, (Text(e.name, style="italic" if e.builtin else ""), e.arch, e.size_label,
                                              e.role, human_count(e.params), human_count(e.iterations),
                                              e.sha256[:12])) for e in self.entries])
        if selected in {e.name for e in self.entries}:
            table.move_cursor(row=[e.name for e in self.entries].index(selected))
        self._show_detail()

    @property
    def selected(self) -> Any | None:
        table = self.query_one(DataTable)
        if not self.entries or table.cursor_row is None or table.cursor_row >= len(self.entries):
            return None
        return self.entries[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        e = self.selected
        text = "" if e is None else (
            f"{e.name}  {e.arch} ×{e.scale}  {e.size_bytes / 1e6:.1f} MB"
            f"{'  built-in' if e.builtin else ''}\nsha256 {e.sha256}\nsource {e.source or '–'}")
        self.query_one("#models-detail", Static).update(text)

    # -- actions -----------------------------------------------------------------------------
    def _need(self) -> Any | None:
        e = self.selected
        if e is None:
            self.notify("no model selected (i imports one)", severity="warning")
        return e

    def _cli(self, args: list[str], done: str) -> None:
        self._run_cli(args, done)

    @work(thread=True, group="models-action")
    def _run_cli(self, args: list[str], done: str) -> None:
        self.run_and_report(args, done)

    def action_import_model(self) -> None:
        def got(path: str | None) -> None:
            if not path:
                return
            name = Path(path).expanduser().stem
            self._cli(["models", "import", str(Path(path).expanduser())], f"imported {name}")

        self.app.push_screen(Prompt("Import a model file (.pth, .ckpt, .safetensors)", placeholder="/path/to/model.pth"),
                             got)

    def action_fetch(self) -> None:
        try:
            from engine.models.catalog import load_catalog

            names = ", ".join(c.name for c in load_catalog())
        except Exception as exc:  # the catalog is package data; show what went wrong
            names = f"(catalog unreadable: {exc})"

        def got(name: str | None) -> None:
            if name:
                self.notify(f"fetching {name}…")
                self._cli(["models", "fetch", *name.split()], f"fetched {name}")

        self.app.push_screen(Prompt("Fetch from the catalog: name(s)", hint=f"catalog: {names}"), got)

    def action_export(self) -> None:
        e = self._need()
        if e is None:
            return

        def got(answer: str | None) -> None:
            if not answer:
                return
            parts = answer.split(maxsplit=1)
            fmt = parts[0].lower()
            out = parts[1] if len(parts) > 1 else "."
            if fmt not in EXPORT_FORMATS:
                self.notify(f"export: {parts[0]!r} is not a format; formats are {', '.join(EXPORT_FORMATS)}",
                            severity="error")
                return
            self._cli(["models", "export", e.name, "--format", fmt, "-o", str(Path(out).expanduser())],
                      f"exported {e.name} as {fmt} to {out}")

        self.app.push_screen(Prompt(f"Export {e.name}: FORMAT [OUTPUT]", value="onnx ",
                                    hint="formats: pth, safetensors, onnx; output file or folder (default .)"), got)

    def action_rename(self) -> None:
        e = self._need()
        if e is None:
            return

        def got(new: str | None) -> None:
            if new and new != e.name and new in {m.name for m in self.entries}:
                self.notify(f"rename: a model named {new!r} is in the library already; choose another name",
                            severity="error")
                return
            if new and new != e.name:
                self._cli(["models", "rename", e.name, new], f"renamed {e.name} to {new}")

        self.app.push_screen(Prompt(f"Rename {e.name} to", value=e.name), got)

    def action_role(self) -> None:
        e = self._need()
        if e is None:
            return
        from engine.models.names import ROLES

        def got(role: str | None) -> None:
            if role and role not in ROLES:
                self.notify(f"role: {role!r} is not a role; roles are {', '.join(ROLES)}", severity="error")
                return
            if role and role != e.role:
                self._cli(["models", "role", e.name, role], f"{e.name} is now {role}")

        self.app.push_screen(Prompt(f"Role of {e.name}", value=e.role, hint="roles: " + ", ".join(ROLES)), got)

    def action_remove(self) -> None:
        e = self._need()
        if e is None:
            return

        def got(yes: bool | None) -> None:
            if yes:
                self._cli(["models", "remove", e.name], f"removed {e.name}")

        self.app.push_screen(Confirm(f"Remove {e.name} from the library?"), got)

    def action_frame(self) -> None:
        def got(path: str | None) -> None:
            if path is None:
                return
            if not path:
                self.frame = None
                self.query_one("#models-frame", Static).update("frame: sample cel (g change)")
                return
            p = Path(path).expanduser()
            if not p.is_file():
                self.notify(f"{p}: no such image", severity="error")
                return
            self.frame = p
            self.query_one("#models-frame", Static).update(f"frame: {p.name}   (g change)")

        self.app.push_screen(Prompt("Preview frame: an image path (empty: the sample cel frame)",
                                    value=str(self.frame or "")), got)

    def action_preview(self) -> None:
        e = self._need()
        if e is not None:
            self._render_preview([e.name])

    def action_preview_chain(self) -> None:
        e = self.selected

        def got(answer: str | None) -> None:
            if answer:
                self._render_preview(answer.split())

        self.app.push_screen(Prompt("Chain: MODEL[:strength[:sigma]] ...", value=f"{e.name}:1.0" if e else ""), got)

    @work(thread=True, exclusive=True, group="models-preview")
    def _render_preview(self, stages: list[str]) -> None:
        from archivist_tui.data import run_archivist, tui_cache_dir
        from engine.errors import os_error_line

        try:
            out = tui_cache_dir() / "models-preview.png"
        except OSError as exc:  # no room for previews (a read-only home): say so, keep the app
            self.app.post_message(ActionDone(f"preview not rendered: {os_error_line(exc)}", False))
            return
        args = ["preview", *([str(self.frame)] if self.frame is not None else []), "-o", str(out),
                "--layout", "split", "--overwrite"]
        for s in stages:
            args += ["-m", s]
        self.app.call_from_thread(self.query_one("#models-caption", Static).update,
                                  f"rendering {' › '.join(stages)}…")
        result = run_archivist(args, slot="models-preview")
        if result.stderr == "superseded":
            return
        if result.ok:
            self.app.call_from_thread(self._show_preview, out, " › ".join(stages))
        else:
            self.app.post_message(ActionDone(result.message, False))

    def _show_preview(self, path: Path, label: str) -> None:
        self.query_one("#models-caption", Static).update(f"before │ after   chain: {label}")
        self.query_one(InlineImage).set_path(path)

    def action_speed(self) -> None:
        e = self._need()
        if e is not None:
            self.notify(f"speed test of {e.name}…")
            self._speed(e.name)

    @work(thread=True, exclusive=True, group="models-speed")
    def _speed(self, name: str) -> None:
        from archivist_tui.data import run_archivist

        result = run_archivist(["models", "speed", "-m", name, "--size", "128", "--seconds", "1", "--json"])
        if not result.ok:
            self.app.post_message(ActionDone(result.message, False))
            return
        doc = json.loads(result.stdout)
        self.app.post_message(ActionDone(
            f"{name}: {doc['fps']:.1f} fps at {doc['size']}×{doc['size']} on {doc['device']}", True))
