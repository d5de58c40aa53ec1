"""The ``degrade`` job kind: a degraded (LQ, GT) dataset written from clean images (what
``archivist degrade ... --queue`` submits); it resumes by skipping the pairs already written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.document import integer, text
from engine.errors import ArchivistError
from engine.queue.kinds.common import JobContext, JobKind, job_ledger, read_spec

# The writer's own arguments, taken from the spec as they are (in the order stored specs have).
WRITER_KEYS = ("count", "seed", "workers", "crop", "clip_length")


@dataclass
class DegradeSpec:
    """A queued degrade job's spec (JSON)."""

    input: str | None = text(None, "the clean image or folder of images", allowed="a path")
    output: str | None = text(None, "the dataset folder (lq/, gt/, manifest.jsonl)", allowed="a path")
    profile: str | None = text(None, "a profile or mix: a shipped name or a YAML file", allowed="a name or a path")
    count: int = integer(1, 1, None, "pairs per image")
    seed: int = integer(0, 0, None, "the master seed")
    crop: int | None = integer(None, 8, None, "a random square crop of each pair, cut from the damaged image (null: the whole image)",
                               unit="pixels", optional=True)
    workers: int = integer(1, 1, None, "worker processes")
    clip_length: int | None = integer(None, 1, None, "frames per aged clip (null: single images)", optional=True)


def validate(spec: dict) -> dict:
    """Everything the writer would refuse, refused now (:func:`engine.degrade.dataset.check_dataset`)."""
    doc = read_spec(DegradeSpec, spec, "degrade", required=("input", "output", "profile"))
    src = Path(doc.input).expanduser().resolve()
    out = Path(doc.output).expanduser().resolve()
    profile = doc.profile
    if not src.exists():
        raise ArchivistError(f"degrade job: input {src}: no such file or folder")
    if Path(profile).expanduser().is_file():
        profile = str(Path(profile).expanduser().resolve())
    checked = {"input": str(src), "output": str(out), "profile": profile}
    checked.update({key: getattr(doc, key) for key in WRITER_KEYS})
    from engine.degrade import load_profile
    from engine.degrade.dataset import check_dataset

    check_dataset(src, out, load_profile(profile), **{key: checked[key] for key in WRITER_KEYS})
    return checked


def _run(spec: dict, ctx: JobContext) -> bool:
    from engine.degrade import load_profile
    from engine.degrade.dataset import write_dataset

    kwargs = {k: spec[k] for k in WRITER_KEYS}

    # The writer reports progress after each pair is written and in the manifest: a safe boundary.
    def progress(done: float, total: float) -> None:
        ctx.progress(done, total)
        if ctx.should_stop() and done < total:
            raise _StopAtBoundary

    try:
        write_dataset(spec["input"], spec["output"], load_profile(spec["profile"]), progress=progress,
                      ledger=job_ledger(ctx.work_dir, ctx.job_id), **kwargs)
    except _StopAtBoundary:
        return False
    return True


class _StopAtBoundary(Exception):
    """Raised from a progress callback to stop a writer that has no ``should_stop`` of its own."""


def _cleanup(spec: dict, work_dir: Path) -> None:
    # The pairs this job wrote go with their manifest lines; a dataset it extended stays as it was
    # before the job, one it created goes (engine.degrade.dataset.undo_job).
    from engine.degrade.dataset import undo_job

    undo_job(job_ledger(work_dir))


DEGRADE = JobKind("degrade", validate, _run, _cleanup, lambda spec: spec.get("output"))
