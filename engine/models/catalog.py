"""The catalog of published models that ``archivist models fetch`` knows how to download.

The catalog ships as package data (``engine/models/catalog.json``): for each model its library
name, role, architecture, download URL, size in bytes and sha256 of the file. An entry without a
sha256 is *unverified*: it can be fetched, but nothing proves the bytes are the published ones.
``$ARCHIVIST_CATALOG`` names another catalog file (tests point it at a loopback server).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from engine.errors import ArchivistError

CATALOG_ENV = "ARCHIVIST_CATALOG"
DEFAULT_CATALOG = Path(__file__).resolve().parent / "catalog.json"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class CatalogEntry:
    """One downloadable model."""

    name: str
    role: str
    url: str
    bytes: int | None = None
    sha256: str | None = None
    arch: str | None = None
    description: str = ""

    @property
    def verified(self) -> bool:
        """True when the catalog has a sha256 to check the download against."""
        return self.sha256 is not None

    @property
    def filename(self) -> str:
        """The file name at the end of the URL (``Archivist_Medium.pth``)."""
        return unquote(urlsplit(self.url).path.rsplit("/", 1)[-1]) or f"{self.name}.pth"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verified"] = self.verified
        return d


def catalog_path() -> Path:
    """The catalog in use: ``$ARCHIVIST_CATALOG`` if set, else the one shipped in the package."""
    env = os.environ.get(CATALOG_ENV)
    return Path(env).expanduser() if env else DEFAULT_CATALOG


def load_catalog(path: str | os.PathLike | None = None) -> list[CatalogEntry]:
    """Read and validate a catalog file (default: :func:`catalog_path`).

    The file is a JSON object ``{"models": [...]}`` (or a bare list). Raises
    :class:`ArchivistError` naming the file, the entry and the key for anything malformed.
    """
    from engine.models.names import check_name, check_role

    path = Path(path) if path is not None else catalog_path()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArchivistError(f"{path}: model catalog not found (check ${CATALOG_ENV})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArchivistError(f"{path}: cannot read the model catalog ({exc})") from None
    except ValueError as exc:
        raise ArchivistError(f"{path}: the model catalog is not valid JSON ({exc})") from None
    models = doc.get("models") if isinstance(doc, dict) else doc
    if not isinstance(models, list):
        raise ArchivistError(f"{path}: the model catalog must hold a list 'models'")
    entries: list[CatalogEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(models):
        where = f"{path}: models[{i}]"
        if not isinstance(item, dict):
            raise ArchivistError(f"{where}: must be an object with name, role, url, bytes, sha256")
        unknown = set(item) - {"name", "role", "url", "bytes", "sha256", "arch", "description"}
        if unknown:
            raise ArchivistError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        name, role, url = item.get("name"), item.get("role"), item.get("url")
        try:
            check_name(name if isinstance(name, str) else "")
            check_role(role if isinstance(role, str) else "")
        except ArchivistError as exc:
            raise ArchivistError(f"{where}: {exc}") from None
        if name in seen:
            raise ArchivistError(f"{where}: duplicate name {name!r}")
        seen.add(name)
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ArchivistError(f"{where}: url {url!r} must be an http:// or https:// address")
        size = item.get("bytes")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise ArchivistError(f"{where}: bytes {size!r} must be a positive integer or null")
        sha = item.get("sha256")
        if sha is not None and (not isinstance(sha, str) or not SHA256_RE.match(sha.lower())):
            raise ArchivistError(f"{where}: sha256 {sha!r} must be 64 hexadecimal digits or null")
        entries.append(CatalogEntry(
            name=name, role=role, url=url, bytes=size, sha256=sha.lower() if sha else None,
            arch=item.get("arch"), description=str(item.get("description") or ""),
        ))
    return entries


def find_entry(name: str, catalog: list[CatalogEntry] | None = None) -> CatalogEntry:
    """The catalog entry of a name, or an error that lists the names the catalog knows."""
    catalog = load_catalog() if catalog is None else catalog
    for entry in catalog:
        if entry.name == name:
            return entry
    known = ", ".join(e.name for e in catalog) or "none"
    raise ArchivistError(f"no model named {name!r} in the catalog; known are: {known}")
