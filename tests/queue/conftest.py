"""Queue fixtures: a fast daemon configuration (0.1 s polls), the test-only job kinds, clean teardown."""

from __future__ import annotations

import os
import signal
import time

import pytest


@pytest.fixture(autouse=True)
def queue_home(archivist_home, kinds_for_tests, monkeypatch):
    """A private ARCHIVIST_HOME with a quick daemon config and the test kinds (``selftest``, ``gated``)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    write_config(archivist_home)
    yield archivist_home
    _stop_everything()


@pytest.fixture
def configure(queue_home):
    """``configure(**settings)`` rewrites the queue section of config.yaml."""
    return lambda **extra: write_config(queue_home, **extra)


def write_config(home, **extra) -> None:
    settings = {"gpus": "[]", "cpu_slots": 2, "poll_interval": 0.1, "stop_grace": 20, "max_attempts": 2}
    settings.update(extra)
    lines = ["queue:"] + [f"  {k}: {v}" for k, v in settings.items()]
    (home / "config.yaml").write_text("\n".join(lines) + "\n")


def _stop_everything() -> None:
    import psutil

    from engine.errors import ArchivistError
    from engine.queue.daemon import daemon_pid, stop_daemon
    from engine.queue.store import Store

    pid = daemon_pid()
    if pid:
        try:
            stop_daemon(timeout=30)
        except ArchivistError:
            os.kill(pid, signal.SIGKILL)
    try:
        with Store() as store:
            pids = [j.worker_pid for j in store.jobs("running") if j.worker_pid]
    except ArchivistError:
        pids = []
    for p in pids:
        try:
            psutil.Process(p).kill()
        except psutil.Error:
            pass


@pytest.fixture
def wait_for():
    """``wait_for(predicate, timeout, what=...)``: poll until truthy, else fail the test."""
    return _wait_for


def _wait_for(predicate, timeout: float = 60.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def daemon_ticks(tmp_path, wait_for):
    """``daemon_ticks(n)``: return once the running daemon has made ``n`` more passes of its loop.

    The positive sign that a moment has passed, instead of a sleep: a chain of ``n`` one-step jobs,
    each ``after`` the one before, so each is claimed on a later pass than the last one ended.
    """
    from engine.queue import QueueClient, Store

    calls = []

    def ticks(n: int = 2) -> None:
        calls.append(n)
        previous = None
        with QueueClient() as q:
            for i in range(n):
                out = tmp_path / f"tick-{len(calls)}-{i}.txt"
                previous = q.submit("selftest", {"output": str(out), "steps": 1, "step_time": 0}, after=previous,
                                    priority=-1000)
        last = previous
        wait_for(lambda: Store().get(last).status == "done", timeout=60, what=f"{n} daemon passes")

    return ticks
