"""Forms generated from the profile schema's declarations, validated by the schema as you type.

An effect's form has one row per parameter of ``engine/degrade/params.py`` (plus the effect's
switch and probability): a range is two number fields (low – high), a chance one number field,
a choice a selection list (a profile may name one option or several to draw from), a boolean a
switch. Beside each field stand its bounds and unit; under it, when the text is not allowed, the
schema's own message. Up/down nudge a number by the declaration's step (shift: ten steps).

A mix's form has one weight field per member profile, a remove button on each row and a field
that adds a profile by name: the members are never retyped.

The forms hold no profile of their own: they post what changed, and the screen keeps the
document. Nothing here imports torch; the schema is imported when a form is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Button, Input, Label, SelectionList, Static, Switch

# What a number field takes itself; every other printable key (s, f, p, S, …) goes on to the
# screen's bindings, so the keys the footer shows work from inside the form as well.
NUMBER_CHARACTERS = frozenset("0123456789.-+eE")


# -- the declarations, as form fields -----------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One row of a form: a document key and how it is edited.

    ``kind`` is ``range`` (two numbers, low and high), ``number``, ``switch`` or ``choice``.
    """

    key: str
    kind: str
    doc: str
    bounds: tuple[float, float] = (0.0, 1.0)
    integer: bool = False
    options: tuple[str, ...] = ()
    unit: str = ""
    step: float = 0.01
    bound_label: str = ""

    def bound_text(self) -> str:
        """The bounds and unit shown beside the field."""
        if self.kind == "switch":
            return "on | off"
        if self.kind == "choice":
            return "one or more"
        text = self.bound_label or f"{_fmt(self.bounds[0])} … {_fmt(self.bounds[1])}"
        if self.integer:
            text += " whole"
        return f"{text} {self.unit}".strip()


def _fmt(v: float) -> str:
    return f"{v:g}"


def effect_fields(effect: str) -> list[Field]:
    """The fields of one effect, from its parameter declarations, in declaration order."""
    from engine.degrade.params import fitting_step
    from engine.degrade.registry import EFFECTS

    fields = [Field("enabled", "switch", "the effect is part of the profile"),
              Field("probability", "number", "chance that the effect happens on a sample", (0.0, 1.0),
                    step=fitting_step(0.0, 1.0))]
    for name, spec in EFFECTS[effect].specs.items():
        if spec.kind == "range":
            fields.append(Field(name, "range", spec.doc, spec.bounds, spec.integer, unit=spec.unit, step=spec.step))
        elif spec.kind == "chance":
            fields.append(Field(name, "number", f"{spec.doc} (the chance of yes)", (0.0, 1.0), unit="chance",
                                step=spec.step))
        else:
            fields.append(Field(name, "choice", f"{spec.doc} (one drawn from those ticked)", options=spec.options))
    return fields


def extreme_fields() -> list[Field]:
    """The profile's ``extreme`` block (see docs/profiles.md), as form fields."""
    from engine.degrade.params import fitting_step
    from engine.degrade.schema import EXTREME_BOUNDS

    step = fitting_step(*EXTREME_BOUNDS)
    return [
        Field("enabled", "switch", "extreme samples happen at all"),
        Field("probability", "number", "chance that a sample is extreme", (0.0, 1.0), step=fitting_step(0.0, 1.0)),
        Field("strength", "range", "factor on grain and chemistry parameters of an extreme sample", EXTREME_BOUNDS,
              unit="×", step=step),
        Field("cast", "range", "factor on the colour cast of an extreme sample", EXTREME_BOUNDS, unit="×", step=step),
    ]


def schema_message(section: str, key: str, value: Any) -> str | None:
    """The profile schema's message for ``value`` at ``section.key`` (``effects.grain``, ``extreme``),
    or None when the schema allows it. Only the one key is checked."""
    from engine.degrade.schema import validate_profile
    from engine.errors import ArchivistError

    if section == "extreme":
        doc: dict[str, Any] = {"name": "form", "extreme": {key: value}}
    else:
        _, effect = section.split(".", 1)
        doc = {"name": "form", "effects": {effect: {key: value}}}
    try:
        validate_profile(doc, "form")
    except ArchivistError as exc:
        return str(exc).removeprefix("form: ")
    return None


