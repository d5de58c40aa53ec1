"""Profile and mix documents: validation with bounds, canonical form, hash, and the profile reference.

A *profile* document::

    name: normal
    description: what it is for
    extreme: {enabled: true, probability: 0.5, strength: [1.5, 3.0], cast: [1.2, 3.0]}
    effects:
      grain: {enabled: true, probability: 1.0, strength: [4, 7], size: 1.2, monochrome: 0.3}

A *mix* document names profiles and their weights::

    name: default
    profiles: {subtle: 0.1, normal: 0.3, heavy: 0.6}

Every failure is one :class:`ArchivistError` line naming the file, the key, the value and what is
allowed. The canonical form lists every effect and parameter of the schema explicitly; its sha256
is the profile's hash, recorded with every sample, run and model made with it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from engine.degrade.params import ParamSpec
from engine.degrade.registry import EFFECTS
from engine.document import describe_range
from engine.errors import ArchivistError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
EXTREME_BOUNDS = (1.0, 10.0)
_PROFILE_KEYS = ("name", "description", "extreme", "effects")
_MIX_KEYS = ("name", "description", "profiles")
_EXTREME_KEYS = ("enabled", "probability", "strength", "cast")


@dataclass(frozen=True)
class EffectSettings:
    """One effect in a profile: on/off, probability per sample, and a value for every parameter.

    ``values`` holds ``(low, high)`` for ranges, a probability for chances and a tuple of options
    for choices, for every parameter of the effect (defaults filled in).
    """

    enabled: bool
    probability: float
    values: dict[str, Any]


@dataclass(frozen=True)
class Extreme:
    """The ``extreme`` switch: with ``probability``, multiply grain/chemistry (``strength``) and cast."""

    enabled: bool = False
    probability: float = 0.5
    strength: tuple[float, float] = (1.48, 3.07)
    cast: tuple[float, float] = (1.18, 2.99)


@dataclass(frozen=True)
class Profile:
    """A validated degradation profile."""

    name: str
    description: str
    extreme: Extreme
    effects: dict[str, EffectSettings]
    source: str = ""

    def canonical(self) -> dict[str, Any]:
        """Everything that changes the output, every effect and parameter explicit (no name)."""
        effects = {}
        for name, effect in EFFECTS.items():
            s = self.effects[name]
            entry: dict[str, Any] = {"enabled": s.enabled, "probability": float(s.probability)}
            for pname, spec in effect.specs.items():
                entry[pname] = _canonical_value(spec, s.values[pname])
            effects[name] = entry
        ex = self.extreme
        return {
            "extreme": {"enabled": ex.enabled, "probability": float(ex.probability),
                        "strength": [float(v) for v in ex.strength], "cast": [float(v) for v in ex.cast]},
            "effects": effects,
        }

    @cached_property
    def hash(self) -> str:
        """sha256 of the canonical form (name and description excluded: they change no pixel)."""
        return canonical_hash(self.canonical())

    def to_document(self) -> dict[str, Any]:
        """The profile as a YAML-ready document (canonical form plus name and description)."""
        return {"name": self.name, "description": self.description, **self.canonical()}


@dataclass(frozen=True)
class Mix:
    """A validated mix: profiles with weights summing to 1. One profile alone is a mix of one."""

    name: str
    description: str
    entries: tuple[tuple[Profile, float], ...]
    source: str = ""

    @cached_property
    def hash(self) -> str:
        """sha256 over the member profiles' hashes and weights."""
        return canonical_hash({"mix": [[p.name, p.hash, w] for p, w in self.entries]})

    def choose(self, u: float) -> Profile:
        """The profile for a uniform draw ``u`` in [0, 1)."""
        acc = 0.0
        for profile, weight in self.entries:
            acc += weight
            if u < acc:
                return profile
        return self.entries[-1][0]


def as_mix(profile: Profile | Mix) -> Mix:
    """A mix as it is, a profile as a mix of one."""
    if isinstance(profile, Mix):
        return profile
    return Mix(profile.name, profile.description, ((profile, 1.0),), profile.source)


