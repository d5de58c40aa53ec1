"""Finding profiles and mixes: shipped ones in ``profiles/``, the user's in ``ARCHIVIST_HOME/profiles/``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from engine.atomic import atomic_write
from engine.degrade.schema import NAME_PATTERN, Mix, Profile, validate_mix, validate_profile
from engine.document import Conflict
from engine.errors import ArchivistError, not_a_file
from engine.paths import shipped_profiles_dir, state_subdir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """A profile or mix file found on disk."""

    name: str
    kind: str  # "profile" or "mix"
    origin: str  # "shipped" or "user"
    path: Path


def user_profiles_dir(create: bool = False) -> Path:
    """``ARCHIVIST_HOME/profiles`` (mixes in its ``mixes/`` folder)."""
    return state_subdir("profiles", create=create)


def _scan(folder: Path, kind: str, origin: str) -> list[Entry]:
    if not folder.is_dir():
        return []
    return [Entry(p.stem, kind, origin, p) for p in sorted(folder.glob("*.yaml"))]


def list_entries() -> list[Entry]:
    """Every profile and mix, shipped first, each kind sorted by name."""
    shipped = shipped_profiles_dir()
    user = user_profiles_dir()
    return (_scan(shipped, "profile", "shipped") + _scan(shipped / "mixes", "mix", "shipped")
            + _scan(user, "profile", "user") + _scan(user / "mixes", "mix", "user"))


def shipped_names() -> set[str]:
    """Names taken by shipped profiles and mixes (a user profile may not reuse them)."""
    return {e.name for e in list_entries() if e.origin == "shipped"}


def read_document(path: Path) -> object:
    """Parse a YAML file; any failure (a key given twice included) is one error line naming the file."""
    from engine.yamlfile import read_yaml

    return read_yaml(path, "profile")


def _find(name: str, kinds: tuple[str, ...]) -> Entry | None:
    matches = [e for e in list_entries() if e.name == name and e.kind in kinds]
    shipped = [e for e in matches if e.origin == "shipped"]
    return shipped[0] if shipped else (matches[0] if matches else None)


def load_file(path: Path) -> Profile | Mix:
    """Load and validate one profile or mix file (a mix has ``profiles:``, a profile ``effects:``)."""
    doc = read_document(path)
    source = str(path)
    if isinstance(doc, dict) and "profiles" in doc:
        return validate_mix(doc, source, lambda member: load_named_profile(member, relative_to=path.parent))
    profile = validate_profile(doc, source)
    return profile


def load_named_profile(name: str, relative_to: Path | None = None) -> Profile:
    """A profile (not a mix) by name, e.g. a mix member; a sibling folder of the mix file is searched first."""
    if relative_to is not None:
        for folder in (relative_to, relative_to.parent):
            candidate = folder / f"{name}.yaml"
            if candidate.is_file():
                loaded = load_file(candidate)
                if isinstance(loaded, Profile):
                    return loaded
    entry = _find(name, ("profile",))
    if entry is None:
        raise ArchivistError(f"profile {name!r} not found; known profiles: {', '.join(_names('profile'))}")
    loaded = load_file(entry.path)
    assert isinstance(loaded, Profile)
    return loaded


def _names(kind: str) -> list[str]:
    return sorted({e.name for e in list_entries() if e.kind == kind})


def load_profile(name_or_path: str | Path) -> Profile | Mix:
    """A validated profile or mix, by shipped or user name, or from a YAML file path."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if text.endswith((".yaml", ".yml")) or "/" in text or path.is_file():
        if not path.is_file():
            raise ArchivistError(not_a_file(path, "profile file"))
        return load_file(path)
    entry = _find(text, ("profile", "mix"))
    if entry is None:
        known = ", ".join(_names("profile") + _names("mix"))
        raise ArchivistError(f"profile or mix {text!r} not found; known: {known}")
    if entry.origin == "user" and entry.name in shipped_names():  # pragma: no cover - _find prefers shipped
        raise ArchivistError(f"{entry.path}: user profile reuses the shipped name {entry.name!r}")
    return load_file(entry.path)


def check_user_names() -> list[str]:
    """Warnings for user files that shadow shipped names (they are ignored)."""
    taken = shipped_names()
    out = []
    for e in list_entries():
        if e.origin == "user" and e.name in taken:
            out.append(f"{e.path}: reuses the shipped name {e.name!r} and is ignored; rename it")
    return out


def new_profile(name: str, template: str = "normal") -> Path:
    """Create ``ARCHIVIST_HOME/profiles/NAME.yaml`` from another profile; returns its path."""
    if not NAME_PATTERN.match(name):
        raise ArchivistError(f"profile name {name!r} is not allowed; allowed: letters, digits, '_', '-', '.'")
    if name in shipped_names():
        raise ArchivistError(f"profile name {name!r} is a shipped profile; choose another name")
    folder = user_profiles_dir(create=True)
    path = folder / f"{name}.yaml"
    if path.exists():
        raise ArchivistError(f"{path}: already exists")
    source = load_profile(template)
    if isinstance(source, Mix):
        # The key ``template`` is what ``profiles new --from`` sets: the command line shows the flag.
        raise Conflict(("template",), f"{template!r} is a mix; {{0}} takes a profile")
    doc = source.to_document()
    doc["name"] = name
    doc["description"] = f"Made from {source.name}. {source.description}".strip()
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=110)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    log.info("created %s from %s", path, source.name)
    return path