def parse_number(text: str) -> Any:
    """A field's text as a number (int when whole), or the text itself for the schema to refuse."""
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        v = float(t)
    except ValueError:
        return t
    # NaN and infinity compare false with every bound: hand the schema the text, never the float.
    return v if math.isfinite(v) else t


def format_number(v: Any) -> str:
    """A document number as a field's text: exact (``repr``), whole floats without ``.0``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


# -- the widgets --------------------------------------------------------------------------------
class NumberField(Input):
    """A compact number input; up/down nudge by ``step`` within ``bounds`` (shift: ten steps)."""

    BINDINGS = [
        Binding("up", "nudge(1)", "+step", show=False),
        Binding("down", "nudge(-1)", "−step", show=False),
        Binding("shift+up", "nudge(10)", "+10 steps", show=False),
        Binding("shift+down", "nudge(-10)", "−10 steps", show=False),
    ]

    def __init__(self, value: str, step: float, bounds: tuple[float, float], integer: bool = False, **kwargs):
        super().__init__(value=value, compact=True, select_on_focus=True, **kwargs)
        self.step = step
        self.bounds = bounds
        self.integer = integer

    def _screen_key(self, key: str) -> bool:
        """Whether ``key`` is bound by the form or the screen (not the app: ``q`` must not quit
        from inside a number)."""
        for node in self.ancestors:
            if node is self.app:
                break
            if key in node._bindings.key_to_bindings:  # the merged BINDINGS of the node's classes
                return True
        return False

    def check_consume_key(self, key: str, character: str | None) -> bool:
        if character is None or not character.isprintable():
            return False
        return character in NUMBER_CHARACTERS or character == " " or not self._screen_key(key)

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable and event.character not in NUMBER_CHARACTERS and event.character != " ":
            # Not part of a number: skip Input's own handler (prevent_default); a key the screen
            # binds bubbles on to it, any other is dropped here.
            event.prevent_default()
            if not self._screen_key(event.key):
                event.stop()
                self.app.bell()

    def action_nudge(self, steps: int) -> None:
        value = parse_number(self.value)
        if isinstance(value, str):
            self.app.bell()
            return
        new = value + steps * self.step
        low, high = self.bounds
        new = min(max(new, low), high)
        # Whole steps of a power of ten: rounding removes the binary noise (0.1 + 0.2).
        new = int(round(new)) if self.integer else round(new, 9)
        self.value = format_number(new)
        self.cursor_position = len(self.value)


class FieldRow(Vertical):
    """One labelled field (or a low–high pair), its bounds and unit, and the schema's message."""

    class Edited(Message):
        """The row's value changed (the form validates it)."""

        def __init__(self, row: FieldRow) -> None:
            super().__init__()
            self.row = row

    def __init__(self, field: Field, value: Any, **kwargs):
        super().__init__(classes="field-row", **kwargs)
        self.field = field
        self.initial = value
        self.error: str | None = None
        self._order = [value] if isinstance(value, str) else list(value) if field.kind == "choice" else []
        self._texts: dict[str | None, str] = {}

    def compose(self) -> ComposeResult:
        f = self.field
        with Horizontal(classes="field-line"):
            yield Label(f.key, classes="field-label")
            if f.kind == "switch":
                yield Switch(bool(self.initial), classes="field-switch", id=f"{f.key}-switch")
            elif f.kind == "choice":
                chosen = [self.initial] if isinstance(self.initial, str) else list(self.initial or ())
                yield SelectionList[str](*[(o, o, o in chosen) for o in f.options], compact=True,
                                         classes="field-choice", id=f"{f.key}-choice")
            elif f.kind == "range":
                low, high = self.initial if isinstance(self.initial, (list, tuple)) else (self.initial, self.initial)
                yield NumberField(format_number(low), f.step, f.bounds, f.integer, id=f"{f.key}-low",
                                  classes="field-number")
                yield Label("–", classes="field-dash")
                yield NumberField(format_number(high), f.step, f.bounds, f.integer, id=f"{f.key}-high",
                                  classes="field-number")
            else:
                # (-single: a wider margin lines its bounds up with those of the ranges)
                yield NumberField(format_number(self.initial), f.step, f.bounds, f.integer, id=f"{f.key}-value",
                                  classes="field-number -single")
            yield Label(self._switch_text(bool(self.initial)) if f.kind == "switch" else f.bound_text(),
                        classes="field-bounds")

    def value(self) -> Any:
        """The value as the document would hold it (unvalidated: the text itself where not a number)."""
        f = self.field
        if f.kind == "switch":
            return self.query_one(Switch).value
        if f.kind == "choice":
            # The profile's order is kept (a draw picks by position, so the order is part of the
            # profile); newly ticked options go last.
            chosen = set(self.query_one(SelectionList).selected)
            self._order = [o for o in self._order if o in chosen] + \
                [o for o in f.options if o in chosen and o not in self._order]
            return list(self._order)
        if f.kind == "range":
            return [parse_number(self.query_one(f"#{f.key}-low", Input).value),
                    parse_number(self.query_one(f"#{f.key}-high", Input).value)]
        return parse_number(self.query_one(f"#{f.key}-value", Input).value)

    def set_value(self, value: Any) -> None:
        """Show ``value`` (a document value), e.g. after the screen changed it."""
        f = self.field
        if f.kind == "switch":
            self.query_one(Switch).value = bool(value)
        elif f.kind == "number":
            self.query_one(Input).value = format_number(value)

    def set_error(self, message: str | None) -> None:
        if message == self.error and self.is_mounted:
            return
        self.error = message
        lines = self.query(".field-error")
        if lines:
            line = lines.first(Static)
        elif message is None:
            return
        else:  # mounted on the first message only: most rows never need one
            line = Static("", classes="field-error")
            self.mount(line)
        line.update(Text(f"✗ {message}") if message else "")
        line.display = message is not None
        self.set_class(message is not None, "invalid")
        for field in self.query(NumberField):
            field.set_class(message is not None, "-invalid")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._texts.get(event.input.id) == event.value:
            return  # the text it was given (an Input says so once it is mounted)
        self._texts[event.input.id] = event.value
        self.post_message(self.Edited(self))

    def on_mount(self) -> None:
        self.tooltip = self.field.doc
        self._texts = {field.id: field.value for field in self.query(NumberField)}

    def on_switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        self.query_one(".field-bounds", Label).update(self._switch_text(event.value))
        self.post_message(self.Edited(self))

    @staticmethod
    def _switch_text(on: bool) -> Text:
        return Text("on", style="green") if on else Text("off", style="dim")

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        event.stop()
        self.post_message(self.Edited(self))


