"""Job kinds: what a queued job does. One small registry; each kind is four plain functions.

- ``validate(spec) -> spec``: check and normalise the JSON spec when the job is submitted (cheap:
  no torch); raises :class:`ArchivistError` naming the key.
- ``run(spec, ctx) -> bool``: do the work in the worker process; True when complete, False when it
  stopped early at a safe boundary because ``ctx.should_stop()`` said so. It must resume: a second
  run after a crash or a pause continues where the first stopped and never redoes finished units.
- ``cleanup(spec, work_dir)``: after a cancel, remove what the job created and nothing else: the
  files its ledger (``work_dir/owned.jsonl``, :mod:`engine.ownership`) lists. A job that never
  ran has no ledger, so its cancel removes nothing.
- ``output(spec) -> str | None``: the output path, for listings and the end-of-job hook.

The spec is data, never a command line: nothing here runs a shell.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ArchivistError
from engine.media import is_video

log = logging.getLogger(__name__)

TEST_KINDS_ENV = "ARCHIVIST_TEST_KINDS"


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
    name: str
    validate: Callable[[dict], dict]
    run: Callable[[dict, JobContext], bool | str]  # True: complete; "pause"/"cancel": the job asked itself
    cleanup: Callable[[dict, Path], None]
    output: Callable[[dict], str | None]


def kinds() -> dict[str, JobKind]:
    """The registered kinds: the built-in ones, plus those of the modules named in ``ARCHIVIST_TEST_KINDS``.

    ``ARCHIVIST_TEST_KINDS`` is a comma-separated list of importable module names, each with a
    ``KINDS`` sequence of :class:`JobKind`. The tests use it to give the daemon and its workers
    (separate processes, which inherit the variable) job kinds whose speed the test controls.
    A test kind cannot replace a built-in one.
    """
    registry = {k.name: k for k in (RESTORE, DEGRADE, TRAIN)}
    for module_name in filter(None, (m.strip() for m in os.environ.get(TEST_KINDS_ENV, "").split(","))):
        for kind in _kinds_of_module(module_name):
            if kind.name in registry:
                raise ArchivistError(f"{TEST_KINDS_ENV}: module {module_name!r} defines kind {kind.name!r}, "
                                     "which is already registered")
            registry[kind.name] = kind
    return registry


def _kinds_of_module(module_name: str) -> tuple[JobKind, ...]:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ArchivistError(f"{TEST_KINDS_ENV}: cannot import module {module_name!r}: {exc}") from None
    found = getattr(module, "KINDS", None)
    if found is None or not all(isinstance(k, JobKind) for k in found):
        raise ArchivistError(f"{TEST_KINDS_ENV}: module {module_name!r} has no KINDS sequence of JobKind")
    return tuple(found)


def get_kind(name: str) -> JobKind:
    registry = kinds()
    if name not in registry:
        raise ArchivistError(f"unknown job kind {name!r}: allowed are {', '.join(sorted(registry))}")
    return registry[name]


# -- helpers --------------------------------------------------------------------------------------
def _require(spec: dict, key: str, kind: str, types: type | tuple = str):
    if key not in spec or spec[key] is None:
        raise ArchivistError(f"{kind} job: spec key {key!r} is missing")
    if not isinstance(spec[key], types) or isinstance(spec[key], bool) and types is not bool:
        raise ArchivistError(f"{kind} job: spec key {key!r}: {spec[key]!r} has the wrong type")
    return spec[key]


def _check_keys(spec: dict, allowed: tuple[str, ...], kind: str) -> None:
    if not isinstance(spec, dict):
        raise ArchivistError(f"{kind} job: spec must be a JSON object")
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ArchivistError(f"{kind} job: unknown spec key {unknown[0]!r}; allowed are {', '.join(allowed)}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


# -- restore --------------------------------------------------------------------------------------
RESTORE_KEYS = ("input", "output", "models", "tile", "tile_overlap", "precision", "format", "tone", "backend",
                "video", "overwrite", "cluster")
# VideoOptions fields a queued video job may set (resume and work_dir belong to the queue).
VIDEO_KEYS = ("codec", "crf", "preset", "encoder_opts", "segment_frames", "start", "duration", "deinterlace",
              "ivtc", "fps", "batch", "queue_size", "decode_threads", "overlap", "check_space", "audio", "pad_even")


def _restore_validate(spec: dict) -> dict:
    _check_keys(spec, RESTORE_KEYS, "restore")
    src = Path(_require(spec, "input", "restore")).expanduser().resolve()
    out = _require(spec, "output", "restore")
    models = _require(spec, "models", "restore", list)
    if not models or not all(isinstance(m, str) for m in models):
        raise ArchivistError("restore job: spec key 'models' must be a non-empty list of MODEL[:strength[:sigma]]")
    if not src.exists():
        raise ArchivistError(f"restore job: input {src}: no such file or folder")
    from engine.inference.chain import TILING_KEYS, parse_stage, tiling_problem

    absolute = []
    for m in models:
        stage = parse_stage(m)
        path = Path(stage.model).expanduser()
        if path.is_file():  # a model file, not a library name: the worker runs in another folder
            m = str(path.resolve()) + m[len(stage.model):]
        absolute.append(m)
    out_path = Path(out).expanduser()
    trailing_sep = out.endswith(os.sep)
    out_abs = str(out_path.resolve()) + (os.sep if trailing_sep else "")
    tile = spec.get("tile", 0)
    overlap = spec.get("tile_overlap", 40)
    for key, value in zip(TILING_KEYS, (tile, overlap)):  # the rule the chain applies when the job runs
        problem = tiling_problem(key, value)
        if problem:
            raise ArchivistError(f"restore job: spec key {key!r}: {value!r} invalid: {problem}")
    precision = spec.get("precision", "auto")
    from engine.devices import PRECISIONS

    if precision not in PRECISIONS:
        raise ArchivistError(f"restore job: precision {precision!r} invalid: allowed are {', '.join(PRECISIONS)}")
    fmt = spec.get("format")
    if fmt is not None and fmt not in ("png", "tiff"):
        raise ArchivistError(f"restore job: format {fmt!r} invalid: allowed are png, tiff")
    tone = spec.get("tone", "auto")
    if tone not in ("auto", "color", "gray"):
        raise ArchivistError(f"restore job: tone {tone!r} invalid: allowed are auto, color, gray")
    backend = spec.get("backend", "auto")
    if not isinstance(backend, str):
        raise ArchivistError(f"restore job: spec key 'backend': {backend!r} has the wrong type")
    from engine.inference.backends import check_backend

    try:
        check_backend(backend)  # the same check as --backend: tensorrt must be importable
    except ArchivistError as exc:
        raise ArchivistError(f"restore job: {exc}") from None
    video = spec.get("video") or {}
    if not isinstance(video, dict):
        raise ArchivistError("restore job: spec key 'video' must be an object of video options")
    unknown = sorted(set(video) - set(VIDEO_KEYS))
    if unknown:
        raise ArchivistError(f"restore job: unknown video option {unknown[0]!r}; allowed are {', '.join(VIDEO_KEYS)}")
    overwrite = spec.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise ArchivistError(f"restore job: spec key 'overwrite': {overwrite!r} invalid: allowed true or false")
    cluster = spec.get("cluster")
    if cluster is not None:
        from engine.cluster import check_address

        try:
            check_address(cluster)  # the address's form, and Ray installed here (the one-line hint)
        except ArchivistError as exc:
            raise ArchivistError(f"restore job: {exc}") from None
    # Checked now, not when the job runs: the options, and the output (not the input, not there
    # unless overwrite).
    if video or is_video(src):
        from engine.video.restore import check_output

        check_output(src, out_abs, _video_options(video, overwrite=overwrite))
    else:
        from engine.inference.restore import check_outputs, plan_images

        check_outputs(plan_images(src, out_abs, fmt), overwrite)
    checked = {"input": str(src), "output": out_abs, "models": absolute, "tile": tile,
               "tile_overlap": overlap, "precision": precision, "format": fmt, "video": video}
    if tone != "auto":  # only when given: the spec of an ordinary job stays as it was
        checked["tone"] = tone
    if backend != "auto":
        checked["backend"] = backend
    if overwrite:
        checked["overwrite"] = True
    if cluster is not None:
        checked["cluster"] = cluster
    return checked


def _video_options(video: dict, **queue_owned):
    """``VideoOptions`` from a job's ``video`` document (``fps`` as a string such as ``24000/1001``)."""
    from engine.video.restore import VideoOptions, parse_fps

    for key, value in video.items():  # NaN passes every range check: refused here, by name
        if isinstance(value, float) and not math.isfinite(value):
            raise ArchivistError(f"restore job: spec key 'video.{key}': {value!r} invalid: allowed a finite number")
    values = dict(video)
    if values.get("fps") is not None:
        values["fps"] = parse_fps(str(values["fps"]))
    try:
        return VideoOptions(**values, **queue_owned)
    except TypeError as exc:
        raise ArchivistError(f"restore job: video options: {exc}") from None


