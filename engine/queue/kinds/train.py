"""The ``train`` job kind: a training run (what ``archivist train CONFIG --queue`` and ``archivist runs
resume`` submit); it resumes from the run's last checkpoint, and follows ``archivist runs pause|stop``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from engine.devices import PRECISIONS
from engine.document import boolean, choice, integer, text
from engine.errors import ArchivistError
from engine.queue.kinds.common import JobContext, JobKind, read_spec

log = logging.getLogger(__name__)


@dataclass
class TrainSpec:
    """A queued train job's spec (JSON). A config starts a run; a name alone resumes one."""

    config: str | None = text(None, "the training config (YAML)", allowed="a path", optional=True)
    name: str | None = text(None, "the run's name (default: the config's)", optional=True)
    resume: bool = boolean(False, "continue the run from its latest checkpoint")
    stop_at: int | None = integer(None, 1, None, "stop (resumably) at this iteration", unit="iterations",
                                  optional=True)
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
    result = run_training(spec.get("config"), name=spec["name"], resume=spec.get("resume", False),
                          stop_at=spec.get("stop_at"), progress=ctx.progress, should_stop=ctx.should_stop,
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
