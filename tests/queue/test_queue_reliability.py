"""Reliability: kill -9 the daemon and its workers at random moments; every job still ends done once."""

from __future__ import annotations

import os
import random
import signal
import time

import psutil
import pytest

from engine.queue import QueueClient, Store
from engine.queue.daemon import daemon_pid, start_daemon

JOBS = 12
STEPS = 10


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_kill_9_at_random_moments(queue_home, tmp_path, wait_for):
    rng = random.Random(int(os.environ.get("ARCHIVIST_TEST_SEED", "20261124")))
    counter = tmp_path / "counter"
    with QueueClient() as q:
        ids = [q.submit("selftest", {"output": str(tmp_path / f"out{i}.txt"), "steps": STEPS, "step_time": 0.05,
                                     "counter": str(counter)}) for i in range(JOBS)]

    def all_done() -> bool:
        with Store() as s:
            return all(j.status == "done" for j in s.jobs())

    kills = 0
    for _round in range(12):
        start_daemon()
        time.sleep(rng.uniform(0.2, 1.2))
        if all_done():
            break
        pid = daemon_pid()
        with Store() as s:
            workers = [j.worker_pid for j in s.jobs("running") if j.worker_pid]
        mode = rng.choice(["all", "all", "daemon", "workers"])
        if mode in ("all", "daemon"):
            # The whole group: the daemon and the workers it started (orphans of earlier rounds live on).
            children = psutil.Process(pid).children() if psutil.pid_exists(pid) else []
            _kill(pid)
            if mode == "all":
                for child in children:
                    _kill(child.pid)
        if mode in ("all", "workers"):
            for w in workers:
                _kill(w)
        kills += 1
        if mode == "workers":
            time.sleep(rng.uniform(0.1, 0.5))
            _kill(pid)
        wait_for(lambda: daemon_pid() is None, timeout=10, what="the killed daemon's lock to go")
    assert kills >= 5
    if daemon_pid() is None:
        start_daemon()
    wait_for(all_done, timeout=60, what="every job done")

    with Store() as s:
        jobs = s.jobs()
        assert [j.id for j in jobs] == ids
        for j in jobs:
            assert j.status == "done" and j.attempts == 0 and j.error is None, j
            done_events = [e for e in s.events(j.id) if e.message == "done"]
            assert len(done_events) == 1, (j.id, done_events)
    for i, jid in enumerate(ids):
        assert (tmp_path / f"out{i}.txt").read_text() == f"job {jid} steps {STEPS}\n"
        assert not (tmp_path / f"out{i}.txt.partial").exists()
    lines = counter.read_text().split()
    records = [" ".join(lines[k:k + 2]) for k in range(0, len(lines), 2)]
    assert not [r for r in records if r.startswith("twice")], records
    assert len(records) == len(set(records))  # no job completed twice
    assert set(records) <= {f"done {jid}" for jid in ids}


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ARCHIVIST_SLOW_TESTS") != "1",
                    reason="20-70 s (each worker imports torch and PyAV): set ARCHIVIST_SLOW_TESTS=1")
def test_kill_9_during_video_restore_jobs(queue_home, tmp_path, tiny_compact, wait_for):
    """The same with real video restores: each output complete with every frame, none lost."""
    import av
    import numpy as np

    rng = random.Random(int(os.environ.get("ARCHIVIST_TEST_SEED", "7")))
    model, _ = tiny_compact
    clip = tmp_path / "reel.mkv"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "bgr0"
        for i in range(12):
            img = np.full((32, 48, 3), (i * 20) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with QueueClient() as q:
        ids = [q.submit("restore", {"input": str(clip), "output": str(tmp_path / f"r{i}.mkv"), "models": [str(model)],
                                    "video": {"segment_frames": 3, "overlap": False}}, device="cpu")
               for i in range(10)]

    def all_done() -> bool:
        with Store() as s:
            jobs = s.jobs()
            assert not [j for j in jobs if j.status == "failed"], [j.error for j in jobs]
            return all(j.status == "done" for j in jobs)

    for _round in range(2):  # each worker imports torch and PyAV: few rounds keep this test near 20 s
        start_daemon()
        time.sleep(rng.uniform(1.5, 3.0))
        pid = daemon_pid()
        children = psutil.Process(pid).children() if psutil.pid_exists(pid) else []
        _kill(pid)
        for child in children:
            _kill(child.pid)
        wait_for(lambda: daemon_pid() is None, timeout=10, what="the killed daemon's lock to go")
        if all_done():
            break
    if not all_done():
        start_daemon()
        wait_for(all_done, timeout=120, what="every video job done")
    for i, jid in enumerate(ids):
        with av.open(str(tmp_path / f"r{i}.mkv")) as f:
            assert sum(1 for _ in f.decode(video=0)) == 12, jid
    with Store() as s:
        assert all(j.attempts == 0 for j in s.jobs())