def _ledger(work_dir: Path, job_id: int | None = None):
    """The job's ledger of what it created (``work_dir/owned.jsonl``); its partial files are tagged
    by the job id, which a job folder (``jobs/<id>``) is named by."""
    from engine.ownership import Ledger, job_tag

    if job_id is None:
        try:
            job_id = int(Path(work_dir).name)
        except ValueError:
            job_id = 0
    return Ledger(work_dir, job_tag(job_id))


def _restore_run(spec: dict, ctx: JobContext) -> bool:
    from engine.inference.chain import Chain, parse_stage

    ledger = _ledger(ctx.work_dir, ctx.job_id)
    overwrite = bool(spec.get("overwrite", False))
    output = Path(spec["output"])
    if _is_video_job(spec) and str(output.absolute()) in ledger.finals() and output.exists():
        # This job gave the file its final name in an earlier attempt, then lost its worker before
        # it could say so: it is done. (An output this job did not record is never taken as done.)
        log.info("job %d: %s was finished by an earlier attempt", ctx.job_id, output)
        return True

    stages = [parse_stage(m) for m in spec["models"]]
    chain = Chain.load(stages, device=ctx.device, precision=spec["precision"], tile=spec["tile"],
                       tile_overlap=spec["tile_overlap"], backend=spec.get("backend", "auto"))
    log.info("job %d: chain %s on %s", ctx.job_id, chain.describe(), ctx.device)
    if _is_video_job(spec):
        from engine.video.restore import restore_video

        options = _video_options(spec.get("video") or {}, resume=True, work_dir=ctx.work_dir / "video",
                                 tone=spec.get("tone", "auto"), overwrite=overwrite)
        (ctx.work_dir / "video").mkdir(mode=0o700, exist_ok=True)

        def on_plan(plan) -> None:  # before the first frame: what happens to every stream
            if ctx.event is not None:
                ctx.event("stream plan: " + "; ".join(plan.streams.lines()))

        try:
            result = restore_video(spec["input"], spec["output"], chain, options=options, progress=ctx.progress,
                                   should_stop=ctx.should_stop, on_plan=on_plan, ledger=ledger,
                                   cluster=spec.get("cluster"))
        finally:
            _rmdir_if_empty(ctx.work_dir / "video")  # its segments' folder goes when they do
        log.info("job %d: video %s after %d of %s segments (resumed after %d)", ctx.job_id, result.status,
                 result.segments_done, result.segments_total, getattr(result, "resumed_from", 0))
        return result.status != "paused"
    from engine.inference.restore import restore_images

    result = restore_images(spec["input"], spec["output"], chain, fmt=spec["format"], progress=ctx.progress,
                            should_stop=ctx.should_stop, tone=spec.get("tone", "auto"), overwrite=overwrite,
                            ledger=ledger, cluster=spec.get("cluster"))
    if result.skipped:
        log.info("job %d: %d image(s) were finished by an earlier attempt", ctx.job_id, result.skipped)
    return not result.stopped


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _is_video_job(spec: dict) -> bool:
    """A video file in, or any input with video options (``archivist restore --queue`` sets them for a
    video or an image sequence with ``--fps``)."""
    return bool(spec.get("video")) or is_video(spec["input"])


