"""One way to declare a document: each key's type, bounds, unit and words beside its field.

A document (a training config, the queue's settings, a job's spec, the options of a restore) is a
dataclass whose fields are declared with :func:`integer`, :func:`number`, :func:`choice`,
:func:`boolean`, :func:`text`, :func:`value` or :func:`section`. The declaration is kept in the
field's metadata as a :class:`Key`, and everything else is read from it:

- :func:`build` makes the dataclass from a mapping (YAML, JSON): unknown keys are refused with the
  keys allowed, each value is checked, nested sections are built in turn;
- :func:`check` checks an instance made in code (from command-line flags, say);
- :func:`reference` lists the keys, what each allows, its default and its words, for documentation;
  :func:`reference_table` writes them as the Markdown table the docs hold.

Every refusal is an :class:`InvalidValue`: it names the document's key (``tile``,
``train.total_iters``), the value and what is allowed. The command line shows the same refusal
with the flag that set the key (``--tile``), so one rule has one check and two faces name it
their own way. Rules between keys stay with the document that has them (a method of its own).

Profiles keep :mod:`engine.degrade.params`: their values are ranges to draw from, not values.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from engine.errors import ArchivistError

MISSING = dataclasses.MISSING


class InvalidValue(ArchivistError):
    """A value its key does not allow. ``key`` is the document's (dotted) key, ``source`` the file."""

    def __init__(self, key: str, value: Any, allowed: str, source: str | None = None):
        self.key, self.value, self.allowed, self.source = key, value, allowed, source
        super().__init__(self.line())

    def line(self, name: str | None = None) -> str:
        """The refusal in one line; ``name`` (a flag such as ``--tile``) replaces the key."""
        name = name or self.key
        flag = name.startswith("-")
        value = self.value
        if flag and isinstance(value, float) and value.is_integer():
            value = int(value)  # as typed: --crf 52, not 52.0
        shown = f"{name} {value!r}" if flag else f"{name} = {value!r}"
        prefix = f"{self.source}: " if self.source else ""
        # A flag left out is the document's null: given, it must be a value.
        allowed = self.allowed.removeprefix("null or ") if flag else self.allowed
        return f"{prefix}{shown} invalid: allowed {allowed}"


class Conflict(ArchivistError):
    """Keys whose values do not go together (``deinterlace`` and ``ivtc``), or a key that the others
    rule out. ``why`` names the keys as ``{0}``, ``{1}``…, so each face shows them its own way: the
    engine by the document's keys, the command line by the flags that set them."""

    def __init__(self, keys: tuple[str, ...] | list[str], why: str, source: str | None = None):
        self.keys, self.why, self.source = tuple(keys), why, source
        super().__init__(self.line())

    def line(self, names: list[str | None] | tuple[str | None, ...] | None = None) -> str:
        """The refusal in one line; ``names`` (flags such as ``--ivtc``; None keeps that key) replace the keys."""
        line = self.why
        for i, (key, name) in enumerate(zip(self.keys, names or [None] * len(self.keys))):
            line = line.replace(f"{{{i}}}", name or key)  # (not str.format: a path in the words may hold braces)
        return (f"{self.source}: " if self.source else "") + line


class UnknownKey(ArchivistError):
    """A key the document does not have."""

    def __init__(self, key: str, allowed: list[str], source: str | None = None):
        self.key, self.source = key, source
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}unknown key {key!r}: allowed keys are {', '.join(allowed)}")


@dataclass(frozen=True)
class Key:
    """What one key of a document allows.

    ``kind`` is ``integer``, ``number``, ``choice``, ``boolean``, ``text``, ``value`` (checked by
    ``convert``) or ``section`` (a nested document, the dataclass ``section``). ``optional``: null
    (None) is allowed too. ``convert`` takes the value and returns it normalised, or raises
    ``ValueError`` (the value is refused with ``allowed``).
    """

    kind: str
    doc: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    unit: str = ""
    options: tuple = ()
    optional: bool = False
    allowed_words: str = ""
    convert: Callable[[Any], Any] | None = None
    section: type | None = None

    def allowed(self) -> str:
        """What the key allows, in plain words (``an integer 1 to 100``)."""
        if self.kind in ("integer", "number"):
            words = describe_range(self.lo, self.hi, integer=self.kind == "integer", lo_open=self.lo_open,
                                   hi_open=self.hi_open, unit=self.unit)
        elif self.kind == "choice":
            words = ("one of " if len(self.options) > 1 else "") + ", ".join(str(o) for o in self.options)
        elif self.kind == "boolean":
            words = "true or false"
        elif self.kind == "section":
            words = "a mapping"
        else:
            words = self.allowed_words or "text"
        if self.optional:
            words = f"null or {words}"
        return words

    def check(self, key: str, value: Any, source: str | None = None) -> Any:
        """The value, normalised (an integer number stays an int, a number becomes a float), or raise."""
        if value is None and self.optional:
            return None

        def refuse(allowed: str | None = None) -> InvalidValue:
            return InvalidValue(key, value, allowed or self.allowed(), source)

        if self.kind in ("integer", "number"):
            numeric = (int,) if self.kind == "integer" else (int, float, Fraction)
            if isinstance(value, bool) or not isinstance(value, numeric):
                raise refuse()
            if not math.isfinite(value):  # NaN passes every comparison
                raise refuse(f"{self.allowed()}, finite (not NaN or infinity)")
            if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
                raise refuse()
            if self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi):
                raise refuse()
            return value if self.kind == "integer" or isinstance(value, Fraction) else float(value)
        if self.kind == "choice":
            if isinstance(value, bool) or value not in self.options:
                raise refuse()
            return value
        if self.kind == "boolean":
            if not isinstance(value, bool):
                raise refuse()
            return value
        if self.kind == "text" and not isinstance(value, str):
            raise refuse()
        if self.convert is not None:
            try:
                return self.convert(value)
            except (ValueError, TypeError) as exc:
                raise refuse(str(exc) or None) from None
        return value


