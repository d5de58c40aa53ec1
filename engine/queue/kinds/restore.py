"""The ``restore`` job kind: an image, a folder of images, a video or an image sequence through a
model chain (what ``archivist restore ... --queue`` submits).

Its spec is the declared document :class:`RestoreSpec`; :func:`validate` builds it, then checks
what lies between keys and on disk, and returns the same plain dict that jobs have always stored.
"""

from __future__ import annotations

import logging
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.devices import PRECISIONS
from engine.document import Conflict, InvalidValue, UnknownKey, boolean, choice, text, value
from engine.errors import ArchivistError
from engine.inference.backends import BACKENDS
from engine.media import is_video
from engine.queue.kinds.common import JobContext, JobKind, job_ledger, read_spec, remove_path, rmdir_if_empty

log = logging.getLogger(__name__)

# VideoOptions fields a queued video job may set (resume and work_dir belong to the queue).
VIDEO_KEYS = ("codec", "crf", "preset", "encoder_opts", "segment_frames", "start", "duration", "deinterlace",
              "ivtc", "fps", "batch", "queue_size", "decode_threads", "overlap", "check_space", "audio", "pad_even")
# Written out rather than imported: the modules that hold them import numpy, and submitting a job
# (the TUI's process among others) needs neither.
IMAGE_FORMATS = ("png", "tiff")  # engine.inference.imageio.OUTPUT_FORMATS
TONES = ("auto", "color", "gray")  # engine.inference.tone.TONES


def _models(models: object) -> list:
    if not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models):
        raise ValueError  # refused with the key's allowed words
    return models


def _tiling(key: str):
    """The chain's own rule for ``tile``/``tile_overlap`` (:func:`engine.inference.chain.tiling_problem`),
    applied when the job is submitted as when it runs."""

    def convert(size: object) -> object:
        from engine.inference.chain import tiling_problem  # numpy: only once a job is submitted

        problem = tiling_problem(key, size)
        if problem:
            raise ValueError(problem.removeprefix("allowed "))
        return size

    return convert


def _video(video: object) -> dict:
    if not isinstance(video, dict):
        raise ValueError
    for key in video:
        if key not in VIDEO_KEYS:
            raise UnknownKey(f"video.{key}", list(VIDEO_KEYS))
    return video


@dataclass
class RestoreSpec:
    """A queued restore job's spec (JSON), as ``archivist restore ... --queue`` writes it."""

    input: str | None = text(None, "the image, folder of images, video or image sequence to restore",
                             allowed="a path")
    output: str | None = text(None, "the output file or folder (a trailing / names a folder)", allowed="a path")
    models: list | None = value(None, "the chain, one stage per model, applied in order",
                                allowed="a non-empty list of MODEL[:strength[:sigma]]", convert=_models)
    tile: int = value(0, "process in tiles of this many pixels to bound memory (0: the whole frame)",
                      allowed="0 (no tiling) or a tile size the chain takes", convert=_tiling("tile"))
    tile_overlap: int = value(40, "context pixels shared by neighbouring tiles",
                              allowed="a whole number of pixels, 0 or more", convert=_tiling("tile_overlap"))
    precision: str = choice("auto", PRECISIONS, "the precision the networks run in")
    format: str | None = choice(None, IMAGE_FORMATS, "the image format written (null: the input's)", optional=True)
    tone: str = choice("auto", TONES, "black and white kept or colour forced (auto: as the source is)")
    backend: str = choice("auto", BACKENDS, "how the networks run (eager, compiled, TensorRT)")
    video: dict | None = value({}, "video options: " + ", ".join(VIDEO_KEYS), allowed="a mapping of video options",
                               convert=_video, optional=True)
    overwrite: bool = boolean(False, "replace outputs that exist")
    cluster: str | None = text(None, "the Ray cluster to restore on", optional=True,
                               allowed="auto, local, ray://HOST:PORT or HOST:PORT")


def validate(spec: dict) -> dict:
    """The restore spec checked and normalised (paths absolute); everything the job would refuse
    when it runs (the chain, the tiles, the output) is refused now."""
    doc = read_spec(RestoreSpec, spec, "restore", required=("input", "output", "models"))
    src = Path(doc.input).expanduser().resolve()
    if not src.exists():
        raise ArchivistError(f"restore job: input {src}: no such file or folder")
    absolute = _absolute_models(doc.models)
    trailing_sep = doc.output.endswith(os.sep)
    out_abs = str(Path(doc.output).expanduser().resolve()) + (os.sep if trailing_sep else "")
    _check_installed(doc)
    video = doc.video or {}
    # Checked now, not when the job runs: the options, and the output (not the input, not there
    # unless overwrite).
    if video or is_video(src):
        from engine.video.plan import check_output

        with _named_in_video(video):
            check_output(src, out_abs, _video_options(video, overwrite=doc.overwrite))
    else:
        from engine.inference.restore import check_outputs, plan_images

        check_outputs(plan_images(src, out_abs, doc.format), doc.overwrite)
    checked = {"input": str(src), "output": out_abs, "models": absolute, "tile": doc.tile,
               "tile_overlap": doc.tile_overlap, "precision": doc.precision, "format": doc.format, "video": video}
    if doc.tone != "auto":  # only when given: the spec of an ordinary job stays as it was
        checked["tone"] = doc.tone
    if doc.backend != "auto":
        checked["backend"] = doc.backend
    if doc.overwrite:
        checked["overwrite"] = True
    if doc.cluster is not None:
        checked["cluster"] = doc.cluster
    return checked