class ParamForm(VerticalScroll):
    """The form of one section of a profile (``effects.NAME`` or ``extreme``).

    ``check(key, value)`` returns the schema's message or None. Every change posts
    :class:`ParamForm.Edited`; escape posts :class:`ParamForm.Closed`.
    """

    BINDINGS = [Binding("escape", "close", "Back to the effects")]
    can_focus = False  # the fields take the focus; a focused form would swallow it when shown

    class Edited(Message):
        """A field changed: ``error`` is None when the schema allows ``value``."""

        def __init__(self, form: ParamForm, key: str, value: Any, error: str | None) -> None:
            super().__init__()
            self.form = form
            self.key = key
            self.value = value
            self.error = error

    class Closed(Message):
        """The user left the form."""

        def __init__(self, form: ParamForm) -> None:
            super().__init__()
            self.form = form

    def __init__(self, section: str, title: str, fields: list[Field], values: dict[str, Any],
                 check: Callable[[str, Any], str | None], **kwargs):
        super().__init__(classes="param-form", **kwargs)
        self.section = section
        self.title_text = title
        self.fields = fields
        self.values = values
        self.check = check

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, classes="form-title")
        for field in self.fields:
            yield FieldRow(field, self.values.get(field.key, _blank(field)), id=f"row-{field.key}")
        yield Static("", classes="form-help")

    def on_mount(self) -> None:
        self._help(None)

    def row(self, key: str) -> FieldRow:
        return self.query_one(f"#row-{key}", FieldRow)

    def invalid(self) -> dict[str, str]:
        """``{key: the schema's message}`` for every field whose text is not allowed now."""
        return {row.field.key: row.error for row in self.query(FieldRow) if row.error}

    def focus_first(self) -> None:
        for widget in self.query("NumberField, Switch, SelectionList"):
            if widget.focusable:
                widget.focus()
                return

    def on_field_row_edited(self, event: FieldRow.Edited) -> None:
        event.stop()
        self.post_message(self._validate(event.row))

    def _validate(self, row: FieldRow) -> ParamForm.Edited:
        value = row.value()
        error = self.check(row.field.key, value)
        row.set_error(error)
        return self.Edited(self, row.field.key, value, error)

    def sync(self) -> list[ParamForm.Edited]:
        """Every field validated now, as it reads on screen (a save must not act on a change whose
        message is still on its way)."""
        return [self._validate(row) for row in self.query(FieldRow)]

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        node: Widget | None = event.widget
        while node is not None and not isinstance(node, FieldRow):
            node = node.parent  # type: ignore[assignment]
        self._help(node.field if isinstance(node, FieldRow) else None)

    def _help(self, field: Field | None) -> None:
        keys = "tab next field · esc back"
        if field is None:
            text = Text(keys, style="dim")
        else:
            nudge = f" · ↑/↓ ±{_fmt(field.step)} (shift ×10)" if field.kind in ("range", "number") else ""
            space = " · space toggles" if field.kind in ("switch", "choice") else ""
            text = Text.assemble((f"{field.key}: ", "bold"), field.doc, (f"\n{keys}{nudge}{space}", "dim"))
        self.query_one(".form-help", Static).update(text)

    def action_close(self) -> None:
        self.post_message(self.Closed(self))