def _restore_cleanup(spec: dict, work_dir: Path) -> None:
    # Only what the ledger lists: partial files, finished files that replaced nothing, folders the
    # job made. Sources, earlier results and anything else at the output path are never touched.
    removed = _ledger(work_dir).remove_created()
    _remove(work_dir / "video")  # the segments, in the job's own folder
    log.info("restore job cancelled: %d file(s) it created removed", len(removed))


RESTORE = JobKind("restore", _restore_validate, _restore_run, _restore_cleanup,
                  lambda spec: spec.get("output"))


# -- degrade --------------------------------------------------------------------------------------
DEGRADE_KEYS = ("input", "output", "profile", "count", "seed", "crop", "workers", "clip_length")


def _degrade_validate(spec: dict) -> dict:
    """Everything the writer would refuse, refused now (:func:`engine.degrade.dataset.check_dataset`)."""
    _check_keys(spec, DEGRADE_KEYS, "degrade")
    src = Path(_require(spec, "input", "degrade")).expanduser().resolve()
    out = Path(_require(spec, "output", "degrade")).expanduser().resolve()
    profile = _require(spec, "profile", "degrade")
    if not src.exists():
        raise ArchivistError(f"degrade job: input {src}: no such file or folder")
    if Path(profile).expanduser().is_file():
        profile = str(Path(profile).expanduser().resolve())
    doc = {"input": str(src), "output": str(out), "profile": profile}
    for key, default, lo in (("count", 1, 1), ("seed", 0, 0), ("workers", 1, 1)):
        value = spec.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
            raise ArchivistError(f"degrade job: {key} {value!r} invalid: allowed an integer >= {lo}")
        doc[key] = value
    for key, lo in (("crop", 8), ("clip_length", 1)):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < lo):
            raise ArchivistError(f"degrade job: {key} {value!r} invalid: allowed an integer >= {lo}")
        doc[key] = value
    from engine.degrade import load_profile
    from engine.degrade.dataset import check_dataset

    check_dataset(src, out, load_profile(profile), count=doc["count"], seed=doc["seed"], crop=doc["crop"],
                  workers=doc["workers"], clip_length=doc["clip_length"])
    return doc


