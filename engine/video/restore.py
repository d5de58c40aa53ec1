"""Restore a video (or an image sequence) through a model chain: segmented, resumable, overlapped.

The entry point shared by the command line and the job queue is :func:`restore_video`. Frames are
decoded, restored and encoded by :func:`engine.video.pipeline.run_overlapped`; output goes into
segments of ``segment_frames`` frames under ``ARCHIVIST_HOME/jobs/<key>/`` (or ``work_dir``), each
recorded in ``state.json`` when it closes. A later run with ``resume=True`` continues at the first
unfinished segment; the final file is assembled by stream copy and renamed into place.

The options and their parsers live in :mod:`engine.video.options`, the plan (everything checked
before the first frame) in :mod:`engine.video.plan`, the job key and ``state.json`` in
:mod:`engine.video.resume`. Here: the run in steps: prepare the job folder, restore the frames
into segments, conclude (assemble, rename into place).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from engine.document import Conflict
from engine.errors import ArchivistError
from engine.ownership import Ledger, human_bytes, place, place_folder
from engine.video.encode import ImageSequenceWriter, SegmentWriter, StreamLayout
from engine.video.frames import ImageSequenceSource, VideoSource
from engine.video.options import VideoOptions
from engine.video.pipeline import StopPipeline, run_overlapped, run_sequential
from engine.video.plan import RestorePlan, check_writable_folder, plan_restore
from engine.video.resume import job_key, read_state, state_document, write_state
from engine.video.streams import disposition_flags

log = logging.getLogger(__name__)

# Compressed size as a fraction of raw RGB (3 bytes per pixel, 6 above 8 bits), for the space check:
# (least, typical). The least is below what flat, clean cartoon frames compress to, so a run is refused
# only when even that cannot fit; the typical figure (grainy film) only brings a warning.
_SIZE_FACTOR = {"ffv1": (0.03, 0.6), "x264": (0.001, 0.03), "x265": (0.0005, 0.02), "prores": (0.05, 0.35),
                "png": (0.03, 0.7), "tiff": (0.03, 1.0)}


@dataclass
class VideoResult:
    """What a run did: ``done`` (output in place) or ``paused`` (stopped after a frame, its segment closed)."""

    status: str
    output: Path
    frames: int
    segments_done: int
    segments_total: int | None
    job_key: str
    job_dir: Path
    seconds: float
    resumed_from: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _check_space(folders: list[tuple[Path, tuple[int, int]]]) -> None:
    """``folders``: (folder, (least, typical) bytes needed there). Folders on one file system add up
    (the segments and the final file coexist while it is assembled).

    Refused only when even the least the output can take does not fit; when the typical size does
    not, a warning (a run that fills the disk keeps its finished segments: free space, --resume).
    """
    by_device: dict[int, list] = {}
    for folder, (least, typical) in folders:
        dev = folder.stat().st_dev
        entry = by_device.setdefault(dev, [folder, 0, 0])
        entry[1] += least
        entry[2] += typical
    for folder, least, typical in by_device.values():
        free = shutil.disk_usage(folder).free
        verdict = space_verdict(least, typical, free)
        log.info("space: %s to %s needed in %s (estimate), %s free", human_bytes(least), human_bytes(typical),
                 folder, human_bytes(free))
        if verdict == "refuse":
            raise ArchivistError(
                f"{folder}: not enough free space: the output needs at least about {human_bytes(least)} "
                f"(estimate), {human_bytes(free)} free; free space, choose a lossy codec or another work folder"
            )
        if verdict == "warn":
            log.warning("%s: the output may need up to about %s and %s is free: if the disk fills, the finished "
                        "segments are kept (free space, then --resume)", folder, human_bytes(typical),
                        human_bytes(free))


def space_verdict(least: int, typical: int, free: int) -> str:
    """``refuse`` when even the least estimate is more than ``free``, ``warn`` when the typical one
    is, else ``ok``. All in bytes."""
    if least > free:
        return "refuse"
    return "warn" if typical > free else "ok"


class _SegmentSink:
    """Receives restored frames in order and writes them into segments, recording each as it closes."""

    def __init__(self, run: _Run):
        self.run = run
        self.writer: SegmentWriter | None = None
        self.seg_first_pts: int | None = None
        self.seg_frames = 0
        self.frames = 0
        self.last_pts = 0

    def __call__(self, frame) -> None:
        run = self.run
        if run.pts_offset is None:
            run.pts_offset = frame.pts if run.options.start > 0 else 0
            run.time_base = frame.time_base
        pts = frame.pts - run.pts_offset
        if run.sequence_writer is not None:
            run.sequence_writer.write(frame.rgb, frame.index)
        else:
            if self.writer is None:
                seg = run.segment_path(len(run.segments), partial=True)
                self.writer = SegmentWriter(seg, run.plan, run.layout_for(frame), threads=0)
            self.writer.write(frame.rgb, pts, frame.duration)
        if self.seg_first_pts is None:
            self.seg_first_pts = frame.pts
        self.seg_frames += 1
        self.frames += 1
        self.last_pts = frame.pts
        done = run.frames_before + self.frames
        if run.progress:
            run.progress(done, run.total_frames)
        # Segments end on the grid of ``segment_frames`` counted from the first frame, also after a
        # pause split one: the next segment ends where the uninterrupted run's does, so only the
        # split segment differs (two short ones), and a lossy encode differs there only.
        if done % run.options.segment_frames == 0:
            self.close_segment(frame.pts)
        # Asked after every frame (and by the pipeline while no frame arrives): a pause closes the
        # open segment early, so no restored frame is lost and the run stops now, not a segment later.
        self.waiting()

    def waiting(self) -> None:
        """Asked after each frame and while no frame arrives: a stop request closes the open segment now."""
        run = self.run
        if run.should_stop is not None and run.should_stop():
            self.close_segment(self.last_pts)
            raise StopPipeline

    def close_segment(self, last_pts: int) -> None:
        run = self.run
        if self.seg_frames == 0:
            return
        number = len(run.segments)
        reorder = 0
        if self.writer is not None:
            self.writer.close()
            reorder = self.writer.reorder
            self.writer = None
            os.replace(run.segment_path(number, partial=True), run.segment_path(number))
        # The actual boundaries, as closed: the final file is joined from these records.
        run.segments.append({"index": number, "frames": self.seg_frames, "first_pts": self.seg_first_pts,
                             "last_pts": last_pts, "reorder": reorder})
        run.save_state()
        run.announce(number)
        self.seg_first_pts = None
        self.seg_frames = 0

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        self.run.segment_path(len(self.run.segments), partial=True).unlink(missing_ok=True)


class _Run:
    """The state of one restoration job: where its segments live and what is done."""

    def __init__(self, job_dir: Path, key: str, options: VideoOptions, progress, should_stop, on_segment):
        self.job_dir = job_dir
        self.key = key
        self.options = options
        self.progress = progress
        self.should_stop = should_stop
        self.on_segment = on_segment
        self.segments: list[dict] = []
        self.ahead: list[dict] = []  # a cluster run's segments finished after an unfinished one (engine.cluster)
        self.pts_offset: int | None = None
        self.time_base: Fraction | None = None
        self.total_frames: int | None = None
        self.frames_before = 0
        self.plan = None
        self.sequence_writer: ImageSequenceWriter | None = None
        self.layout: StreamLayout | None = None
        self.meta: dict = {}
        self.ledger: Ledger | None = None
        self.sequence_out = False  # frames go straight into an image folder; segments are records only

    @property
    def state_path(self) -> Path:
        return self.job_dir / "state.json"

    def segment_path(self, number: int, partial: bool = False) -> Path:
        return self.job_dir / f"segment-{number:05d}.nut{'.partial' if partial else ''}"

    def layout_for(self, frame) -> StreamLayout:
        layout = self.layout
        return StreamLayout(layout.width, layout.height, frame.time_base, layout.rate,
                            layout.sample_aspect_ratio, layout.color_primaries, layout.color_trc)

    def segments_total(self) -> int | None:
        """The segments closed so far plus those the rest of the grid needs (a pause adds one)."""
        if not self.total_frames:
            return None
        size = self.options.segment_frames
        closed = sum(s["frames"] for s in self.segments)
        rest = max(0, self.total_frames - closed)
        to_grid = min(rest, -closed % size)  # frames that end a segment split by a pause
        return max(1, len(self.segments) + (1 if to_grid else 0) + -(-(rest - to_grid) // size))

    def announce(self, number: int) -> None:
        total = self.segments_total()
        total = max(total or 0, number + 1)
        log.info("segment %d/%d done", number + 1, total)
        if self.on_segment is not None:
            self.on_segment(number + 1, total)

    def save_state(self, complete: bool = False) -> None:
        write_state(self.state_path, state_document(self.key, self.segments, self.ahead, self.pts_offset,
                                                    self.time_base, self.options.segment_frames, self.meta, complete))

    def load_state(self) -> bool:
        """Take over finished segments from an earlier run; False when there is nothing usable."""
        state = read_state(self.state_path, self.key, lambda index: self.segment_path(index).is_file(),
                           records_only=self.sequence_out)
        if state is None:
            return False
        self.segments, self.ahead = state.segments, state.ahead
        self.pts_offset, self.time_base = state.pts_offset, state.time_base
        return bool(state.segments)


def restore_video(input_path: str | Path, output: str | Path, chain, options: VideoOptions | None = None,
                  progress: Callable[[int, int | None], None] | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  on_segment: Callable[[int, int], None] | None = None,
                  on_plan: Callable[[RestorePlan], None] | None = None,
                  ledger: Ledger | None = None, cluster: str | None = None) -> VideoResult:
    """Restore a video file (or an image sequence, with ``options.fps``) through ``chain`` into ``output``.

    ``chain`` needs ``run_batch(NxHxWx3 float32)``, ``scale`` and ``identity()`` (an
    :class:`engine.inference.chain.Chain`). Everything is checked first (:func:`plan_restore`);
    ``on_plan(plan)`` receives the plan before the first frame is decoded. ``progress(done, total)``
    is called per frame; ``on_segment(i, n)`` as each segment closes; ``should_stop()`` is asked
    after every frame and, when true, the open segment is closed early (``state.json`` records its
    actual frames and timestamps) and the run ends with status ``paused``; a later ``resume=True``
    continues after that frame and closes the next segment back on the ``segment_frames`` grid, so
    an FFV1 output is bit for bit the uninterrupted one. Raises :class:`ArchivistError` for every expected failure, leaving
    no file that looks finished.

    What the run creates outside its job folder (the final file while it is assembled, an image
    sequence's folder) is written under a hidden partial name and recorded in ``ledger`` (a queued
    job's; by default one in the job folder) before it is made; the final name is given by one
    rename. An existing output is refused unless ``options.overwrite``, and then replaced only by
    that rename. A run that fails before its first segment leaves no job folder behind.

    ``cluster`` (``auto``, ``local``, ``ray://host:port``): the segments are restored as Ray tasks
    (:mod:`engine.cluster`) and assembled here; the job key, the segments and ``state.json`` are
    the local run's, so either kind of run resumes the other.
    """
    options = options or VideoOptions()
    started = time.monotonic()
    if cluster is not None:
        from engine.cluster import check_address

        check_address(cluster)
    scale = int(getattr(chain, "scale", 1) or 1)
    mine = frozenset(ledger.finals()) if ledger is not None else frozenset()
    plan = plan_restore(input_path, output, options, scale, mine)
    if cluster is not None:
        _check_cluster_plan(plan, options)
    key, job_dir = _check_job(plan, chain, options)
    # Only a run that goes ahead shows its plan: a refusal is its one error line and nothing else.
    if on_plan is not None:
        on_plan(plan)
    run = _prepare_run(plan, key, job_dir, options, progress, should_stop, on_segment, ledger)
    try:
        if cluster is not None:
            return _restore_on_cluster(plan, run, chain, options, started, cluster)
        return _restore_frames(plan, run, chain, options, started)
    except BaseException:
        if not run.segments:  # nothing worth keeping for --resume: no empty job folder is left
            run.ledger.discard_partials()
            shutil.rmtree(run.job_dir, ignore_errors=True)
        raise


def _check_cluster_plan(plan: RestorePlan, options: VideoOptions) -> None:
    """What a cluster run does not do (yet), refused before anything is written."""
    if plan.info is None or plan.sequence_out is not None:
        raise Conflict(("cluster",), "{0} restores a video file into a video file: image sequences (in or out) "
                       "run on one machine (leave out {0})")
    for key in ("start", "duration", "deinterlace", "ivtc"):
        if getattr(options, key) not in (0, None, False):
            raise Conflict(("cluster", key), "{0} does not combine with {1}: leave out {0} for this")


def _restore_on_cluster(plan: RestorePlan, run: _Run, chain, options: VideoOptions, started: float,
                        address: str) -> VideoResult:
    from engine.cluster import connect, run_segments

    done_frames = run.frames_before
    with connect(address) as ray:
        stopped = run_segments(ray, run, plan, chain, options, run.progress, run.should_stop)
    return _conclude(plan, run, options, started, done_frames, stopped)


def _restore_frames(plan: RestorePlan, run: _Run, chain, options: VideoOptions, started: float) -> VideoResult:
    run.ahead = []  # a cluster run's segments past the first unfinished one are made again here, in order
    done_frames = run.frames_before
    info = plan.info
    if plan.info is None:
        frames = ImageSequenceSource(plan.files, options.fps, first_index=done_frames, gray=plan.gray)
    else:
        after = run.segments[-1]["last_pts"] if run.segments else None
        frames = VideoSource(info, start=options.start, duration=options.duration, resume_after_pts=after,
                             first_index=done_frames, video_filter=options.video_filter,
                             threads=options.decode_threads, gray=plan.gray)
    stats = _run_frames(run, frames, chain, options)
    return _conclude(plan, run, options, started, done_frames, stats.stopped)


def _conclude(plan: RestorePlan, run: _Run, options: VideoOptions, started: float, done_frames: int,
              stopped: bool) -> VideoResult:
    """Paused: the result says so; else the final file from the segments, and the job folder removed."""
    produced = sum(s["frames"] for s in run.segments)
    if stopped:
        log.info("paused after segment %d", len(run.segments))
        return VideoResult("paused", plan.output_path, produced, len(run.segments), run.segments_total(), run.key,
                           run.job_dir, time.monotonic() - started, done_frames)
    if produced == 0:
        if options.start:
            raise Conflict(("start",), f"{plan.input_path}: no frames to restore in the range "
                           f"{{0}} {options.start:g}")
        raise ArchivistError(f"{plan.input_path}: no frames to restore")
    _finish(plan, run, options)
    run.save_state(complete=True)
    shutil.rmtree(run.job_dir, ignore_errors=True)  # the segments (and a direct run's ledger) are done with
    elapsed = time.monotonic() - started
    log.info("restored %d frames in %.1f s", produced, elapsed)
    return VideoResult("done", plan.output_path, produced, len(run.segments), len(run.segments), run.key,
                       run.job_dir, elapsed, done_frames)


def _check_job(plan: RestorePlan, chain, options: VideoOptions) -> tuple[str, Path]:
    """The job's key and folder, the work folder and the free space checked; creates nothing."""
    key = job_key(plan.input_id, plan.output_path, chain.identity(), _job_settings(plan, options))
    job_dir = _job_dir(key, options)
    if options.check_space:  # before anything is created, so a refused run leaves nothing behind
        _check_run_space(plan, options, job_dir, int(getattr(chain, "scale", 1) or 1))
    return key, job_dir


def _prepare_run(plan: RestorePlan, key: str, job_dir: Path, options: VideoOptions, progress, should_stop,
                 on_segment, ledger: Ledger | None) -> _Run:
    """The job folder (checked by :func:`_check_job`), and the segments an earlier run finished (with --resume)."""
    if options.work_dir is None:
        from engine.paths import state_subdir

        state_subdir("jobs")  # made here, not while checking: with its own mode (0700)
    job_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    run = _Run(job_dir, key, options, progress, should_stop, on_segment)
    # A direct run keeps its ledger in the job folder, tagged by the job's key, so a later --resume
    # (another process) knows the partial files as its own.
    run.ledger = ledger if ledger is not None else Ledger(job_dir, f"k{key[:12]}")
    run.total_frames = plan.total
    run.meta = {"input": str(plan.input_path), "output": str(plan.output_path), "codec": plan.codec}
    run.sequence_out = plan.sequence_out is not None
    resumed = options.resume and run.load_state()
    resumed = _open_output(plan, run, resumed)
    _take_over_segments(run, resumed)
    return run


def _job_settings(plan: RestorePlan, options: VideoOptions) -> dict:
    """What besides the input, the output and the chain decides the output (a part of the job key)."""
    settings = {
        "encoder": plan.settings.to_dict(), "start": options.start, "duration": options.duration,
        "filter": options.video_filter, "segment_frames": options.segment_frames,
        "sequence": plan.sequence_out is not None,
    }
    # Only where they change the output, so a colour job started before these existed still resumes.
    if plan.gray:
        settings["tone"] = "gray"
    if plan.encoder is not None and plan.encoder.pad != (0, 0):
        settings["pad"] = list(plan.encoder.pad)
    return settings


def _job_dir(key: str, options: VideoOptions) -> Path:
    """Where the job's segments and state live: ``work_dir/<key>``, else ``ARCHIVIST_HOME/jobs/<key>``."""
    if options.work_dir is not None:
        check_writable_folder(Path(options.work_dir), "work")
        return Path(options.work_dir) / key
    from engine.paths import state_subdir

    return state_subdir("jobs", create=False) / key


def _check_run_space(plan: RestorePlan, options: VideoOptions, job_dir: Path, scale: int) -> None:
    """Refuse a run whose output cannot fit (the segments and the final file, on their file systems).
    On resume the segments already on disk count as written."""
    parent = plan.output_path.parent if str(plan.output_path.parent) else Path(".")
    codec = plan.codec
    bpp = 6 if (plan.high_bit_depth and codec in ("ffv1", "png", "tiff")) else 3
    raw = (plan.total or 0) * plan.width * scale * plan.height * scale * bpp
    need = tuple(int(raw * factor) for factor in _SIZE_FACTOR[codec])
    written = sum(p.stat().st_size for p in job_dir.glob("segment-*")) if options.resume else 0
    work_parent = _nearest_existing(job_dir.parent)  # the jobs folder is made only once the run goes ahead
    if plan.sequence_out is not None:
        _check_space([(parent, need)])
    else:
        _check_space([(work_parent, tuple(max(0, n - written) for n in need)), (parent, need)])


def _nearest_existing(folder: Path) -> Path:
    """``folder`` or its nearest existing parent: the file system a folder not made yet will be on."""
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _open_output(plan: RestorePlan, run: _Run, resumed: bool) -> bool:
    """An image sequence's hidden folder (kept on resume when this job made it) or the encoder's plan;
    returns whether the run still resumes."""
    if plan.sequence_out is None:
        run.ledger.discard_partials()  # a final file being assembled when an earlier attempt was killed
        run.plan = plan.encoder
        run.layout = plan.layout
        return resumed
    out_folder, pattern = plan.sequence_out
    tmp_folder = run.ledger.partial_path(out_folder)
    if not (resumed and tmp_folder.is_dir() and str(tmp_folder.absolute()) in run.ledger.paths("partial")):
        resumed = False
        run.ledger.discard_partials()
        run.ledger.record("partial", tmp_folder)
        try:
            tmp_folder.mkdir()
        except OSError as exc:
            raise ArchivistError(f"{tmp_folder}: cannot create: {exc.strerror or exc}") from None
    run.sequence_writer = ImageSequenceWriter(tmp_folder, pattern, plan.high_bit_depth, plan.gray)
    return resumed


def _take_over_segments(run: _Run, resumed: bool) -> None:
    """Keep an earlier run's finished segments (resumed) or remove them; partial segments always go."""
    if not resumed:
        if not run.options.resume and run.state_path.exists():
            log.warning("an unfinished run of this job was found in %s: starting afresh (--resume continues it)",
                        run.job_dir)
        for old in run.job_dir.glob("segment-*"):
            old.unlink()
        run.segments = []
        run.pts_offset = None
    for leftover in run.job_dir.glob("segment-*.partial"):
        leftover.unlink()
    run.frames_before = sum(s["frames"] for s in run.segments)
    if resumed:
        log.info("resuming %s at segment %d (%d frames done)", run.key, len(run.segments) + 1, run.frames_before)


def _run_frames(run: _Run, frames, chain, options: VideoOptions):
    """Decode → restore → encode into segments; a failure keeps the finished segments and says so."""
    sink = _SegmentSink(run)
    try:
        if options.overlap:
            prepare = run.plan.prepare if run.plan is not None else None
            stats = run_overlapped(frames, chain.run_batch, sink, batch=options.batch, queue_size=options.queue_size,
                                   prepare=prepare, waiting=sink.waiting)
        else:
            stats = run_sequential(frames, chain.run_batch, sink)
        if not stats.stopped and sink.seg_frames:
            sink.close_segment(sink.last_pts)
    except BaseException as exc:
        sink.abort()
        if isinstance(exc, OSError):
            exc = ArchivistError(f"{exc.filename or run.job_dir}: cannot write: {exc.strerror or exc}")
        if isinstance(exc, ArchivistError) and run.segments and "space" in str(exc).lower():
            raise Conflict(("resume",), f"{exc} ({len(run.segments)} finished segment(s) kept in "
                           f"{run.job_dir}: free space and run again with {{0}})") from None
        if exc is not sys.exc_info()[1]:
            raise exc from None
        raise
    return stats


def _finish(plan: RestorePlan, run: _Run, options: VideoOptions) -> None:
    """The final file: the image folder renamed into place, or the segments assembled with the other streams."""
    if plan.sequence_out is not None:
        place_folder(run.sequence_writer.folder, plan.sequence_out[0], run.ledger)
        return
    from engine.video.assemble import Segment, VideoTrack, assemble

    offset_pts = run.pts_offset or 0
    segs = [Segment(run.segment_path(s["index"]), s["first_pts"] - offset_pts, s["frames"], s.get("reorder"))
            for s in run.segments]
    offset = float(offset_pts * run.time_base) if offset_pts and run.time_base else 0.0
    end = options.start + options.duration if options.duration is not None else None
    info = plan.info
    tags = {"color_primaries": run.layout.color_primaries, "color_trc": run.layout.color_trc,
            "colorspace": run.plan.matrix, "color_range": run.plan.color_range,
            "sample_aspect_ratio": run.layout.sample_aspect_ratio, "rotation": info.rotation if info else 0}
    video = VideoTrack(run.time_base or plan.layout.time_base, plan.rate, tags)
    if plan.output_path.suffix.lower() == ".avi":
        video.output_time_base = 1 / plan.rate
    if info is not None:  # the video stream keeps its own tags and dispositions too
        mine = plan.streams.decision(info.video_index)
        video.disposition = disposition_flags(mine.disposition)
        video.metadata = {k: v for k, v in (("language", mine.language), ("title", mine.title)) if v}
    partial = run.ledger.partial_path(plan.output_path)
    run.ledger.record("partial", partial)
    assemble(segs, video, plan.output_path, str(plan.input_path) if info is not None else None,
             plan.streams if info is not None else None, offset, end, into=partial)
    try:
        place(partial, plan.output_path, options.overwrite, run.ledger)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


