"""2 Profiles: the degradation profiles and mixes, a form per effect built from the schema's
declarations, and a sample frame degraded with the current values (rendered in a child process).

The working copy of the selected profile is its document (``Profile.to_document()``; a mix's
``name``, ``description`` and ``profiles``). Only values the schema allows enter it: a field the
schema refuses is marked with the schema's message and kept out (``invalid``) until it is fixed,
and the save keys refuse while any field is refused. Unsaved edits stay with their profile while
you look at another (``drafts``; the list marks them with •).

Each change schedules a preview a moment after the last one; renders are numbered
(``generation``) and a render older than the one on screen is dropped, whatever order the child
processes finish in.
"""

from __future__ import annotations

import copy
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.widgets import ContentSwitcher, DataTable, OptionList, Static
from textual.widgets.option_list import Option

from archivist_tui.screens.base import ArchivistScreen
from archivist_tui.widgets.dialogs import Prompt
from archivist_tui.widgets.image import InlineImage
from archivist_tui.widgets.param_form import (
    Field,
    MixForm,
    ParamForm,
    effect_fields,
    extreme_fields,
    schema_message,
)
from archivist_tui.widgets.tables import fill_table

EFFECT_COLUMNS = (("effect", "EFFECT", 12), ("on", "ON", 2), ("prob", "PROB", 4), ("values", "VALUES", 20))
RENDER_DELAY = 0.4  # seconds after the last change before the preview is rendered


