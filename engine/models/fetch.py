"""Downloading published models from the catalog into the library.

A download goes to ``ARCHIVIST_HOME/models/.downloads/NAME.part``. A dropped connection keeps
that file, and the next fetch of the same model asks the server for the rest with an HTTP
``Range`` request (a server that ignores it and sends the whole file again is handled too). When
the file is complete its size and sha256 are checked against the catalog; a mismatch deletes the
partial file and is reported with the expected and actual values. Only then is the file imported
into the library (converted to ``.safetensors``, its code never run).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.document import Conflict
from engine.errors import ArchivistError
from engine.models.catalog import CatalogEntry, find_entry, load_catalog
from engine.models.library import Library, ModelEntry

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, "int | None"], None]
CHUNK = 256 * 1024
USER_AGENT = "archivist-model-fetch/1"
CONTENT_RANGE_RE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class DownloadInterrupted(ArchivistError):
    """The connection dropped before the file was complete; the partial file is kept for resuming."""


@dataclass
class FetchResult:
    """What one fetch did."""

    entry: CatalogEntry
    model: ModelEntry | None
    file_sha256: str = ""
    size: int = 0
    resumed_from: int = 0
    verified: bool = False
    skipped: bool = False


def downloads_dir(library: Library) -> Path:
    """``<library root>/.downloads``, where partial downloads live (mode 0700, hidden from listings)."""
    path = library.root / ".downloads"
    path.mkdir(parents=True, mode=0o700, exist_ok=True)
    return path


def part_path(entry: CatalogEntry, library: Library) -> Path:
    """The partial-download file of a catalog entry."""
    return downloads_dir(library) / f"{entry.name}.part"


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _lock(handle) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise ArchivistError(f"{handle.name}: another fetch of this model is running") from None


class _RangeRefused(Exception):
    pass


def _request(entry: CatalogEntry, start: int, timeout: float, dest: Path):
    """Open the download (from byte ``start``), turning network failures into one clear error."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(entry.url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:
            raise _RangeRefused from None
        raise ArchivistError(f"{entry.name}: download failed: HTTP {exc.code} {exc.reason} from {entry.url}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        kept = (f"{start} bytes kept in {dest}: run the same command again to resume" if start
                else "check the network and run the same command again")
        raise DownloadInterrupted(f"{entry.name}: cannot reach {entry.url} ({reason}); {kept}") from None