def _blank(field: Field) -> Any:
    if field.kind == "switch":
        return False
    if field.kind == "range":
        return list(field.bounds)
    if field.kind == "choice":
        return list(field.options[:1])
    return field.bounds[0]


# -- mixes --------------------------------------------------------------------------------------
WEIGHT_STEP = 0.01


class MixRow(Horizontal):
    """One member of a mix: its name, its weight, its share of the total and a remove button."""

    def __init__(self, name: str, weight: Any, **kwargs):
        super().__init__(classes="mix-row", **kwargs)
        self.profile = name
        self.weight = weight
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Label(self.profile, classes="field-label")
        yield NumberField(format_number(self.weight), WEIGHT_STEP, (WEIGHT_STEP, 1e9), classes="field-number mix-weight")
        yield Label("", classes="mix-share")
        yield Button("✕ remove", compact=True, classes="mix-remove")

    def text_value(self) -> Any:
        return parse_number(self.query_one(NumberField).value)


class MixForm(VerticalScroll):
    """The members of a mix and their weights; ``a`` goes to the add field, ✕ removes a member.

    ``check(name, weight)`` returns the schema's message for one member, ``known`` lists the
    profiles that may be added. Every change posts :class:`MixForm.Changed`.
    """

    BINDINGS = [Binding("a", "add_field", "Add a profile"), Binding("escape", "close", "Back to the list")]
    can_focus = False

    class Changed(Message):
        """Members or weights changed."""

        def __init__(self, form: MixForm) -> None:
            super().__init__()
            self.form = form

    class Closed(Message):
        def __init__(self, form: MixForm) -> None:
            super().__init__()
            self.form = form

    def __init__(self, title: str, weights: dict[str, Any], known: list[str],
                 check: Callable[[str, Any], str | None], **kwargs):
        super().__init__(classes="mix-form", **kwargs)
        self.title_text = title
        self.initial = dict(weights)
        self.known = known
        self.check = check
        self._serial = 0

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, classes="form-title")
        yield Label("PROFILE            WEIGHT     SHARE", classes="mix-header")
        with Vertical(id="mix-rows"):
            for name, weight in self.initial.items():
                yield self._new_row(name, weight)
        yield Static("", classes="field-error", id="mix-errors")
        with Horizontal(classes="mix-add-line"):
            yield Label("add", classes="field-label")
            yield Input(placeholder="a profile's name (→ completes)", id="mix-add", compact=True,
                        suggester=SuggestFromList(self.known, case_sensitive=True))
        yield Static("", classes="field-error", id="mix-add-error")
        yield Static(Text("tab next · ↑/↓ ±0.01 · a add · ✕ remove · weights are shares of their sum · "
                          "esc back", style="dim"), classes="form-help")

    def on_mount(self) -> None:
        self.query_one("#mix-add-error").display = False
        self.check_all()

    def _new_row(self, name: str, weight: Any) -> MixRow:
        self._serial += 1
        return MixRow(name, weight, id=f"mix-row-{self._serial}")

    async def _add_row(self, name: str, weight: Any) -> MixRow:
        row = self._new_row(name, weight)
        await self.query_one("#mix-rows", Vertical).mount(row)
        return row

    def rows(self) -> list[MixRow]:
        return list(self.query(MixRow))

    def members(self) -> list[str]:
        return [row.profile for row in self.rows()]

    def weights(self) -> dict[str, Any]:
        """Every member and the value of its field (the text where it is not a number)."""
        return {row.profile: row.text_value() for row in self.rows()}

    def invalid(self) -> dict[str, str]:
        """``{profile: the schema's message}`` for every weight not allowed now."""
        return {row.profile: row.error for row in self.rows() if row.error}

    def focus_first(self) -> None:
        fields = list(self.query(NumberField))
        (fields[0] if fields else self.query_one("#mix-add", Input)).focus()

    def _refresh(self) -> None:
        self.check_all()
        self.post_message(self.Changed(self))

    def check_all(self) -> None:
        """Validate every weight as it reads now and show each member's share of the total."""
        errors = []
        for row in self.rows():
            row.error = self.check(row.profile, row.text_value())
            row.query_one(NumberField).set_class(row.error is not None, "-invalid")
            if row.error:
                errors.append(f"✗ {row.error}")
        valid = {r.profile: float(r.text_value()) for r in self.rows() if r.error is None}
        total = sum(valid.values())
        for row in self.rows():
            share = row.query_one(".mix-share", Label)
            share.update(f"{100 * valid[row.profile] / total:5.1f} %" if row.profile in valid and total else "")
        line = self.query_one("#mix-errors", Static)
        line.update("\n".join(errors))
        line.display = bool(errors)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.id == "mix-add":
            self._add_error(None)
            return
        self._refresh()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id != "mix-add":
            self.query_one("#mix-add", Input).focus()
            return
        name = event.value.strip()
        if not name:
            return
        if name in self.members():
            self._add_error(f"{name} is already in the mix")
            return
        if name not in self.known:
            self._add_error(f"profile {name!r} not found; known profiles: {', '.join(self.known)}")
            return
        event.input.value = ""
        row = await self._add_row(name, 0.1)
        self._refresh()
        row.query_one(NumberField).focus()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        row = event.button.parent
        if isinstance(row, MixRow):
            await row.remove()
            self._refresh()
            self.focus_first()

    def _add_error(self, message: str | None) -> None:
        line = self.query_one("#mix-add-error", Static)
        line.update(f"✗ {message}" if message else "")
        line.display = message is not None

    def action_add_field(self) -> None:
        self.query_one("#mix-add", Input).focus()

    def action_close(self) -> None:
        self.post_message(self.Closed(self))