def describe_range(lo: float | None, hi: float | None, *, integer: bool = False, lo_open: bool = False,
                   hi_open: bool = False, unit: str = "") -> str:
    """A range in the words every refusal uses: ``an integer 1 to 100``, ``a number > 0 and <= 1``,
    ``an integer 0 or more``, ``a number 0.01 to 60 (seconds)``."""
    kind = "an integer" if integer else "a number"

    def num(x: float) -> str:
        return str(int(x)) if integer or float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"

    if lo is not None and hi is not None and not lo_open and not hi_open:
        words = f"{kind} {num(lo)} to {num(hi)}"
    elif lo is not None and hi is None:
        words = f"{kind} > {num(lo)}" if lo_open else f"{kind} {num(lo)} or more"
    elif hi is not None and lo is None:
        words = f"{kind} < {num(hi)}" if hi_open else f"{kind} {num(hi)} or less"
    elif lo is not None and hi is not None:
        words = f"{kind} {'>' if lo_open else '>='} {num(lo)} and {'<' if hi_open else '<='} {num(hi)}"
    else:
        words = kind
    return f"{words} ({unit})" if unit else words


def _declare(key: Key, default: Any):
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata={"key": key})
    return field(default=default, metadata={"key": key})


def declared(key: Key, default: Any, *, optional: bool | None = None):
    """A field declared by a :class:`Key` shared with another document or function (one rule, one
    place); ``optional`` overrides the key's own."""
    return _declare(key if optional is None else dataclasses.replace(key, optional=optional), default)


def integer(default: int | None, lo: int | None, hi: int | None, doc: str, *, unit: str = "",
            optional: bool = False):
    """A whole number within ``[lo, hi]`` (None: no bound on that side)."""
    return _declare(Key("integer", doc, lo, hi, unit=unit, optional=optional), default)


def number(default: float | None, lo: float | None, hi: float | None, doc: str, *, lo_open: bool = False,
           hi_open: bool = False, unit: str = "", optional: bool = False):
    """A finite number within ``lo`` … ``hi``; ``lo_open``/``hi_open`` leave that end out."""
    return _declare(Key("number", doc, lo, hi, lo_open, hi_open, unit=unit, optional=optional), default)


def choice(default: Any, options: tuple, doc: str, *, optional: bool = False):
    """One of ``options``."""
    return _declare(Key("choice", doc, options=tuple(options), optional=optional), default)


def boolean(default: bool, doc: str):
    """true or false."""
    return _declare(Key("boolean", doc), default)


def text(default: str | None, doc: str, *, allowed: str = "text", convert: Callable[[str], Any] | None = None,
         optional: bool = False):
    """A string; ``convert`` may check and normalise it further (raising ``ValueError``)."""
    return _declare(Key("text", doc, allowed_words=allowed, convert=convert, optional=optional), default)


def value(default: Any, doc: str, *, allowed: str, convert: Callable[[Any], Any], optional: bool = False):
    """Any other value (a list, a mapping): ``convert`` checks and normalises it or raises ``ValueError``."""
    return _declare(Key("value", doc, allowed_words=allowed, convert=convert, optional=optional), default)


def list_of(item: Key, *, count: int | None = None, unique: bool = False) -> Callable[[Any], list]:
    """A ``convert`` for :func:`value`: a list (of ``count`` items, each once when ``unique``) whose
    items ``item`` allows; returns the items normalised."""
    def convert(given: Any) -> list:
        if not isinstance(given, list) or (count is not None and len(given) != count):
            raise ValueError
        try:
            items = [item.check("item", x) for x in given]
        except InvalidValue:
            raise ValueError from None
        if unique and len(set(items)) != len(items):
            raise ValueError
        return items
    return convert


def list_words(item: Key, of: str = "items", *, count: int | None = None, unique: bool = False) -> str:
    """What :func:`list_of` allows, in words (``a list of 2 numbers, each a number >= 0 and < 1``)."""
    counted = f"a list of {count} {of}" if count is not None else f"a list of {of}"
    return f"{counted}, each {item.allowed()}" + (", none twice" if unique else "")