def _absolute_models(models: list[str]) -> list[str]:
    """Each stage parsed (strength and sigma checked); a model file's path made absolute, since the
    worker runs in another folder (a library name is kept, and resolved when the job runs)."""
    from engine.inference.chain import parse_stage
    from engine.models.library import Library

    library = None
    absolute = []
    for m in models:
        stage = parse_stage(m)
        path = Path(stage.model).expanduser()
        if path.is_file():
            m = str(path.resolve()) + m[len(stage.model):]
        else:  # a library name must name a model now, not three failed attempts later
            library = library or Library()
            entry = library.get(stage.model)  # raises with the names there are
            if stage.sigma is not None and entry.arch != "drunet":
                raise ArchivistError(f"stage {m!r}: sigma given but {entry.arch} takes no noise level")
        absolute.append(m)
    return absolute


def _check_installed(doc: RestoreSpec) -> None:
    """What the job needs installed where it is added: the backend's packages, Ray for a cluster.

    A refusal that names its keys (``backend``, ``cluster``) passes as it is, so the command line
    can name the flags instead; any other is said to be the restore job's."""
    from engine.inference.backends import check_backend

    try:
        check_backend(doc.backend)  # tensorrt must be importable here, as for --backend
        if doc.cluster is not None:
            from engine.cluster import check_address

            check_address(doc.cluster)  # the address's form, and Ray installed here (the one-line hint)
    except (InvalidValue, Conflict):
        raise
    except ArchivistError as exc:
        raise ArchivistError(f"restore job: {exc}") from None


@contextmanager
def _named_in_video(video: dict):
    """Refusals of the video options name them as the spec does: ``video.codec``, ``video.fps``
    (the spec's own keys, such as ``overwrite``, keep their names)."""
    import dataclasses

    from engine.video.options import VideoOptions

    section = {f.name for f in dataclasses.fields(VideoOptions)} - {"overwrite"}

    def name(key: str) -> str:
        return f"video.{key}" if key in section else key

    try:
        yield
    except InvalidValue as exc:
        raise InvalidValue(name(exc.key), exc.value, exc.allowed) from None
    except Conflict as exc:
        raise Conflict([name(k) for k in exc.keys], exc.why) from None


def _video_options(video: dict, **queue_owned):
    """``VideoOptions`` from a job's ``video`` document (``fps`` as a string such as ``24000/1001``)."""
    from engine.video.options import VideoOptions, parse_fps

    for key, option in video.items():  # NaN passes every range check: refused here, by name
        if isinstance(option, float) and not math.isfinite(option):
            raise InvalidValue(f"video.{key}", option, "a finite number")
    values = dict(video)
    with _named_in_video(video):
        if values.get("fps") is not None:
            values["fps"] = parse_fps(str(values["fps"]))
        try:
            return VideoOptions(**values, **queue_owned)
        except TypeError as exc:
            raise ArchivistError(f"restore job: video options: {exc}") from None


def _run(spec: dict, ctx: JobContext) -> bool:
    from engine.inference.chain import Chain, parse_stage

    ledger = job_ledger(ctx.work_dir, ctx.job_id)
    overwrite = bool(spec.get("overwrite", False))
    output = Path(spec["output"])
    if is_video_job(spec) and str(output.absolute()) in ledger.finals() and output.exists():
        # This job gave the file its final name in an earlier attempt, then lost its worker before
        # it could say so: it is done. (An output this job did not record is never taken as done.)
        log.info("job %d: %s was finished by an earlier attempt", ctx.job_id, output)
        return True

    stages = [parse_stage(m) for m in spec["models"]]
    chain = Chain.load(stages, device=ctx.device, precision=spec["precision"], tile=spec["tile"],
                       tile_overlap=spec["tile_overlap"], backend=spec.get("backend", "auto"))
    log.info("job %d: chain %s on %s", ctx.job_id, chain.describe(), ctx.device)
    if is_video_job(spec):
        return _run_video(spec, ctx, chain, ledger, overwrite)
    from engine.inference.restore import restore_images

    result = restore_images(spec["input"], spec["output"], chain, fmt=spec["format"], progress=ctx.progress,
                            should_stop=ctx.should_stop, tone=spec.get("tone", "auto"), overwrite=overwrite,
                            ledger=ledger, cluster=spec.get("cluster"))
    if result.skipped:
        log.info("job %d: %d image(s) were finished by an earlier attempt", ctx.job_id, result.skipped)
    return not result.stopped


def _run_video(spec: dict, ctx: JobContext, chain, ledger, overwrite: bool) -> bool:
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
        rmdir_if_empty(ctx.work_dir / "video")  # its segments' folder goes when they do
    log.info("job %d: video %s after %d of %s segments (resumed after %d)", ctx.job_id, result.status,
             result.segments_done, result.segments_total, getattr(result, "resumed_from", 0))
    return result.status != "paused"


def is_video_job(spec: dict) -> bool:
    """A video file in, or any input with video options (``archivist restore --queue`` sets them for a
    video or an image sequence with ``--fps``)."""
    return bool(spec.get("video")) or is_video(spec["input"])


def _cleanup(spec: dict, work_dir: Path) -> None:
    # Only what the ledger lists: partial files, finished files that replaced nothing, folders the
    # job made. Sources, earlier results and anything else at the output path are never touched.
    removed = job_ledger(work_dir).remove_created()
    remove_path(work_dir / "video")  # the segments, in the job's own folder
    log.info("restore job cancelled: %d file(s) it created removed", len(removed))


RESTORE = JobKind("restore", validate, _run, _cleanup, lambda spec: spec.get("output"))