def _fmt_value(v: Any) -> str:
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        return f"{v[0]:g}" if v[0] == v[1] else f"{v[0]:g}–{v[1]:g}"
    if isinstance(v, (list, tuple)):
        return "/".join(str(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _canonical(field: Field, value: Any) -> Any:
    """An allowed form value as the document holds it (``to_document``'s types)."""
    if field.kind == "range":
        conv = int if field.integer else float
        return [conv(value[0]), conv(value[1])]
    if field.kind == "number":
        return float(value)
    if field.kind == "switch":
        return bool(value)
    return list(value)


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two profile documents, as ``effect.key value`` (for a description)."""
    out = []
    sections = [("extreme", before.get("extreme") or {}, after.get("extreme") or {})]
    sections += [(name, (before.get("effects") or {}).get(name) or {}, settings)
                 for name, settings in (after.get("effects") or {}).items()]
    for name, old, new in sections:
        for key, value in new.items():
            if old.get(key) != value:
                shown = ("on" if value else "off") if isinstance(value, bool) else _fmt_value(value)
                out.append(f"{name}.{key} {shown}")
    return out


@dataclass
class Preview:
    """One finished render: its generation, the two pictures and the degrader's record."""

    generation: int
    clean: Path
    damaged: Path
    record: dict[str, Any]


class ProfilesScreen(ArchivistScreen):
    MODE = "profiles"
    CSS_PATH = "profiles.tcss"
    BINDINGS = [
        Binding("enter", "edit_effect", "Edit effect"),
        Binding("space", "toggle_effect", "On/off"),
        Binding("s", "reroll", "Re-roll seed"),
        Binding("f", "frame", "Frame"),
        Binding("p", "preview", "Preview"),
        Binding("ctrl+s", "save", "Save"),
        Binding("S", "save_as", "Save as"),
        Binding("n", "new", "New"),
        Binding("m", "mix", "Mix weights"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[Any] = []
        self.current: Any = None  # library Entry
        self.doc: dict[str, Any] | None = None  # the working copy (allowed values only)
        self.saved_doc: dict[str, Any] | None = None  # as on disk
        self.invalid: dict[str, str] = {}  # "effects.grain.strength" → the schema's message
        self.drafts: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # entry key → (doc, saved)
        self.seed = 1234
        self.frame: Path | None = None
        self.generation = 0  # of the latest render started
        self.preview: Preview | None = None  # the render on screen
        self._names: tuple = ()
        self._select_after: str | None = None
        self._render_timer = None
        self._focus_before_preview: Any = None

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        with Horizontal(id="profiles-body"):
            yield OptionList(id="profiles-list")
            with Vertical(id="profiles-editor"):
                yield Static("", id="profiles-title")
                with ContentSwitcher(initial="profiles-effects", id="profiles-center"):
                    yield DataTable(id="profiles-effects", cursor_type="row")
                yield Static("", id="profiles-status")
                yield Static("the preview is hidden at this width: p shows it full screen", id="profiles-hint")
            with Vertical(id="profiles-side"):
                yield Static("", classes="info", id="profiles-seed")
                with Vertical(id="profiles-images"):
                    yield InlineImage(self.images, id="profiles-clean")
                    yield InlineImage(self.images, id="profiles-damaged")
                yield Static("", classes="info", id="profiles-drawn")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        fill_table(self.query_one(DataTable), EFFECT_COLUMNS, [])
        self.query_one("#profiles-clean").border_title = "clean"
        self.query_one("#profiles-damaged").border_title = "damaged"
        self._show_seed()

    def on_unmount(self) -> None:
        self._remove_renders(upto=None)

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "narrow")

    # -- the list ----------------------------------------------------------------------------
    @staticmethod
    def poll() -> Any:
        from engine.degrade.library import list_entries

        return list_entries()

    @staticmethod
    def _key(entry: Any) -> str:
        return f"{entry.kind}:{entry.name}"

    def _label(self, entry: Any) -> str:
        key = self._key(entry)
        dirty = key in self.drafts or (self.current is not None and self._key(self.current) == key and self.dirty)
        return f"{'mix ' if entry.kind == 'mix' else ''}{entry.name}{' *' if entry.origin == 'user' else ''}" \
               f"{' •' if dirty else ''}"

    def show(self, data: Any) -> None:
        names = tuple((e.name, e.kind, e.origin) for e in data)
        if names == self._names:
            return
        self._names = names
        self.entries = list(data)
        options = self.query_one("#profiles-list", OptionList)
        options.clear_options()
        options.add_options([Option(self._label(e), id=self._key(e)) for e in self.entries])
        keys = [self._key(e) for e in self.entries]
        if self._select_after in keys:
            options.highlighted = keys.index(self._select_after)
            self._select_after = None
        elif self.current is not None and self._key(self.current) in keys:
            options.highlighted = keys.index(self._key(self.current))
        elif self.entries:
            options.highlighted = 0

    def _refresh_labels(self) -> None:
        options = self.query_one("#profiles-list", OptionList)
        for entry in self.entries:
            try:
                options.replace_option_prompt(self._key(entry), self._label(entry))
            except Exception:  # the list is being rebuilt
                pass

    async def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id != "profiles-list":
            return  # a choice field of a form (a SelectionList is an OptionList)
        for e in self.entries:
            if self._key(e) == event.option.id:
                await self._load(e)

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id != "profiles-list":
            return
        event.stop()
        if self.current is not None and self.current.kind == "mix":
            await self.action_mix()
        else:
            self.query_one(DataTable).focus()

    @property
    def dirty(self) -> bool:
        return self.doc is not None and self.doc != self.saved_doc

    async def _load(self, entry: Any) -> None:
        from engine.degrade import load_profile
        from engine.degrade.library import read_document
        from engine.degrade.schema import Mix

        if self.current is not None and self.current.path == entry.path and self.doc is not None:
            return
        self._stash()
        self.current = entry
        self.invalid = {}
        await self._remove_forms()
        key = self._key(entry)
        if key in self.drafts:
            self.doc, self.saved_doc = self.drafts.pop(key)
        else:
            try:
                loaded = load_profile(entry.path)
                if isinstance(loaded, Mix):
                    raw = read_document(entry.path)
                    assert isinstance(raw, dict)
                    doc = {"name": loaded.name, "description": loaded.description,
                           "profiles": dict(raw.get("profiles") or {})}
                else:
                    doc = loaded.to_document()
            except Exception as exc:
                self.doc = self.saved_doc = None
                fill_table(self.query_one(DataTable), EFFECT_COLUMNS, [])
                self.query_one(ContentSwitcher).current = "profiles-effects"
                self._status(f"✗ {exc}", False)
                return
            self.doc, self.saved_doc = doc, copy.deepcopy(doc)
        if entry.kind == "mix":
            await self._open_mix_form(focus=False)
        else:
            self.query_one(ContentSwitcher).current = "profiles-effects"
            self._fill()
        self._title()
        self._show_state()
        self._schedule_render()

    def _stash(self) -> None:
        """Keep the current profile's unsaved edits while another one is shown."""
        if self.current is None or self.doc is None:
            return
        if self.invalid:
            self.notify(f"{self.current.name}: left with values not allowed, dropped ({', '.join(self.invalid)}); "
                        "the last allowed values are kept", severity="warning", timeout=6)
        if self.dirty:
            self.drafts[self._key(self.current)] = (self.doc, self.saved_doc or {})

    async def _remove_forms(self) -> None:
        switcher = self.query_one(ContentSwitcher)
        switcher.current = "profiles-effects"
        old = [child for child in switcher.children if child.id != "profiles-effects"]
        if old:
            await switcher.remove_children(old)

    # -- showing the working copy ------------------------------------------------------------
    def _title(self, section: str | None = None) -> None:
        if self.doc is None:
            return
        what = "mix " if self.current is not None and self.current.kind == "mix" else ""
        title = Text.assemble((f"{what}{self.doc['name']}", "bold"))
        if section:
            title.append(f" › {section.removeprefix('effects.')}", style="bold")
        title.append(f"  {self.doc.get('description') or ''}"[:200])
        self.query_one("#profiles-title", Static).update(title)

    def _fill(self) -> None:
        assert self.doc is not None
        bad = {path.split(".")[1] if path.startswith("effects.") else "extreme" for path in self.invalid}
        ex = self.doc.get("extreme") or {}
        rows = [("extreme", self._row("extreme", ex, "extreme" in bad))]
        for name, settings in self.doc.get("effects", {}).items():
            rows.append((name, self._row(name, settings, name in bad)))
        fill_table(self.query_one(DataTable), EFFECT_COLUMNS, rows)

    @staticmethod
    def _row(name: str, settings: dict[str, Any], bad: bool) -> tuple:
        values = " ".join(f"{k} {_fmt_value(v)}" for k, v in settings.items() if k not in ("enabled", "probability"))
        on = Text("✓", style="green") if settings.get("enabled", True) else Text("·", style="dim")
        label = Text.assemble(name, (" ✗", "red")) if bad else name
        return (label, on, f"{settings.get('probability', 1.0):.2f}", values)

    def _status(self, text: str, ok: bool) -> None:
        status = self.query_one("#profiles-status", Static)
        effect = self._selected_effect()
        # Only while the table has the focus: from the list, enter opens the profile instead.
        if (effect is not None and self.query_one(ContentSwitcher).current == "profiles-effects"
                and self.query_one(DataTable).has_focus):
            text += f" · enter edits {effect}"
        status.update(text)
        status.set_class(not ok, "invalid")

    def _show_state(self) -> None:
        """The status line: allowed or not (which fields), saved or not."""
        if self.doc is None or self.current is None:
            return
        if self.invalid:
            paths = ", ".join(self.invalid)
            self._status(f"✗ not allowed: {paths} (the schema's message is under the field; the preview keeps "
                         "the last allowed values)", False)
        elif self.dirty:
            how = "ctrl+s saves, S saves as" if self.current.origin == "user" else "shipped: S saves a copy"
            self._status(f"✓ valid · unsaved changes ({how})", True)
        else:
            self._status("✓ valid mix" if self.current.kind == "mix" else "✓ valid", True)
        self._refresh_labels()

    def _show_seed(self, rendering: bool = False) -> None:
        frame = self.frame.name if self.frame else "sample cel"
        state = "  rendering…" if rendering else ""
        keys = "p or esc back" if self.has_class("preview-full") else "p full screen"
        self.query_one("#profiles-seed", Static).update(f"seed {self.seed}  frame {frame}{state}  "
                                                        f"(s re-roll, f frame, {keys})")

    # -- editing a profile -------------------------------------------------------------------
    def _selected_effect(self) -> str | None:
        table = self.query_one(DataTable)
        if self.doc is None or "effects" not in self.doc or table.cursor_row is None or not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_state()  # says which effect enter edits

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self._show_state()  # the enter hint follows the focus into and out of the table

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        self._show_state()

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # the table takes enter before the screen's binding does
        await self.action_edit_effect()

    def _section_doc(self, section: str) -> dict[str, Any]:
        assert self.doc is not None
        if section == "extreme":
            return self.doc.setdefault("extreme", {})
        return self.doc["effects"][section.split(".", 1)[1]]

    def action_toggle_effect(self) -> None:
        name = self._selected_effect()
        if name is None or self.query_one(ContentSwitcher).current != "profiles-effects":
            return
        section = "extreme" if name == "extreme" else f"effects.{name}"
        settings = self._section_doc(section)
        settings["enabled"] = not settings.get("enabled", name != "extreme")
        form = self._form(section)
        if form is not None:
            form.row("enabled").set_value(settings["enabled"])
        self._edited()

    def _form(self, section: str) -> ParamForm | None:
        found = self.query(f"#form-{section.replace('.', '-')}")
        return found.first() if found else None  # type: ignore[return-value]

    async def action_edit_effect(self) -> None:
        name = self._selected_effect()
        if name is None:
            return
        await self.open_form("extreme" if name == "extreme" else f"effects.{name}")

    async def open_form(self, section: str) -> ParamForm:
        """Show the form of ``section`` (``effects.NAME`` or ``extreme``), built on first use."""
        form = self._form(section)
        switcher = self.query_one(ContentSwitcher)
        if form is None:
            fields = extreme_fields() if section == "extreme" else effect_fields(section.split(".", 1)[1])
            values = dict(self._section_doc(section))
            values.setdefault("enabled", section != "extreme")
            values.setdefault("probability", 1.0 if section != "extreme" else 0.5)
            if section == "extreme":
                from engine.degrade.schema import Extreme

                values.setdefault("strength", list(Extreme.strength))
                values.setdefault("cast", list(Extreme.cast))
            title = self._form_title(section)
            form = ParamForm(section, title, fields, values,
                             lambda key, value, s=section: schema_message(s, key, value),
                             id=f"form-{section.replace('.', '-')}")
            await switcher.mount(form)
        switcher.current = form.id
        self._title(form.section)
        self._show_state()
        # After the switch is laid out: the table it hides gives up the focus on that refresh.
        self.call_after_refresh(form.focus_first)
        return form

    @staticmethod
    def _form_title(section: str) -> Text:
        from engine.degrade.registry import EFFECTS

        if section == "extreme":
            return Text("extreme: a share of samples gets its grain, chemistry and cast multiplied", style="dim")
        effect = EFFECTS[section.split(".", 1)[1]]
        return Text(f"{effect.summary} ({effect.family})", style="dim")

    def on_param_form_edited(self, event: ParamForm.Edited) -> None:
        event.stop()
        self._apply(event)

    def _apply(self, event: ParamForm.Edited) -> None:
        """One field's value into the working copy when the schema allows it, else into ``invalid``."""
        if self.doc is None or event.form.parent is None:
            return
        path = f"{event.form.section}.{event.key}"
        if event.error is not None:
            self.invalid[path] = event.error
            self._fill()
            self._show_state()
            return
        was_invalid = self.invalid.pop(path, None) is not None
        field = next(f for f in event.form.fields if f.key == event.key)
        settings = self._section_doc(event.form.section)
        value = _canonical(field, event.value)
        if settings.get(event.key) == value:
            if was_invalid:  # back to an allowed value it already had
                self._fill()
                self._show_state()
            return
        settings[event.key] = value
        self._edited()

    async def on_param_form_closed(self, event: ParamForm.Closed) -> None:
        event.stop()
        self.query_one(ContentSwitcher).current = "profiles-effects"
        if not event.form.invalid():
            # Its values are in the working copy; a form kept mounted only costs restyling. One
            # with text the schema refuses stays, so that text is there when it is opened again.
            await event.form.remove()
        self._title()
        table = self.query_one(DataTable)
        keys = [str(k.value) for k in table.rows]
        name = "extreme" if event.form.section == "extreme" else event.form.section.split(".", 1)[1]
        if name in keys:
            table.move_cursor(row=keys.index(name))
        table.focus()
        self._show_state()

    def _edited(self) -> None:
        """The working copy changed (only allowed values reach it): show it and re-render."""
        if self.doc is not None and "effects" in self.doc:
            self._fill()
        self._show_state()
        self._schedule_render()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Full screen shows only the preview: the keys that edit what is not shown are off.
        if self.has_class("preview-full") and action not in ("reroll", "frame", "preview", "back"):
            return False
        return True

    def action_back(self) -> None:
        if self.has_class("preview-full"):
            self.action_preview()
        elif self.focused is self.query_one(DataTable):
            self.query_one("#profiles-list", OptionList).focus()

    # -- mixes -------------------------------------------------------------------------------
    async def action_mix(self) -> None:
        if self.current is None or self.current.kind != "mix" or self.doc is None:
            self.notify("select a mix to edit its weights", severity="warning")
            return
        await self._open_mix_form(focus=True)

    async def _open_mix_form(self, focus: bool) -> None:
        from engine.degrade.library import list_entries

        switcher = self.query_one(ContentSwitcher)
        found = self.query("#form-mix")
        if found:
            form = found.first()
        else:
            assert self.doc is not None
            known = sorted({e.name for e in list_entries() if e.kind == "profile"})
            form = MixForm(self._mix_help(), self.doc.get("profiles") or {}, known, self._check_weight, id="form-mix")
            await switcher.mount(form)
        switcher.current = "form-mix"
        if focus:
            self.call_after_refresh(form.focus_first)

    @staticmethod
    def _mix_help() -> Text:
        return Text("each sample draws one of these profiles, in proportion to its weight", style="dim")

    @staticmethod
    def _check_weight(name: str, weight: Any) -> str | None:
        from engine.degrade.library import load_named_profile
        from engine.degrade.schema import validate_mix
        from engine.errors import ArchivistError

        try:
            validate_mix({"name": "form", "profiles": {name: weight}}, "form", load_named_profile)
        except ArchivistError as exc:
            return str(exc).removeprefix("form: ")
        return None

    def on_mix_form_changed(self, event: MixForm.Changed) -> None:
        event.stop()
        self._apply_mix(event.form)

    def _apply_mix(self, form: MixForm) -> None:
        """The members and allowed weights of the form into the working copy."""
        if self.doc is None or "profiles" not in self.doc or form.parent is None:
            return
        old = self.doc["profiles"]
        weights: dict[str, Any] = {}
        invalid = form.invalid()
        for name, value in form.weights().items():
            if name in invalid:
                if name in old:
                    weights[name] = old[name]
            else:
                weights[name] = float(value)
        self.invalid = {f"profiles.{name}": message for name, message in invalid.items()}
        if not weights:
            self.invalid["profiles"] = "a mix needs at least one profile; add one (a)"
        changed = weights != old
        self.doc["profiles"] = weights
        self._show_state()
        if changed:
            self._schedule_render()

    def on_mix_form_closed(self, event: MixForm.Closed) -> None:
        event.stop()
        self.query_one("#profiles-list", OptionList).focus()

    # -- the preview frame and seed ----------------------------------------------------------
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

    def action_preview(self) -> None:
        """The preview full screen (and back): at 80 columns the side panel has no room."""
        full = not self.has_class("preview-full")
        if full:
            self._focus_before_preview = self.focused
            self.set_focus(None)
        self.set_class(full, "preview-full")
        self.refresh_bindings()
        self._show_seed()
        if not full and self._focus_before_preview is not None:
            self._focus_before_preview.focus()
            self._focus_before_preview = None

    # -- saving ------------------------------------------------------------------------------
    def _sync_forms(self) -> None:
        """Read every open form as it is on screen now (messages of the last keys may be pending)."""
        for form in self.query(ParamForm):
            for edited in form.sync():
                self._apply(edited)
        for mix in self.query(MixForm):
            mix.check_all()
            self._apply_mix(mix)

    def _refuse_invalid(self, what: str) -> bool:
        """True (and says which fields) when some field holds a value the schema refuses."""
        self._sync_forms()
        if not self.invalid:
            return False
        fields = "; ".join(f"{path} ({message.removeprefix(path + ': ')})" for path, message in self.invalid.items())
        self.notify(f"not {what}: fix the fields not allowed first: {fields}", severity="error", timeout=8)
        self._show_state()
        return True

    def _whole_problem(self, name: str) -> str | None:
        """The schema's verdict on the whole working copy saved as ``name`` (None: allowed)."""
        from engine.degrade.library import load_named_profile
        from engine.degrade.schema import validate_mix, validate_profile

        assert self.doc is not None
        doc = dict(self.doc, name=name)
        try:
            if "profiles" in doc:
                validate_mix(doc, name, load_named_profile)
            else:
                validate_profile(doc, name)
        except Exception as exc:
            return str(exc)
        return None

    def _write_yaml(self, path: Path, doc: dict[str, Any]) -> bool:
        """Write the profile whole or not at all; a failure (a full disk) is shown, and nothing is lost."""
        import yaml

        from engine.atomic import atomic_write
        from engine.errors import ArchivistError

        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=110, allow_unicode=True)
        try:
            atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        except ArchivistError as exc:
            self.notify(f"not saved: {exc}", severity="error", timeout=8)
            return False
        return True

    def action_save(self) -> None:
        if self.doc is None or self.current is None:
            return
        if self._refuse_invalid("saved"):
            return
        if self.current.origin != "user":
            self.notify(f"{self.current.name} is shipped: S saves a copy under a new name", severity="warning")
            return
        problem = self._whole_problem(self.doc["name"])
        if problem:
            self.notify(f"not saved: {problem}", severity="error", timeout=6)
            return
        if not self._write_yaml(self.current.path, self.doc):
            return
        self.saved_doc = copy.deepcopy(self.doc)
        self._show_state()
        self._status(f"✓ saved {self.current.path}", True)

    def action_save_as(self) -> None:
        if self.doc is None or self.current is None:
            return
        if self._refuse_invalid("saved"):
            return
        problem = self._whole_problem(self.doc["name"])
        if problem:
            self.notify(f"not saved: {problem}", severity="error", timeout=6)
            return
        from engine.degrade.library import list_entries, user_profiles_dir

        kind = self.current.kind
        taken = {e.name: f"{'a shipped' if e.origin == 'shipped' else 'your'} {e.kind}" for e in list_entries()}
        source = self.doc["name"]
        if kind == "mix":
            members = ", ".join(f"{k} {v:g}" for k, v in self.doc["profiles"].items())
            description = f"Made from the mix {source}: {members}."
        else:
            changes = _changes(self.saved_doc or {}, self.doc)
            description = f"Made from {source}" + (f": {', '.join(changes)}." if changes else ".")
        if len(description) > 200:
            description = description[:199] + "…"

        def got(answer: tuple[str, str] | None) -> None:
            if not answer or self.doc is None or self.current is None:
                return
            name, text = answer
            doc = dict(copy.deepcopy(self.doc), name=name, description=text)
            from engine.errors import os_error_line

            try:
                folder = user_profiles_dir(create=True) / ("mixes" if kind == "mix" else "")
            except OSError as exc:  # a file where the folder should be, a read-only home
                self.notify(f"not saved: {os_error_line(exc)}", severity="error", timeout=8)
                return
            path = folder / f"{name}.yaml"
            if path.exists():  # made since the dialog opened
                self.notify(f"not saved: {path} exists", severity="error")
                return
            if not self._write_yaml(path, doc):
                return
            # The edits now live in the new profile; the one they were made on is as on disk.
            self.drafts.pop(self._key(self.current), None)
            self.current = None
            self.doc = self.saved_doc = None
            self.invalid = {}
            self._select_after = f"{kind}:{name}"
            self._names = ()
            self.notify(f"saved {path}")
            self.app.poll()

        from archivist_tui.widgets.forms import SaveAsDialog

        self.app.push_screen(SaveAsDialog(kind, f"{source}-copy", description, taken), got)

    def action_new(self) -> None:
        def got(name: str | None) -> None:
            if not name:
                return
            from engine.degrade.library import new_profile

            template = self.doc["name"] if self.doc and "effects" in self.doc else "normal"
            try:
                path = new_profile(name, template)
            except Exception as exc:
                self.notify(str(exc), severity="error")
                return
            self.notify(f"created {path}")
            self._select_after = f"profile:{name}"
            self._names = ()
            self.app.poll()

        self.app.push_screen(Prompt("New profile name (a copy of the current profile as saved)"), got)

    # -- the preview -------------------------------------------------------------------------
    def _schedule_render(self) -> None:
        if self._render_timer is not None:
            self._render_timer.stop()
        self._render_timer = self.set_timer(RENDER_DELAY, self._start_preview)

    def _render_files(self, generation: int) -> tuple[Path, Path, Path]:
        from archivist_tui.data import tui_cache_dir

        # The process id keeps two workstations on one ARCHIVIST_HOME out of each other's files.
        stem = tui_cache_dir() / f"profile-{os.getpid()}-{generation}"
        return (stem.with_name(stem.name + "-clean.png"), stem.with_name(stem.name + "-damaged.png"),
                stem.with_name(stem.name + ".yaml"))

    def _start_preview(self) -> None:
        import yaml

        if self.current is None or self.doc is None:
            return
        from engine.errors import os_error_line

        self.generation += 1
        try:
            clean, damaged, source = self._render_files(self.generation)
            source.write_text(yaml.safe_dump(self.doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
        except OSError as exc:  # a full disk, a read-only home: no preview, and the app and the edits stay
            self.notify(f"preview not rendered: {os_error_line(exc)}", severity="warning", timeout=8)
            return
        self._show_seed(rendering=True)
        self._render_worker(self.generation, str(source), clean, damaged, self.seed,
                            str(self.frame) if self.frame else None)

    @work(thread=True, exclusive=True, group="profiles-preview")
    def _render_worker(self, generation: int, source: str, clean: Path, damaged: Path, seed: int,
                       frame: str | None) -> None:
        from archivist_tui.data import run_archivist

        args = ["profiles", "preview", source, "--clean", str(clean), "--damaged", str(damaged), "--seed", str(seed),
                "--json"]
        if frame:
            args += ["--frame", frame]
        # A newer render in the same slot ends this one ("superseded"); one that finished anyway
        # is dropped by its generation in render_finished.
        result = run_archivist(args, timeout=120, slot="profiles-preview")
        if result.stderr == "superseded":
            return
        if not result.ok:
            self.app.call_from_thread(self._render_failed, generation, result.message)
            return
        try:
            record = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            record = {}
        self.app.call_from_thread(self.render_finished, Preview(generation, clean, damaged, record))

    def _render_failed(self, generation: int, message: str) -> None:
        if generation == self.generation:
            self._show_seed()
            self.notify(message, severity="error", timeout=8)

    def render_finished(self, preview: Preview) -> None:
        """Show a finished render, unless a newer one is already on screen."""
        if self.preview is not None and preview.generation <= self.preview.generation:
            if preview.generation < self.preview.generation:
                for path in (preview.clean, preview.damaged):
                    path.unlink(missing_ok=True)
            return
        self.preview = preview
        self.query_one("#profiles-clean", InlineImage).set_path(preview.clean)
        self.query_one("#profiles-damaged", InlineImage).set_path(preview.damaged)
        drawn: list[str] = []
        for name, effect in (preview.record.get("effects") or {}).items():
            if isinstance(effect, dict) and effect.get("applied"):
                params = effect.get("params") or {}
                first = next(((k, v) for k, v in params.items() if isinstance(v, (int, float))
                              and not isinstance(v, bool)), None)
                drawn.append(f"{name}.{first[0]}={first[1]:.3g}" if first else name)
        profile = preview.record.get("profile")
        head = f"{profile}: " if "mix" in preview.record and isinstance(profile, str) else ""  # the mix drew it
        self.query_one("#profiles-drawn", Static).update(f"drawn: {head}{' '.join(drawn)}" if drawn else "")
        self._show_seed(rendering=preview.generation < self.generation)
        self._remove_renders(upto=preview.generation)

    def _remove_renders(self, upto: int | None) -> None:
        """Delete this process's render files older than ``upto`` (all of them with None)."""
        from archivist_tui.data import tui_cache_dir

        prefix = f"profile-{os.getpid()}-"
        folder = tui_cache_dir(create=False)
        if not folder.is_dir():  # nothing rendered (or no cache folder to render into)
            return
        for path in folder.glob(prefix + "*"):
            number = path.name[len(prefix):].split("-")[0].split(".")[0]
            if not number.isdigit():
                continue
            if upto is None or int(number) < upto or (int(number) == upto and path.suffix == ".yaml"):
                path.unlink(missing_ok=True)
