"""What a model in the library may be called, and the roles it may play.

Its own module because the library and the catalog both check names and roles, and the library
also reads the catalog: with the rules here neither has to import the other to check them.
"""

from __future__ import annotations

import re

from engine.errors import ArchivistError

ROLES = ("antilines", "rough", "medium", "soft", "rgb", "denoise", "custom")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str) -> str:
    """A model name: letters, digits, '.', '_' and '-', 1–64 characters, starting with a letter or digit."""
    if not NAME_RE.match(name or ""):
        raise ArchivistError(
            f"invalid model name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def check_role(role: str) -> str:
    """A model role: one of :data:`ROLES`."""
    if role not in ROLES:
        raise ArchivistError(f"invalid role {role!r}: allowed are {', '.join(ROLES)}")
    return role
