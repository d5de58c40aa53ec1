"""Where Archivist keeps its state (``ARCHIVIST_HOME``) and where the shipped data lives."""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import ArchivistError


def archivist_home(create: bool = True) -> Path:
    """Return the state directory: ``$ARCHIVIST_HOME``, else ``$XDG_DATA_HOME/archivist``.

    Always an absolute path (a relative one is taken from the current folder), so a daemon or a
    worker that runs elsewhere is handed the same place. Created with mode 0700 (owner only) when
    missing; an existing directory is left as it is (``archivist doctor`` reports loose permissions).
    """
    env = os.environ.get("ARCHIVIST_HOME")
    if env:
        home = Path(env).expanduser()
        if str(home).startswith("~"):
            raise ArchivistError(f"ARCHIVIST_HOME={env}: no such user's home folder to expand")
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        home = Path(xdg) / "archivist"
    home = Path(os.path.abspath(home))
    if create and not home.is_dir():
        try:
            home.mkdir(parents=True, mode=0o700, exist_ok=True)
            os.chmod(home, 0o700)
        except OSError as exc:
            raise ArchivistError(f"cannot create state directory {home}: {exc.strerror}") from exc
    return home


def state_subdir(name: str, create: bool = True) -> Path:
    """A directory inside the state directory (``models``, ``runs``, ``jobs``, ``profiles``), mode 0700."""
    path = archivist_home(create) / name
    if create and not path.is_dir():
        path.mkdir(parents=True, mode=0o700, exist_ok=True)
    return path


def shipped_profiles_dir() -> Path:
    """The shipped ``profiles/`` folder: next to the package in a source tree, inside it in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "profiles", here.parent / "profiles"):
        if candidate.is_dir():
            return candidate
    raise ArchivistError(f"shipped profiles not found next to {here} (broken installation)")
