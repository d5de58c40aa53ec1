"""The overlapped pipeline: order, bounded memory, errors from any stage, a clean stop."""

from __future__ import annotations

import threading
from fractions import Fraction

import numpy as np
import pytest

from engine.errors import ArchivistError
from engine.video.frames import SourceFrame
from engine.video.pipeline import StopPipeline, run_overlapped, run_sequential


def _frames(n, live=None, fail_at=None):
    for i in range(n):
        if fail_at is not None and i == fail_at:
            raise ArchivistError(f"decode failed at {i}")
        if live is not None:
            live.append(i)
        yield SourceFrame(i, i * 2, Fraction(1, 48), np.full((4, 4, 3), i / 100, np.float32))


@pytest.mark.parametrize("batch,prepare", [(1, None), (3, None), (2, lambda rgb: rgb * 2)])
def test_order_and_content(batch, prepare):
    seen = []
    stats = run_overlapped(_frames(20), lambda x: x + 0.5, lambda f: seen.append((f.index, f.pts, float(f.rgb[0, 0, 0]))),
                           batch=batch, queue_size=2, prepare=prepare)
    factor = 2 if prepare else 1
    assert stats.frames == 20
    assert [s[:2] for s in seen] == [(i, i * 2) for i in range(20)]
    assert np.allclose([s[2] for s in seen], [(i / 100 + 0.5) * factor for i in range(20)])


def test_frames_in_flight_are_bounded():
    decoded = []
    written = []
    peak = [0]

    def sink(frame):
        peak[0] = max(peak[0], len(decoded) - len(written))
        written.append(frame.index)

    run_overlapped(_frames(200, live=decoded), lambda x: x, sink, batch=2, queue_size=3, prepare=lambda r: r)
    # decode queue + a batch + conversion queue + encode queue + the frames each thread holds
    assert peak[0] <= 3 + 2 + 3 + 3 + 4


@pytest.mark.parametrize("where", ["decode", "restore", "prepare", "sink"])
def test_an_error_in_any_stage_reaches_the_caller(where):
    def restore(x):
        if where == "restore" and x[0, 0, 0, 0] > 0.05:
            raise ArchivistError("model failed")
        return x

    def prepare(rgb):
        if where == "prepare" and rgb[0, 0, 0] > 0.05:
            raise ArchivistError("convert failed")
        return rgb

    def sink(frame):
        if where == "sink" and frame.index == 5:
            raise OSError(28, "No space left on device")

    before = threading.active_count()
    with pytest.raises((ArchivistError, OSError)):
        run_overlapped(_frames(30, fail_at=7 if where == "decode" else None), restore, sink, queue_size=2,
                       prepare=prepare)
    assert threading.active_count() == before  # no thread left behind


def test_stop_pipeline_ends_cleanly():
    seen = []

    def sink(frame):
        seen.append(frame.index)
        if frame.index == 9:
            raise StopPipeline

    stats = run_overlapped(_frames(100), lambda x: x, sink, queue_size=2)
    assert stats.stopped and seen == list(range(10))
    seq = run_sequential(_frames(100), lambda x: x, sink)
    assert seq.stopped