def canonical_hash(obj: Any) -> str:
    """sha256 hex of a JSON document with sorted keys and no whitespace."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical_value(spec: ParamSpec, value: Any) -> Any:
    if spec.kind == "range":
        conv = int if spec.integer else float
        return [conv(value[0]), conv(value[1])]
    if spec.kind == "chance":
        return float(value)
    return list(value)


# --------------------------------------------------------------------------------------------
# Validation


def _fail(source: str, key: str, value: Any, allowed: str, problem: str = "") -> ArchivistError:
    shown = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    what = f" ({problem})" if problem else ""
    return ArchivistError(f"{source}: {key}: {shown} is not allowed{what}; allowed: {allowed}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt(v: float) -> str:
    return f"{v:g}"


def _range_allowed(spec: ParamSpec) -> str:
    return f"{describe_range(*spec.bounds, integer=spec.integer)}, or [low, high] within it (low <= high)"


PROBABILITY = describe_range(0, 1)
MIX_WEIGHT = describe_range(0, None, lo_open=True)


def validate_range(source: str, key: str, value: Any, bounds: tuple[float, float],
                   integer: bool = False) -> tuple[float, float]:
    """Check a number or ``[low, high]`` against ``bounds``; returns ``(low, high)``."""
    spec = ParamSpec("range", "", (0, 0), bounds, integer)
    allowed = _range_allowed(spec)
    if _is_number(value):
        pair = [value, value]
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value):
        pair = list(value)
    else:
        raise _fail(source, key, value, allowed, "wrong type")
    if not all(math.isfinite(v) for v in pair):  # NaN passes every comparison below
        raise _fail(source, key, value, allowed, "not a finite number")
    if integer and any(float(v) != int(v) for v in pair):
        raise _fail(source, key, value, allowed, "not a whole number")
    lo, hi = bounds
    if pair[0] > pair[1]:
        raise _fail(source, key, value, allowed, "inverted range: low > high")
    if pair[0] < lo or pair[1] > hi:
        raise _fail(source, key, value, allowed, "out of range")
    if integer:
        return int(pair[0]), int(pair[1])
    return float(pair[0]), float(pair[1])


def _validate_probability(source: str, key: str, value: Any) -> float:
    if not _is_number(value):
        raise _fail(source, key, value, PROBABILITY, "wrong type")
    if not math.isfinite(value):
        raise _fail(source, key, value, PROBABILITY, "not a finite number")
    if not 0.0 <= float(value) <= 1.0:
        raise _fail(source, key, value, PROBABILITY, "out of range")
    return float(value)


def _validate_bool(source: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(source, key, value, "true or false", "wrong type")
    return value


def _validate_param(source: str, key: str, spec: ParamSpec, value: Any) -> Any:
    if spec.kind == "range":
        return validate_range(source, key, value, spec.bounds, spec.integer)
    if spec.kind == "chance":
        return _validate_probability(source, key, value)
    allowed = "one of " + ", ".join(spec.options) + " or a list of them"
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise _fail(source, key, value, allowed, "wrong type")
    for v in items:
        if v not in spec.options:
            raise _fail(source, key, value, allowed, f"unknown option {v!r}")
    return tuple(items)


def _check_keys(source: str, prefix: str, doc: Mapping, allowed: tuple[str, ...] | list[str], what: str) -> None:
    for key in doc:
        if key not in allowed:
            path = f"{prefix}.{key}" if prefix else str(key)
            raise ArchivistError(f"{source}: {path}: unknown {what}; allowed: {', '.join(allowed)}")


def _validate_name(source: str, doc: Mapping) -> str:
    if "name" not in doc:
        raise ArchivistError(f"{source}: name: missing; allowed: letters, digits, '_', '-', '.' (up to 64)")
    name = doc["name"]
    allowed = "letters, digits, '_', '-', '.' (up to 64, starting with a letter or digit)"
    if not isinstance(name, str):
        raise _fail(source, "name", name, allowed, "wrong type")
    if not NAME_PATTERN.match(name):
        raise _fail(source, "name", name, allowed, "invalid name")
    return name


def _validate_description(source: str, doc: Mapping) -> str:
    desc = doc.get("description", "")
    if desc is None:
        return ""
    if not isinstance(desc, str):
        raise _fail(source, "description", desc, "a string", "wrong type")
    return desc


def default_settings(name: str, enabled: bool = False) -> EffectSettings:
    """An effect's settings when a profile does not mention it: off, probability 1, default ranges."""
    values = {pname: spec.default for pname, spec in EFFECTS[name].specs.items()}
    return EffectSettings(enabled, 1.0, values)


