"""What every job kind shares: the context a running job gets, the kind itself, reading a declared
spec, the job's ledger and the removal of what a job made.

The kinds (:mod:`.restore`, :mod:`.degrade`, :mod:`.train`) import from here and the registry in
:mod:`engine.queue.kinds` imports them, so the package has no import circle.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.document import UnknownKey, build, keys
from engine.errors import ArchivistError


@dataclass
class JobContext:
    """What a running job gets from its worker."""

    job_id: int
    device: str  # "cpu" or "cuda:0" (the worker sees only its own GPU)
    work_dir: Path  # ARCHIVIST_HOME/jobs/<id>/: resume state, segments
    progress: Callable[[float, float], None]
    should_stop: Callable[[], bool]
    event: Callable[[str], None] | None = None  # records one line in the job's events


@dataclass(frozen=True)
class JobKind:
    """A kind of job: four plain functions (see :mod:`engine.queue.kinds`)."""

    name: str
    validate: Callable[[dict], dict]
    run: Callable[[dict, JobContext], bool | str]  # True: complete; "pause"/"cancel": the job asked itself
    cleanup: Callable[[dict, Path], None]
    output: Callable[[dict], str | None]


def read_spec(document: type, spec: Any, kind: str, required: tuple[str, ...] = ()) -> Any:
    """The declared document ``document`` (:mod:`engine.document`) from a job's JSON spec.

    Unknown keys are refused with the keys allowed, then a key of ``required`` that is absent (or
    null) is named as missing, then every value is checked by its declaration; each refusal names
    the spec's key (``tile = 32 invalid: allowed ...``), which the command line shows as its flag.
    """
    if not isinstance(spec, dict):
        raise ArchivistError(f"{kind} job: spec must be a JSON object")
    declared = list(keys(document))
    for key in spec:  # before "missing": a misspelt required key is reported as the typo it is
        if key not in declared:
            raise UnknownKey(str(key), declared)
    for key in required:
        if spec.get(key) is None:
            raise ArchivistError(f"{kind} job: spec key {key!r} is missing")
    return build(document, spec)


def require(spec: dict, key: str, kind: str, types: type | tuple = str):
    """``spec[key]``, present and of ``types``, for a kind whose spec is not a declared document."""
    if key not in spec or spec[key] is None:
        raise ArchivistError(f"{kind} job: spec key {key!r} is missing")
    if not isinstance(spec[key], types) or isinstance(spec[key], bool) and types is not bool:
        raise ArchivistError(f"{kind} job: spec key {key!r}: {spec[key]!r} has the wrong type")
    return spec[key]


def check_keys(spec: dict, allowed: tuple[str, ...], kind: str) -> None:
    """Refuse a spec that is not an object or has a key outside ``allowed`` (undeclared specs)."""
    if not isinstance(spec, dict):
        raise ArchivistError(f"{kind} job: spec must be a JSON object")
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ArchivistError(f"{kind} job: unknown spec key {unknown[0]!r}; allowed are {', '.join(allowed)}")


def job_ledger(work_dir: Path, job_id: int | None = None):
    """The job's ledger of what it created (``work_dir/owned.jsonl``); its partial files are tagged
    by the job id, which a job folder (``jobs/<id>``) is named by."""
    from engine.ownership import Ledger, job_tag

    if job_id is None:
        try:
            job_id = int(Path(work_dir).name)
        except ValueError:
            job_id = 0
    return Ledger(work_dir, job_tag(job_id))


def remove_path(path: Path) -> None:
    """Remove a file, a link or a whole folder of the job's own (its work folder's contents)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def rmdir_if_empty(folder: Path) -> None:
    """Remove ``folder`` if nothing is left in it."""
    try:
        folder.rmdir()
    except OSError:
        pass
