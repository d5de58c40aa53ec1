"""The ``train`` job kind: a training run (what ``archivist train CONFIG --queue`` and ``archivist runs
resume`` submit); it resumes from the run's last checkpoint, and follows ``archivist runs pause|stop``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from engine.devices import PRECISIONS
from engine.document import boolean, choice, declared, text
from engine.errors import ArchivistError
from engine.queue.kinds.common import JobContext, JobKind, read_spec
from engine.train.runs import STOP_AT

log = logging.getLogger(__name__)


@dataclass
class TrainSpec:
    """A queued train job's spec (JSON). A config starts a run; a name alone resumes one."""

    config: str | None = text(None, "the training config (YAML)", allowed="a path", optional=True)
    name: str | None = text(None, "the run's name (default: the config's)", optional=True)
    resume: bool = boolean(False, "continue the run from its latest checkpoint")
    stop_at: int | None = declared(STOP_AT, None, optional=True)
    precision: str | None = choice(None, PRECISIONS, "the precision to train in (null: the config's)",
                                   optional=True)


def validate(spec: dict) -> dict:
    """The spec with its run's name filled in from the config, which is validated now, not at run time."""
    read_spec(TrainSpec, spec, "train")
    spec = dict(spec)  # stored as given: only the name is added
    if not spec.get("name") and not spec.get("config"):
        raise ArchivistError("train job: needs a config file or a run name to resume")
    if spec.get("config"):
        from engine.train import load_config

        name = load_config(spec["config"]).name
        spec["name"] = spec.get("name") or name
    if spec.get("config") and not spec.get("resume"):  # a new run (a name alone resumes one)
        from engine.train.runs import check_new_run, check_run_name

        check_new_run(check_run_name(spec["name"]))
    return spec


def _run(spec: dict, ctx: JobContext) -> bool:
    from engine.train import run_training
    from engine.train.runs import list_checkpoints, run_dir

    spec = dict(spec)
    # A job taken back after a crash, or resumed after a pause, continues its own run.
    if list_checkpoints(run_dir(spec["name"], must_exist=False)):
        spec["resume"] = True
        if spec.get("config") and spec["resume"]:
            spec["config"] = None
    device = ctx.device if ctx.device not in (None, "any") else None
    stop_at = spec.get("stop_at")

    def progress(iteration: int, total: int) -> None:
        # A job that stops at an iteration is whole there: "done" at 5/5, not at 5 of the run's 20.
        ctx.progress(iteration, min(total, stop_at) if stop_at else total)

    result = run_training(spec.get("config"), name=spec["name"], resume=spec.get("resume", False),
                          stop_at=spec.get("stop_at"), progress=progress, should_stop=ctx.should_stop,
                          device=device, precision=spec.get("precision"))
    if result.status in ("done", "stop_at"):
        return True
    if not ctx.should_stop():
        # Paused or stopped from outside the queue (`archivist runs pause|stop`, the TUI's Training
        # screen): the job follows the run instead of being queued again and restarted at once.
        return {"paused": "pause", "stopped": "cancel"}.get(result.status, False)
    return False


def _cleanup(spec: dict, work_dir: Path) -> None:
    # A cancelled training run keeps its checkpoints: they are results, not partial files.
    log.info("train job cancelled; its run directory is kept")


def _output(spec: dict) -> str | None:
    from engine.train.runs import run_dir

    return str(run_dir(spec["name"], must_exist=False)) if spec.get("name") else None


TRAIN = JobKind("train", validate, _run, _cleanup, _output)
