"""The overlapped decode → restore → encode pipeline.

Three stages run at once: a decoder thread fills a bounded queue of frames, the calling thread runs
the model over batches of them, and an encoder thread drains a second bounded queue into the sink.
With ``prepare`` a fourth thread converts restored frames for the encoder (float → 8/16-bit → YUV)
so that the encoder thread only encodes and writes.
FFmpeg's decoder, swscale and encoder release the GIL, and so does torch, so on a GPU the model is the
only bottleneck and on a CPU the I/O hides behind inference. Queues are bounded, so memory stays
flat over a film of any length. An error in any stage stops the others and is raised in the caller.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from engine.video.frames import SourceFrame

log = logging.getLogger(__name__)

_END = object()


class StopPipeline(Exception):
    """Raised by a sink to end the run early and cleanly (a pause at a segment boundary)."""


@dataclass
class PipelineStats:
    frames: int = 0
    stopped: bool = False


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event, waiting: Callable[[], None] | None = None):
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return _END
            if waiting is not None:
                waiting()


def run_overlapped(frames: Iterable[SourceFrame], restore: Callable[[np.ndarray], np.ndarray],
                   sink: Callable[[SourceFrame], None], batch: int = 1, queue_size: int = 8,
                   prepare: Callable[[np.ndarray], object] | None = None,
                   waiting: Callable[[], None] | None = None) -> PipelineStats:
    """Decode (thread) → ``restore`` over batches (this thread) → [``prepare`` (thread)] → ``sink`` (thread).

    ``restore`` takes and returns NxHxWx3 float32; ``prepare``, when given, replaces each restored
    frame's ``rgb`` with what it returns; ``sink`` receives each frame in order and may raise
    :class:`StopPipeline` to stop after that frame. ``waiting``, called in the sink's thread each
    0.1 s that no frame arrives (a slow model, a decoder skipping to a resume point), may raise
    :class:`StopPipeline` too: the run then ends without waiting for the frames in flight.
    """
    stop = threading.Event()
    errors: list[BaseException] = []
    decoded: queue.Queue = queue.Queue(maxsize=queue_size)
    restored: queue.Queue = queue.Queue(maxsize=queue_size)
    prepared: queue.Queue = queue.Queue(maxsize=queue_size) if prepare is not None else restored
    stats = PipelineStats()

    def decode_loop():
        try:
            for frame in frames:
                if not _put(decoded, frame, stop):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            errors.append(exc)
            stop.set()
        finally:
            _put(decoded, _END, stop)

    def prepare_loop():
        try:
            while True:
                item = _get(restored, stop)
                if item is _END:
                    break
                item.rgb = prepare(item.rgb)
                if not _put(prepared, item, stop):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            errors.append(exc)
            stop.set()
            return
        _put(prepared, _END, stop)

    def encode_loop():
        try:
            while True:
                item = _get(prepared, stop, waiting)
                if item is _END:
                    return
                sink(item)
                stats.frames += 1
        except StopPipeline:
            stats.stopped = True
            stop.set()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            errors.append(exc)
            stop.set()

    decoder = threading.Thread(target=decode_loop, name="archivist-decode", daemon=True)
    encoder = threading.Thread(target=encode_loop, name="archivist-encode", daemon=True)
    converter = threading.Thread(target=prepare_loop, name="archivist-convert", daemon=True)
    decoder.start()
    encoder.start()
    if prepare is not None:
        converter.start()
    try:
        done = False
        while not done and not stop.is_set():
            group: list[SourceFrame] = []
            while len(group) < batch:
                item = _get(decoded, stop)
                if item is _END:
                    done = True
                    break
                group.append(item)
            if not group:
                break
            # A single frame goes as a view: a stacked copy of a 1080p frame costs milliseconds.
            out = restore(group[0].rgb[None] if len(group) == 1 else np.stack([f.rgb for f in group]))
            for frame, rgb in zip(group, out):
                frame.rgb = rgb
                if not _put(restored, frame, stop):
                    break
    except BaseException as exc:
        errors.append(exc)
        stop.set()
    finally:
        if not stop.is_set():
            _put(restored, _END, stop)
        encoder.join()
        stop.set()
        if prepare is not None:
            converter.join()
        decoder.join()
    if errors:
        raise errors[0]
    return stats


def run_sequential(frames: Iterable[SourceFrame], restore: Callable[[np.ndarray], np.ndarray],
                   sink: Callable[[SourceFrame], None]) -> PipelineStats:
    """The plain loop (decode one, restore it, encode it) the benchmark compares against."""
    stats = PipelineStats()
    for frame in frames:
        frame.rgb = restore(frame.rgb[None])[0]
        try:
            sink(frame)
        except StopPipeline:
            stats.stopped = True
            break
        stats.frames += 1
    return stats