def validate_profile(doc: Any, source: str) -> Profile:
    """Validate a profile document (already parsed) and return the :class:`Profile`."""
    if not isinstance(doc, Mapping):
        raise _fail(source, "(document)", doc, "a mapping with keys " + ", ".join(_PROFILE_KEYS), "wrong type")
    _check_keys(source, "", doc, _PROFILE_KEYS, "key")
    name = _validate_name(source, doc)
    description = _validate_description(source, doc)
    extreme = Extreme()
    if doc.get("extreme") is not None:
        ex = doc["extreme"]
        if not isinstance(ex, Mapping):
            raise _fail(source, "extreme", ex, "a mapping with keys " + ", ".join(_EXTREME_KEYS), "wrong type")
        _check_keys(source, "extreme", ex, _EXTREME_KEYS, "key")
        extreme = Extreme(
            enabled=_validate_bool(source, "extreme.enabled", ex.get("enabled", False)),
            probability=_validate_probability(source, "extreme.probability", ex.get("probability", 0.5)),
            strength=validate_range(source, "extreme.strength", ex.get("strength", list(Extreme.strength)),
                                    EXTREME_BOUNDS),
            cast=validate_range(source, "extreme.cast", ex.get("cast", list(Extreme.cast)), EXTREME_BOUNDS),
        )
    effects_doc = doc.get("effects")
    if effects_doc is None:
        effects_doc = {}
    if not isinstance(effects_doc, Mapping):
        raise _fail(source, "effects", effects_doc, "a mapping of effect names to settings", "wrong type")
    _check_keys(source, "effects", effects_doc, list(EFFECTS), "effect")
    effects: dict[str, EffectSettings] = {}
    for ename, effect in EFFECTS.items():
        if ename not in effects_doc:
            effects[ename] = default_settings(ename)
            continue
        edoc = effects_doc[ename]
        prefix = f"effects.{ename}"
        if edoc is None:
            edoc = {}
        if not isinstance(edoc, Mapping):
            raise _fail(source, prefix, edoc, "a mapping with enabled, probability and parameters", "wrong type")
        specs = effect.specs
        _check_keys(source, prefix, edoc, ["enabled", "probability", *specs], "key")
        values = {}
        for pname, spec in specs.items():
            if pname in edoc:
                values[pname] = _validate_param(source, f"{prefix}.{pname}", spec, edoc[pname])
            else:
                values[pname] = spec.default
        effects[ename] = EffectSettings(
            enabled=_validate_bool(source, f"{prefix}.enabled", edoc.get("enabled", True)),
            probability=_validate_probability(source, f"{prefix}.probability", edoc.get("probability", 1.0)),
            values=values,
        )
    return Profile(name, description, extreme, effects, source)


def validate_mix(doc: Any, source: str, resolve: Callable[[str], Profile]) -> Mix:
    """Validate a mix document; ``resolve`` turns a member's name into a :class:`Profile`."""
    if not isinstance(doc, Mapping):
        raise _fail(source, "(document)", doc, "a mapping with keys " + ", ".join(_MIX_KEYS), "wrong type")
    _check_keys(source, "", doc, _MIX_KEYS, "key")
    name = _validate_name(source, doc)
    description = _validate_description(source, doc)
    members = doc.get("profiles")
    if not isinstance(members, Mapping) or not members:
        raise _fail(source, "profiles", members, f"a mapping of profile names to weights, each {MIX_WEIGHT}", "wrong type")
    weights = []
    for pname, weight in members.items():
        if not _is_number(weight) or not math.isfinite(weight) or weight <= 0:
            raise _fail(source, f"profiles.{pname}", weight, f"{MIX_WEIGHT}, finite",
                        "wrong type, not finite or not positive")
        weights.append((resolve(str(pname)), float(weight)))
    total = sum(w for _, w in weights)
    return Mix(name, description, tuple((p, w / total) for p, w in weights), source)


# --------------------------------------------------------------------------------------------
# The profile reference (docs/profiles.md is generated from this)


def _spec_bounds(spec: ParamSpec) -> str:
    if spec.kind == "range":
        return describe_range(*spec.bounds, integer=spec.integer)
    if spec.kind == "chance":
        return PROBABILITY
    return " \\| ".join(spec.options)