def download(entry: CatalogEntry, dest: Path, progress: ProgressFn | None = None,
             timeout: float = 30.0) -> int:
    """Download (or finish downloading) ``entry.url`` into ``dest`` and return the byte offset resumed from.

    ``dest`` is the partial file: existing bytes are kept and the rest is asked for with a
    ``Range`` request. ``progress(done, total)`` is called as bytes arrive (total is None when
    neither the server nor the catalog says). Raises :class:`DownloadInterrupted` (partial file
    kept) when the connection drops, :class:`ArchivistError` for HTTP errors and for a server
    whose size disagrees with the catalog (partial file deleted).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _download(entry, dest, progress, timeout)
    finally:
        # A failure before any byte arrived leaves nothing worth resuming.
        if dest.exists() and dest.stat().st_size == 0:
            dest.unlink(missing_ok=True)


def _download(entry: CatalogEntry, dest: Path, progress: ProgressFn | None, timeout: float) -> int:
    with open(dest, "ab") as out:
        _lock(out)
        start = out.seek(0, os.SEEK_END)
        if entry.bytes is not None and start > entry.bytes:
            log.info("%s: partial file larger than the catalog size, starting again", dest)
            _restart(out)
            start = 0
        if entry.bytes is not None and start == entry.bytes:
            if progress:
                progress(start, entry.bytes)
            return start  # complete already (killed between download and check)
        try:
            resp = _request(entry, start, timeout, dest)
        except _RangeRefused:
            # The server has no bytes past ours: the partial file is stale; start again.
            log.info("%s: server refused the range from byte %d, starting again", dest, start)
            _restart(out)
            start = 0
            resp = _request(entry, 0, timeout, dest)
        with resp:
            total = _plan(resp, entry, out, start, dest)
            resumed_from = start if resp.status == 206 else 0
            done = out.tell()
            if progress:
                progress(done, total)
            try:
                while True:
                    block = resp.read1(CHUNK)  # what has arrived: a stall loses nothing already received
                    if not block:
                        break
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
                    if entry.bytes is not None and done > entry.bytes:
                        out.close()
                        dest.unlink(missing_ok=True)
                        raise ArchivistError(
                            f"{entry.name}: size mismatch: expected {entry.bytes} bytes, the server sent "
                            f"more ({done} so far); partial download deleted")
            except (OSError, http.client.HTTPException) as exc:
                out.flush()
                raise DownloadInterrupted(
                    f"{entry.name}: connection dropped after {done} of {total or '?'} bytes "
                    f"({type(exc).__name__}); the partial download is kept in {dest}: "
                    "run the same command again to resume") from None
            out.flush()
            if total is not None and done < total:
                raise DownloadInterrupted(
                    f"{entry.name}: connection dropped after {done} of {total} bytes; the partial download "
                    f"is kept in {dest}: run the same command again to resume")
    return resumed_from


def _restart(out) -> None:
    out.seek(0)
    out.truncate()


def _plan(resp, entry: CatalogEntry, out, start: int, dest: Path) -> int | None:
    """Position the partial file for this response and return the expected total size."""
    length = resp.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    total: int | None
    if resp.status == 206:
        m = CONTENT_RANGE_RE.match(resp.headers.get("Content-Range", ""))
        if m is None or int(m.group(1)) != start:
            # A range we did not ask for: trust none of it, and let the next run start from zero.
            _restart(out)
            raise DownloadInterrupted(
                f"{entry.name}: the server answered a different byte range "
                f"({resp.headers.get('Content-Range')!r}) than asked for (from byte {start}); the partial "
                "download was discarded: run the same command again to download from the start")
        total = int(m.group(3)) if m.group(3) != "*" else None
        log.info("%s: resuming at byte %d", entry.name, start)
    else:
        if start:
            log.info("%s: the server ignored the Range request; downloading the whole file again", entry.name)
            _restart(out)
        total = length
    if total is None:
        total = entry.bytes
    elif entry.bytes is not None and total != entry.bytes:
        out.close()
        dest.unlink(missing_ok=True)
        raise ArchivistError(
            f"{entry.name}: size mismatch: expected {entry.bytes} bytes, the server offers {total} bytes "
            f"({entry.url}); partial download deleted")
    return total


def verify(entry: CatalogEntry, path: Path) -> str:
    """Check a complete download's size and sha256 against the catalog; returns the actual sha256.

    A mismatch deletes the file and raises :class:`ArchivistError` naming expected and actual.
    An unverified entry (no sha256 in the catalog) passes: nothing can be checked.
    """
    size = path.stat().st_size
    if entry.bytes is not None and size != entry.bytes:
        path.unlink(missing_ok=True)
        raise ArchivistError(f"{entry.name}: size mismatch: expected {entry.bytes} bytes, got {size} bytes "
                             f"from {entry.url}; partial download deleted")
    actual = file_sha256(path)
    if entry.sha256 is None:
        # Callers see FetchResult.verified; the command line prints the warning itself.
        log.info("%s: the catalog has no checksum for this model: the download (sha256 %s) could not be "
                 "verified", entry.name, actual)
    elif actual != entry.sha256:
        path.unlink(missing_ok=True)
        raise ArchivistError(f"{entry.name}: checksum mismatch: expected sha256 {entry.sha256}, got {actual} "
                             f"from {entry.url}; partial download deleted")
    return actual


def fetch(name: str | CatalogEntry, *, library: Library | None = None, force: bool = False,
          progress: ProgressFn | None = None, timeout: float = 30.0) -> FetchResult:
    """Download a catalog model, verify it and import it into the library under its catalog name.

    Refuses (before downloading) when the library has a model of that name, unless ``force``.
    Raises :class:`DownloadInterrupted` when the connection drops (run again to resume) and
    :class:`ArchivistError` for a checksum or size mismatch, an HTTP error or an unreadable file.
    """
    entry = name if isinstance(name, CatalogEntry) else find_entry(name)
    library = library if library is not None else Library()
    existing = library.find(entry.name)
    if existing is not None and (existing.builtin or not force):
        # Named by the key ``force``; the command line shows its flag (``--force``).
        raise Conflict(("force",), f"a model named {entry.name!r} is in the library already"
                                   + ("" if existing.builtin else "; use {0} to download and replace it"))
    part = part_path(entry, library)
    resumed_from = download(entry, part, progress=progress, timeout=timeout)
    actual = verify(entry, part)
    size = part.stat().st_size
    # Import from a file with the right suffix, so the reader knows the format.
    suffix = Path(entry.filename).suffix.lower() or ".pth"
    ready = part.with_name(f"{entry.name}.download{suffix}")
    os.replace(part, ready)
    try:
        model = library.import_file(ready, name=entry.name, role=entry.role, source=entry.url, force=force,
                                    file_sha256=actual, checksum_verified=entry.verified)
    finally:
        ready.unlink(missing_ok=True)
    log.info("%s: fetched %d bytes (sha256 %s) into the library", entry.name, size, actual)
    return FetchResult(entry=entry, model=model, file_sha256=actual, size=size,
                       resumed_from=resumed_from, verified=entry.verified)


def fetch_all(*, library: Library | None = None, force: bool = False,
              progress_for: Callable[[CatalogEntry], ProgressFn | None] | None = None,
              timeout: float = 30.0) -> list[FetchResult | ArchivistError]:
    """Fetch every catalog model; models already in the library are skipped unless ``force``.

    Returns one item per catalog entry, a :class:`FetchResult` or the :class:`ArchivistError` that
    stopped that model (the others still run).
    """
    library = library if library is not None else Library()
    results: list[FetchResult | ArchivistError] = []
    for entry in load_catalog():
        existing = library.find(entry.name)
        if existing is not None and not force:
            results.append(FetchResult(entry=entry, model=existing, skipped=True, verified=entry.verified))
            continue
        try:
            results.append(fetch(entry, library=library, force=force, timeout=timeout,
                                 progress=progress_for(entry) if progress_for else None))
        except ArchivistError as exc:
            results.append(exc)
    return results


def catalog_status(library: Library | None = None) -> list[dict]:
    """The catalog with, for each model, whether the library holds it (``installed``) and from where."""
    library = library if library is not None else Library()
    rows = []
    for entry in load_catalog():
        d = entry.to_dict()
        existing = library.find(entry.name)
        d["installed"] = existing is not None
        d["installed_source"] = existing.source if existing is not None else None
        part = library.root / ".downloads" / f"{entry.name}.part"
        d["partial_bytes"] = part.stat().st_size if part.exists() else 0
        rows.append(d)
    return rows


__all__ = [
    "DownloadInterrupted", "FetchResult", "catalog_status", "download", "fetch", "fetch_all", "file_sha256",
    "part_path", "verify",
]
