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
ROUNDS = 6


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.slow
def test_kill_9_at_random_moments(queue_home, tmp_path, wait_for):
    """Six rounds: start the daemon, wait until a worker is really at work, let a seeded random moment
    pass, kill -9 the daemon, its workers or both. Each job waits at a gate before it writes its output
    until the test opens it, two more jobs each round, so every round kills with jobs still to finish
    and the completions happen among the kills; how fast the machine is changes no verdict."""
    from engine.queue.daemon import worker_alive
    from tests.queue.kinds_for_tests import Gate

    rng = random.Random(int(os.environ.get("ARCHIVIST_TEST_SEED", "20261124")))
    counter = tmp_path / "counter"
    gates = [Gate(tmp_path / f"gate{i}") for i in range(JOBS)]
    with QueueClient() as q:
        ids = [q.submit("selftest", {"output": str(tmp_path / f"out{i}.txt"), "steps": STEPS, "step_time": 0.02,
                                     "counter": str(counter), "gate": str(gates[i]), "hold_at": [STEPS]})
               for i in range(JOBS)]

    def at_work() -> bool:
        with Store() as s:
            return any(worker_alive(j.worker_pid, j.worker_started) for j in s.jobs("running"))

    for round_ in range(ROUNDS):
        start_daemon()
        wait_for(at_work, timeout=60, what=f"a worker at work in round {round_}")
        for i in range(2 * round_):  # the jobs claimed first (lowest ids) may finish from now on
            gates[i].open(STEPS)
        time.sleep(rng.uniform(0.0, 0.5))  # a seeded random moment, not a wait for anything
        pid = daemon_pid()
        with Store() as s:
            workers = [j.worker_pid for j in s.jobs("running") if j.worker_pid]
        mode = "all" if round_ == 0 else rng.choice(["all", "all", "daemon", "workers"])
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
        if mode == "workers":
            time.sleep(rng.uniform(0.1, 0.5))
            _kill(pid)
        wait_for(lambda: daemon_pid() is None, timeout=30, what="the killed daemon's lock to go")
        with Store() as s:
            assert not all(j.status == "done" for j in s.jobs()), "every job finished while some were held"

    for g in gates:
        g.open(STEPS)
    start_daemon()

    def all_done() -> bool:
        with Store() as s:
            return all(j.status == "done" for j in s.jobs())

    wait_for(all_done, timeout=120, what="every job done")

    with Store() as s:
        jobs = s.jobs()
        assert [j.id for j in jobs] == ids
        for j in jobs:
            assert j.status == "done" and j.attempts == 0 and j.error is None, j
            done_events = [e for e in s.events(j.id) if e.message == "done"]
            assert len(done_events) == 1, (j.id, done_events)
        # Round 0 killed workers at work: their jobs were taken back, not counted as failures.
        assert any("taken back" in e.message for j in jobs for e in s.events(j.id))
    for i, jid in enumerate(ids):
        assert (tmp_path / f"out{i}.txt").read_text() == f"job {jid} steps {STEPS}\n"
        assert not (tmp_path / f"out{i}.txt.partial").exists()
    lines = counter.read_text().split()
    records = [" ".join(lines[k:k + 2]) for k in range(0, len(lines), 2)]
    assert not [r for r in records if r.startswith("twice")], records
    assert len(records) == len(set(records))  # no job completed twice
    assert set(records) <= {f"done {jid}" for jid in ids}  # a kill between output and record loses a record


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ARCHIVIST_SLOW_TESTS") != "1",
                    reason="1-2 min (each worker imports torch and PyAV): set ARCHIVIST_SLOW_TESTS=1")