def _degrade_run(spec: dict, ctx: JobContext) -> bool:
    from engine.degrade import load_profile
    from engine.degrade.dataset import write_dataset

    kwargs = {k: spec[k] for k in ("count", "seed", "crop", "workers", "clip_length")}

    # The writer reports progress after each pair is written and in the manifest: a safe boundary.
    def progress(done: float, total: float) -> None:
        ctx.progress(done, total)
        if ctx.should_stop() and done < total:
            raise _StopAtBoundary

    try:
        write_dataset(spec["input"], spec["output"], load_profile(spec["profile"]), progress=progress,
                      ledger=_ledger(ctx.work_dir, ctx.job_id), **kwargs)
    except _StopAtBoundary:
        return False
    return True


class _StopAtBoundary(Exception):
    """Raised from a progress callback to stop a writer that has no ``should_stop`` of its own."""


def _degrade_cleanup(spec: dict, work_dir: Path) -> None:
    # The pairs this job wrote go with their manifest lines; a dataset it extended stays as it was
    # before the job, one it created goes (engine.degrade.dataset.undo_job).
    from engine.degrade.dataset import undo_job

    undo_job(_ledger(work_dir))


DEGRADE = JobKind("degrade", _degrade_validate, _degrade_run, _degrade_cleanup,
                  lambda spec: spec.get("output"))


# -- train ----------------------------------------------------------------------------------------
def _train_validate(spec: dict) -> dict:
    _check_keys(spec, ("config", "name", "resume", "stop_at", "precision"), "train")
    spec = dict(spec)
    stop_at = spec.get("stop_at")
    if stop_at is not None and (not isinstance(stop_at, int) or isinstance(stop_at, bool) or stop_at < 1):
        raise ArchivistError(f"train job: spec key 'stop_at': {stop_at!r} invalid: allowed an iteration >= 1")
    if not isinstance(spec.get("resume", False), bool):
        raise ArchivistError(f"train job: spec key 'resume': {spec['resume']!r} invalid: allowed true or false")
    if spec.get("precision") is not None:
        from engine.devices import PRECISIONS

        if spec["precision"] not in PRECISIONS:
            raise ArchivistError(f"train job: spec key 'precision': {spec['precision']!r} invalid: allowed "
                                 f"{', '.join(PRECISIONS)}")
    if not spec.get("name") and not spec.get("config"):
        raise ArchivistError("train job: needs a config file or a run name to resume")
    if spec.get("config"):
        from engine.train import load_config

        name = load_config(spec["config"]).name  # validates the config now, not at run time
        spec["name"] = spec.get("name") or name
    return spec


def _train_run(spec: dict, ctx: JobContext) -> bool:
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


def _train_cleanup(spec: dict, work_dir: Path) -> None:
    # A cancelled training run keeps its checkpoints: they are results, not partial files.
    log.info("train job cancelled; its run directory is kept")


def _train_output(spec: dict) -> str | None:
    from engine.train.runs import run_dir

    return str(run_dir(spec["name"], must_exist=False)) if spec.get("name") else None


TRAIN = JobKind("train", _train_validate, _train_run, _train_cleanup, _train_output)