def section(cls: type, doc: str = ""):
    """A nested document of dataclass ``cls`` (its defaults when absent)."""
    return field(default_factory=cls, metadata={"key": Key("section", doc, section=cls)})


def keys(cls_or_obj: Any) -> dict[str, Key]:
    """The declared keys of a document class (or instance), in declaration order."""
    return {f.name: f.metadata["key"] for f in dataclasses.fields(cls_or_obj) if "key" in f.metadata}


def build(cls: type, doc: Any, *, source: str | None = None, prefix: str = "", **extra: Any):
    """The document ``cls`` from a mapping: unknown keys refused, every value checked, sections built.

    Keys absent from ``doc`` take their defaults (which are checked too, so a default is never out
    of its own bounds). ``extra`` are fields that are not keys of the document (set by the code).
    """
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise InvalidValue(prefix or "(document)", doc, "a mapping", source)
    declared = keys(cls)
    for name in doc:
        if name not in declared:
            full = f"{prefix}.{name}" if prefix else str(name)
            raise UnknownKey(full, list(declared), source)
    values: dict[str, Any] = {}
    for name, key in declared.items():
        full = f"{prefix}.{name}" if prefix else name
        if key.kind == "section":
            values[name] = build(key.section, doc.get(name), source=source, prefix=full)
        elif name in doc:
            values[name] = key.check(full, doc[name], source)
    obj = cls(**values, **extra)
    check(obj, source=source, prefix=prefix, only_defaults=set(declared) - set(doc))
    return obj


def check(obj: Any, *, source: str | None = None, prefix: str = "", only_defaults: set[str] | None = None) -> Any:
    """Check every declared field of ``obj`` (made in code) against its key; normalised values are
    set back. ``only_defaults`` limits the check to those fields (the rest were checked already)."""
    for name, key in keys(obj).items():
        if only_defaults is not None and name not in only_defaults:
            continue
        full = f"{prefix}.{name}" if prefix else name
        current = getattr(obj, name)
        if key.kind == "section":
            check(current, source=source, prefix=full)
            continue
        checked = key.check(full, current, source)
        if checked is not current:
            object.__setattr__(obj, name, checked)
    return obj


def reference(cls: type, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """Each key of a document as (dotted key, what it allows, default, words), sections unfolded."""
    rows: list[tuple[str, str, Any, str]] = []
    defaults = cls()
    for f in dataclasses.fields(cls):
        key = f.metadata.get("key")
        if key is None:
            continue
        full = f"{prefix}.{f.name}" if prefix else f.name
        if key.kind == "section":
            rows.extend(reference(key.section, full))
        else:
            rows.append((full, key.allowed(), getattr(defaults, f.name), key.doc))
    return rows


def show_default(v: Any) -> str:
    """A default as the YAML a user would write (``null``, ``true``, ``[frames/]``, ``1e-07``)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        shown = repr(v)  # 1.0 stays 1.0, 1e-07 stays exact
        mantissa, e, exponent = shown.partition("e")
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else shown  # YAML 1.1 needs the dot
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(show_default(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {show_default(x)}" for k, x in v.items()) + "}"
    return str(v)


def reference_table(cls: type) -> str:
    """The Markdown table of :func:`reference` (key, default, allowed, meaning) that docs hold."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for key, allowed, default, doc in reference(cls):
        lines.append(f"| `{key}` | `{cell(show_default(default))}` | {cell(allowed)} | {cell(doc)} |")
    return "\n".join(lines) + "\n"


def with_reference(text: str, cls: type) -> str:
    """``text`` (a docs page) with its generated key table of ``cls`` replaced by the current one.

    The table sits between ``<!-- keys of NAME -->`` and ``<!-- end of keys -->`` (NAME: the class's
    module and name), so a test can tell a page that has drifted from its document."""
    start = f"<!-- keys of {cls.__module__}.{cls.__qualname__}: generated, do not edit by hand -->\n"
    end = "<!-- end of keys -->"
    head, found, rest = text.partition(start)
    if not found or end not in rest:
        raise ValueError(f"no generated key table for {cls.__qualname__} (the line {start.strip()!r})")
    return head + start + reference_table(cls) + rest[rest.index(end):]


_TABLE_MARK = re.compile(r"<!-- keys of ([\w.]+): generated, do not edit by hand -->")


def refresh_page(text: str) -> str:
    """A docs page with every generated key table in it made current (each names its class)."""
    for qualified in _TABLE_MARK.findall(text):
        module, _, name = qualified.rpartition(".")
        text = with_reference(text, getattr(importlib.import_module(module), name))
    return text


if __name__ == "__main__":  # python -m engine.document docs/training.md docs/daemon.md
    import sys
    from pathlib import Path

    for page in sys.argv[1:]:
        Path(page).write_text(refresh_page(Path(page).read_text(encoding="utf-8")), encoding="utf-8")
