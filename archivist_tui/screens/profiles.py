"""2 Profiles: the degradation profiles and mixes, an effect editor validated by the schema, and a
sample frame degraded with the current values (rendered in a child process).

The working copy is the profile's document (``Profile.to_document()``); every edit re-validates
it with ``engine.degrade.schema.validate_profile`` and shows the schema's message when it fails.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from archivist_tui.screens.base import ArchivistScreen
from archivist_tui.widgets.dialogs import Prompt
from archivist_tui.widgets.image import InlineImage
from archivist_tui.widgets.tables import fill_table


def _fmt_value(v: Any) -> str:
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        return f"{v[0]:g}–{v[1]:g}"
    if isinstance(v, (list, tuple)):
        return "/".join(str(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def parse_assignments(text: str) -> dict[str, Any]:
    """``probability=0.7 strength=4-7 codec=mpeg2/jpeg on=yes`` → a dict of document values."""
    out: dict[str, Any] = {}
    for item in text.split():
        if "=" not in item:
            raise ValueError(f"{item!r}: write KEY=VALUE (a range as LOW-HIGH)")
        key, value = item.split("=", 1)
        out[key] = _parse_value(value)
    return out


def _parse_value(value: str) -> Any:
    def num(s: str) -> Any:
        try:
            return int(s)
        except ValueError:
            try:
                return float(s)
            except ValueError:
                return s

    if value.lower() in ("yes", "true", "on"):
        return True
    if value.lower() in ("no", "false", "off"):
        return False
    if "/" in value:
        return [num(v) for v in value.split("/")]
    if "-" in value[1:]:
        i = value.index("-", 1)
        low, high = num(value[:i]), num(value[i + 1:])
        if isinstance(low, (int, float)) and isinstance(high, (int, float)):
            return [low, high]
    return num(value)


EFFECT_COLUMNS = (("effect", "EFFECT", 12), ("on", "ON", 2), ("prob", "PROB", 4), ("values", "VALUES", 20))


class ProfilesScreen(ArchivistScreen):
    MODE = "profiles"
    CSS_PATH = "profiles.tcss"
    BINDINGS = [
        Binding("enter", "edit_effect", "Edit effect"),
        Binding("space", "toggle_effect", "On/off"),
        Binding("s", "reroll", "Re-roll seed"),
        Binding("f", "frame", "Frame"),
        Binding("ctrl+s", "save", "Save"),
        Binding("S", "save_as", "Save as"),
        Binding("n", "new", "New"),
        Binding("m", "mix", "Mix weights"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[Any] = []
        self.current: Any = None  # library Entry
        self.doc: dict[str, Any] | None = None
        self.valid = True
        self.seed = 1234
        self.frame: Path | None = None
        self._names: tuple = ()
        self._render_timer = None

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        with Horizontal(id="profiles-body"):
            yield OptionList(id="profiles-list")
            with Vertical(id="profiles-editor"):
                yield Static("", id="profiles-title")
                yield DataTable(id="profiles-effects", cursor_type="row")
                yield Static("", id="profiles-status")
            with Vertical(id="profiles-side"):
                yield Static("", classes="info", id="profiles-seed")
                with Vertical(id="profiles-images"):
                    yield InlineImage(self.images, id="profiles-clean")
                    yield InlineImage(self.images, id="profiles-damaged")
                yield Static("", classes="info", id="profiles-drawn")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        fill_table(self.query_one(DataTable), EFFECT_COLUMNS, [])
        self._show_seed()

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "narrow")

    @staticmethod
    def poll() -> Any:
        from engine.degrade.library import list_entries

        return list_entries()

    def show(self, data: Any) -> None:
        names = tuple((e.name, e.kind, e.origin) for e in data)
        if names == self._names:
            return
        self._names = names
        self.entries = list(data)
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([Option(f"{'mix ' if e.kind == 'mix' else ''}{e.name}{' *' if e.origin == 'user' else ''}",
                                    id=f"{e.kind}:{e.name}") for e in self.entries])
        if self.current is None and self.entries:
            options.highlighted = 0
        elif self.current is not None:
            keys = [f"{e.kind}:{e.name}" for e in self.entries]
            key = f"{self.current.kind}:{self.current.name}"
            if key in keys:
                options.highlighted = keys.index(key)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        for e in self.entries:
            if f"{e.kind}:{e.name}" == event.option.id:
                self._load(e)

    def _load(self, entry: Any) -> None:
        from engine.degrade import load_profile
        from engine.degrade.schema import Mix

        if self.current is not None and self.current.path == entry.path and self.doc is not None:
            return
        self.current = entry
        try:
            loaded = load_profile(entry.path)
        except Exception as exc:
            self.doc = None
            self._status(str(exc), False)
            return
        if isinstance(loaded, Mix):
            self.doc = None
            fill_table(self.query_one(DataTable), EFFECT_COLUMNS,
                       [(p.name, (p.name, "", f"{w:.2f}", "weight")) for p, w in loaded.entries])
            self.query_one("#profiles-title", Static).update(f"mix {loaded.name}: {loaded.description}")
            self._status("✓ valid mix (m edits the weights)", True)
            self._schedule_render()
            return
        self.doc = loaded.to_document()
        self._fill()
        self._status("✓ valid", True)
        self._schedule_render()

    def _fill(self) -> None:
        assert self.doc is not None
        self.query_one("#profiles-title", Static).update(
            Text.assemble((self.doc["name"], "bold"), f"  {self.doc.get('description', '')}"[:200]))
        rows = []
        for name, settings in self.doc.get("effects", {}).items():
            values = " ".join(f"{k} {_fmt_value(v)}" for k, v in settings.items() if k not in ("enabled", "probability"))
            on = Text("✓", style="green") if settings.get("enabled", True) else Text("·", style="dim")
            rows.append((name, (name, on, f"{settings.get('probability', 1.0):.2f}", values)))
        fill_table(self.query_one(DataTable), EFFECT_COLUMNS, rows)

    def _status(self, text: str, ok: bool) -> None:
        status = self.query_one("#profiles-status", Static)
        status.update(text)
        status.set_class(not ok, "invalid")

    def _show_seed(self) -> None:
        frame = self.frame.name if self.frame else "sample cel"
        self.query_one("#profiles-seed", Static).update(f"seed {self.seed}  frame {frame}  (s re-roll, f frame)")

    def _validate(self) -> bool:
        from engine.degrade.schema import validate_profile

        assert self.doc is not None
        try:
            validate_profile(self.doc, f"{self.doc.get('name')} (unsaved)")
        except Exception as exc:
            self.valid = False
            self._status(f"✗ {exc}", False)
            return False
        self.valid = True
        self._status("✓ valid (unsaved)", True)
        return True

    # -- editing -----------------------------------------------------------------------------
    def _selected_effect(self) -> str | None:
        table = self.query_one(DataTable)
        if self.doc is None or table.cursor_row is None or not table.row_count:
            return None
        return list(self.doc["effects"])[table.cursor_row]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # the table takes enter before the screen's binding does
        self.action_edit_effect()

    def action_toggle_effect(self) -> None:
        name = self._selected_effect()
        if name is None:
            return
        settings = self.doc["effects"][name]  # type: ignore[index]
        settings["enabled"] = not settings.get("enabled", True)
        self._fill()
        if self._validate():
            self._schedule_render()

    def action_edit_effect(self) -> None:
        name = self._selected_effect()
        if name is None:
            return
        settings = self.doc["effects"][name]  # type: ignore[index]
        current = " ".join(f"{k}={self._unparse(v)}" for k, v in settings.items() if k != "enabled")
        from engine.degrade.registry import EFFECTS

        bounds = "  ".join(f"{k} {spec.bounds[0]:g}..{spec.bounds[1]:g}" for k, spec in EFFECTS[name].specs.items()
                           if getattr(spec, "kind", "") == "range")

        def got(answer: str | None) -> None:
            if answer is None:
                return
            try:
                changes = parse_assignments(answer)
            except ValueError as exc:
                self._status(f"✗ {exc}", False)
                return
            old = dict(settings)
            settings.update(changes)
            self._fill()
            if self._validate():
                self._schedule_render()
            else:
                settings.clear()
                settings.update(old)
                self._fill()

        self.app.push_screen(Prompt(f"Edit {name}: KEY=VALUE ... (ranges LOW-HIGH)", value=current,
                                    hint=f"probability 0..1  {bounds}"), got)

    @staticmethod
    def _unparse(v: Any) -> str:
        if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
            return f"{v[0]:g}-{v[1]:g}"
        if isinstance(v, (list, tuple)):
            return "/".join(str(x) for x in v)
        return f"{v:g}" if isinstance(v, float) else str(v)

    def action_reroll(self) -> None:
        self.seed = random.randrange(1, 100_000)
        self._show_seed()
        self._schedule_render()

    def action_frame(self) -> None:
        def got(path: str | None) -> None:
            if path is None:
                return
            p = Path(path).expanduser() if path else None
            if p is not None and not p.is_file():
                self.notify(f"{p}: no such image", severity="error")
                return
            self.frame = p
            self._show_seed()
            self._schedule_render()

        self.app.push_screen(Prompt("Sample frame: an image path (empty: the sample cel frame)",
                                    value=str(self.frame or "")), got)

    def _write_yaml(self, path: Path, doc: dict[str, Any]) -> None:
        import yaml

        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=110), encoding="utf-8")
        tmp.replace(path)

    def action_save(self) -> None:
        if self.doc is None or self.current is None:
            return
        if self.current.origin != "user":
            self.notify(f"{self.current.name} is shipped: S saves a copy under a new name", severity="warning")
            return
        if not self._validate():
            self.notify("not saved: fix the invalid value first", severity="error")
            return
        self._write_yaml(self.current.path, self.doc)
        self._status(f"✓ saved {self.current.path}", True)

    def action_save_as(self) -> None:
        if self.doc is None:
            return

        def got(name: str | None) -> None:
            if not name:
                return
            from engine.degrade.library import shipped_names, user_profiles_dir
            from engine.degrade.schema import NAME_PATTERN

            if not NAME_PATTERN.match(name) or name in shipped_names():
                self.notify(f"profile name {name!r} not allowed (letters, digits, '_', '-', '.'; not a shipped name)",
                            severity="error")
                return
            doc = dict(self.doc, name=name)  # type: ignore[arg-type]
            if not self._validate():
                return
            path = user_profiles_dir(create=True) / f"{name}.yaml"
            self._write_yaml(path, doc)
            self.current = None
            self.doc = None
            self._names = ()
            self.notify(f"saved {path}")
            self.app.poll()

        self.app.push_screen(Prompt("Save the profile as", value=f"{self.doc['name']}-copy"), got)

    def action_new(self) -> None:
        def got(name: str | None) -> None:
            if not name:
                return
            from engine.degrade.library import new_profile

            template = self.doc["name"] if self.doc else "normal"
            try:
                path = new_profile(name, template)
            except Exception as exc:
                self.notify(str(exc), severity="error")
                return
            self.notify(f"created {path}")
            self._names = ()
            self.app.poll()

        self.app.push_screen(Prompt("New profile name (a copy of the current one)"), got)

    def action_mix(self) -> None:
        if self.current is None or self.current.kind != "mix":
            self.notify("select a mix to edit its weights", severity="warning")
            return
        import yaml

        doc = yaml.safe_load(self.current.path.read_text(encoding="utf-8"))
        weights = " ".join(f"{k}={v}" for k, v in (doc.get("profiles") or {}).items())

        def got(answer: str | None) -> None:
            if not answer:
                return
            from engine.degrade.library import load_named_profile, user_profiles_dir
            from engine.degrade.schema import validate_mix

            try:
                new = dict(doc, profiles=parse_assignments(answer))
                validate_mix(new, f"{self.current.name} (unsaved)", load_named_profile)
            except Exception as exc:
                self._status(f"✗ {exc}", False)
                return
            target = self.current.path if self.current.origin == "user" else None
            if target is None:
                folder = user_profiles_dir(create=True) / "mixes"
                folder.mkdir(exist_ok=True)
                new["name"] = f"{doc['name']}-custom"
                target = folder / f"{new['name']}.yaml"
            self._write_yaml(target, new)
            self.notify(f"saved {target}")
            self.current = None
            self._names = ()
            self.app.poll()

        self.app.push_screen(Prompt("Mix weights: PROFILE=WEIGHT ...", value=weights,
                                    hint="weights are normalised to sum to 1 by the schema"), got)

    # -- the preview -------------------------------------------------------------------------
    def _schedule_render(self) -> None:
        if self._render_timer is not None:
            self._render_timer.stop()
        self._render_timer = self.set_timer(0.4, self._start_preview)

    def _start_preview(self) -> None:
        import yaml

        from archivist_tui.data import tui_cache_dir

        if self.current is None:
            return
        cache = tui_cache_dir()
        if self.doc is not None:
            if not self.valid:
                return
            source = cache / "profile-preview.yaml"
            source.write_text(yaml.safe_dump(self.doc, sort_keys=False), encoding="utf-8")
        else:
            source = self.current.path
        self._render_worker(str(source), self.seed, str(self.frame) if self.frame else None)

    @work(thread=True, exclusive=True, group="profiles-preview")
    def _render_worker(self, source: str, seed: int, frame: str | None) -> None:
        from archivist_tui.app import ActionDone
        from archivist_tui.data import run_render, tui_cache_dir

        cache = tui_cache_dir()
        clean, damaged = cache / "profile-clean.png", cache / "profile-damaged.png"
        args = ["degrade", str(clean), str(damaged), "--profile", source, "--seed", str(seed)]
        if frame:
            args += ["--frame", frame]
        result = run_render(args, timeout=120, slot="profiles-preview")
        if result.stderr == "superseded":
            return
        if not result.ok:
            self.app.post_message(ActionDone(result.message, False))
            return
        try:
            record = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            record = {}
        self.app.call_from_thread(self._show_images, clean, damaged, record)

    def _show_images(self, clean: Path, damaged: Path, record: dict[str, Any]) -> None:
        self.query_one("#profiles-clean", InlineImage).set_path(clean)
        self.query_one("#profiles-damaged", InlineImage).set_path(damaged)
        drawn: list[str] = []
        for name, effect in (record.get("effects") or {}).items():
            if isinstance(effect, dict) and effect.get("applied"):
                params = effect.get("params") or {}
                first = next(((k, v) for k, v in params.items() if isinstance(v, (int, float))
                              and not isinstance(v, bool)), None)
                drawn.append(f"{name}.{first[0]}={first[1]:.3g}" if first else name)
        self.query_one("#profiles-drawn", Static).update(f"drawn: {' '.join(drawn)}" if drawn else "")