def _spec_default(spec: ParamSpec) -> str:
    if spec.kind == "range":
        lo, hi = spec.default
        return _fmt(lo) if lo == hi else f"[{_fmt(lo)}, {_fmt(hi)}]"
    if spec.kind == "chance":
        return _fmt(spec.default)
    return spec.default[0] if len(spec.default) == 1 else "[" + ", ".join(spec.default) + "]"


def reference_markdown() -> str:
    """The profile reference (``docs/profiles.md``), generated from the schema."""
    lines = [
        "# Degradation profile reference",
        "",
        "<!-- Generated by engine.degrade.schema.reference_markdown(); do not edit by hand. -->",
        "",
        "A profile is a YAML document in `profiles/` (shipped) or `$ARCHIVIST_HOME/profiles/` (yours; a",
        "user profile may not reuse a shipped name):",
        "",
        "```yaml",
        "name: normal",
        "description: what the profile is for",
        "extreme: {enabled: true, probability: 0.5, strength: [1.48, 3.07], cast: [1.18, 2.99]}",
        "effects:",
        "  grain: {enabled: true, probability: 1.0, strength: [4, 7], size: 1.2, monochrome: 0.3}",
        "```",
        "",
        "Each sample draws every value afresh: a range `[low, high]` draws uniformly between the two",
        "(a single number is a range of one value), a *chance* is the probability that a yes/no option",
        "is on, a *choice* is one option or a list to draw from. An effect not mentioned is off;",
        "a parameter not mentioned takes its default. Any wrong type, unknown effect or key, inverted or",
        "out-of-range value is refused with one line naming the file, the key and what is allowed; a key",
        "given twice in one mapping is refused with both line numbers.",
        "",
        "Counts marked *per 512×512 area* scale with the image area. Values in *0-255* units are on",
        "the 8-bit scale even though the pipeline works in float32.",
        "",
        "A **mix** (`profiles/mixes/*.yaml`) names profiles and weights; the profile of each sample is",
        "drawn from the sample's seed. Wherever a mix is asked for, a profile name works (a mix of one):",
        "",
        "```yaml",
        "name: default",
        "profiles: {subtle: 0.1, normal: 0.3, heavy: 0.6}",
        "```",
        "",
        "The profile's **hash** is the sha256 of its canonical form (every effect and parameter",
        "explicit, name and description left out); it is recorded with every sample.",
        "",
        "## extreme",
        "",
        "With `probability`, a sample is *extreme*: the parameters marked below as scaled by",
        "*strength* (grain and chemistry) or *cast* (colour cast) are multiplied by a factor drawn from",
        "`strength` or `cast`, then clamped to their bounds.",
        "",
        "| key | allowed | default |",
        "|---|---|---|",
        "| enabled | true \\| false | false |",
        f"| probability | {PROBABILITY} | 0.5 |",
        f"| strength | {describe_range(*EXTREME_BOUNDS)} | [1.48, 3.07] |",
        f"| cast | {describe_range(*EXTREME_BOUNDS)} | [1.18, 2.99] |",
        "",
        "## Effects, in pipeline order",
        "",
        "Every effect takes `enabled` (true \\| false; default true once the effect is mentioned) and",
        f"`probability` ({PROBABILITY}, default 1): the chance that the effect happens on a sample.",
        "",
    ]
    for name, effect in EFFECTS.items():
        lines += [f"### {name}", "", f"{effect.summary[0].upper()}{effect.summary[1:]} (family: {effect.family}).", ""]
        lines += ["| parameter | kind | allowed | default | unit | meaning |", "|---|---|---|---|---|---|"]
        for pname, spec in effect.specs.items():
            scaled = f" Scaled by extreme *{effect.extreme[pname]}*." if pname in effect.extreme else ""
            lines.append(f"| {pname} | {spec.kind} | {_spec_bounds(spec)} | {_spec_default(spec)} | "
                         f"{spec.unit or '-'} | {spec.doc}.{scaled} |")
        lines.append("")
    return "\n".join(lines)


__all__ = [
    "EffectSettings", "Extreme", "Mix", "Profile", "as_mix", "canonical_hash", "default_settings",
    "reference_markdown", "validate_mix", "validate_profile", "validate_range",
]

