"""The resume state of a video restoration: which job a folder belongs to and what it finished.

A job is known by :func:`job_key`, a hash of what determines its output (the input file, the
output path, the chain, the encoding and the range), so a run with other settings never takes
over another's segments. ``state.json`` in the job folder records each segment as it closes (its
frames and timestamps, as written) and is replaced whole each time (:func:`write_state`); a later
run reads back the segments that are still on disk (:func:`read_state`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from engine.atomic import atomic_write

STATE_VERSION = 1


def job_key(input_id: dict, output: Path, chain_identity: list[dict], settings: dict) -> str:
    """A short hash of what determines the output: input file, output path, chain, encoding, range."""
    doc = {"input": input_id, "output": str(output.resolve()), "chain": chain_identity, "settings": settings}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def input_identity(path: Path) -> dict:
    """The input file as the job key knows it: its resolved path, size and modification time."""
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@dataclass
class ResumeState:
    """What an earlier run of the same job left: its finished segments, in order, and their clock."""

    segments: list[dict] = field(default_factory=list)
    ahead: list[dict] = field(default_factory=list)  # a cluster run's segments past an unfinished one
    pts_offset: int | None = None
    time_base: Fraction | None = None


def state_document(key: str, segments: list[dict], ahead: list[dict], pts_offset: int | None,
                   time_base: Fraction | None, segment_frames: int, meta: dict, complete: bool = False) -> dict:
    """The JSON form of ``state.json`` (``meta``: input, output and codec, for a reader)."""
    return {
        "version": STATE_VERSION, "key": key, "segments": segments, "complete": complete,
        "pts_offset": pts_offset, "time_base": str(time_base) if time_base else None,
        "segment_frames": segment_frames, **meta, **({"ahead": ahead} if ahead else {}),
    }


def write_state(path: Path, data: dict) -> None:
    """Replace ``path`` whole: ``state.json.tmp`` flushed to the disk, then one rename."""

    def dump(tmp: Path) -> None:
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=1)

    atomic_write(path, dump, temp=path.with_name(path.name + ".tmp"), fsync=True, parents=False)


def read_state(path: Path, key: str, segment_exists: Callable[[int], bool], records_only: bool = False
               ) -> ResumeState | None:
    """The state an earlier run of job ``key`` left in ``path``, or None when there is none usable.

    Only this state version and this job's key count. The segments are taken in order up to the
    first whose file ``segment_exists(index)`` denies (``records_only``: an image-sequence output,
    whose segments are records, not files); ``ahead`` keeps those whose files exist.
    """
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if state.get("version") != STATE_VERSION or state.get("key") != key:
        return None
    segments = []
    for seg in state.get("segments", []):
        if not records_only and not segment_exists(seg["index"]):
            break
        segments.append(seg)
    tb = state.get("time_base")
    return ResumeState(segments, [seg for seg in state.get("ahead", []) if segment_exists(seg["index"])],
                       state.get("pts_offset"), Fraction(tb) if tb else None)