def test_kill_9_during_video_restore_jobs(queue_home, tmp_path, tiny_compact, wait_for):
    """The same with real video restores: kill -9 the daemon with its workers, and the daemon alone
    (its workers go on as orphans while the queue is read and jobs are added, and a new daemon
    starts). Every job, added ones too, is done exactly once (no attempt counted, one ``done``), the
    database passes ``integrity_check``, and every FFV1 output equals a clean run frame for frame."""
    import sqlite3

    import av
    import numpy as np

    from archivist_tui.cli import main
    from engine.queue.kinds import JobContext, get_kind

    rng = random.Random(int(os.environ.get("ARCHIVIST_TEST_SEED", "7")))
    model, _ = tiny_compact
    clip = tmp_path / "reel.mkv"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "bgr0"
        for i in range(12):
            img = np.full((32, 48, 3), (i * 20) % 256, dtype=np.uint8)
            img[i % 32, :, 1] = 255 - i  # each frame differs in more than its level
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)

    def spec(name: str) -> dict:
        return {"input": str(clip), "output": str(tmp_path / name), "models": [str(model)],
                "video": {"segment_frames": 3, "overlap": False}}

    def frames(path) -> list:
        with av.open(str(path)) as f:
            return [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]

    clean_dir = tmp_path / "clean-work"
    clean_dir.mkdir()
    restore = get_kind("restore")
    assert restore.run(restore.validate(spec("clean.mkv")), JobContext(
        job_id=0, device="cpu", work_dir=clean_dir, progress=lambda done, total: None,
        should_stop=lambda: False)) is True
    reference = frames(tmp_path / "clean.mkv")
    assert len(reference) == 12

    with QueueClient() as q:
        ids = [q.submit("restore", spec(f"r{i}.mkv"), device="cpu") for i in range(8)]

    def all_done() -> bool:
        with Store() as s:
            jobs = s.jobs()
            assert not [j for j in jobs if j.status == "failed"], [j.error for j in jobs]
            return all(j.status == "done" for j in jobs)

    from engine.queue.daemon import worker_alive

    def restoring() -> list[int]:  # workers past their imports, restoring frames
        with Store() as s:
            return [j.worker_pid for j in s.jobs("running")
                    if (j.done or 0) > 0 and worker_alive(j.worker_pid, j.worker_started)]

    # Claims each job may have beyond its first: one per kill of its worker, and one where a daemon
    # died between claiming a job and recording its worker (the next daemon takes such a job back).
    # Any other claim is a job run again: a result that never reached the store.
    extra_claims: dict[int, int] = {}
    # Each worker imports torch and PyAV: few rounds keep this test near a minute.
    for kind_of_kill in ("daemon and workers", "daemon only", "daemon only"):
        if all_done():
            break
        start_daemon()
        wait_for(lambda: restoring() or all_done(), timeout=120, what="a worker restoring frames")
        time.sleep(rng.uniform(0.0, 1.0))  # a seeded random moment, not a wait for anything
        pid = daemon_pid()
        children = psutil.Process(pid).children() if psutil.pid_exists(pid) else []
        _kill(pid)
        if kind_of_kill == "daemon and workers":
            for child in children:
                _kill(child.pid)
        wait_for(lambda: daemon_pid() is None, timeout=30, what="the killed daemon's lock to go")
        killed = {c.pid for c in children} if kind_of_kill == "daemon and workers" else set()
        with Store() as s:
            for job in s.jobs("running"):
                if job.worker_pid is None or job.worker_pid in killed:
                    extra_claims[job.id] = extra_claims.get(job.id, 0) + 1
        if kind_of_kill == "daemon only":
            # The orphans go on; meanwhile the queue is read and jobs are added (each acknowledged).
            assert main(["queue", "list"]) == 0
            with QueueClient() as q:
                ids.append(q.submit("restore", spec(f"r{len(ids)}.mkv"), device="cpu"))
    if not all_done():
        start_daemon()
        wait_for(all_done, timeout=240, what="every video job done")
    with Store() as s:
        jobs = s.jobs()
        assert sorted(j.id for j in jobs) == sorted(ids)  # no acknowledged job lost
        for job in jobs:
            assert job.attempts == 0, (job.id, job.error)
            messages = [e.message for e in s.events(job.id)]
            assert messages.count("done") == 1, (job.id, messages)
            claims = [m for m in messages if m.startswith("claimed")]
            assert len(claims) <= 1 + extra_claims.get(job.id, 0), (job.id, messages)
    conn = sqlite3.connect(queue_home / "queue.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    for job in jobs:
        got = frames(job.output)
        assert len(got) == 12, job.id
        assert all(np.array_equal(a, b) for a, b in zip(got, reference)), f"job {job.id} differs from a clean run"
