"""Queue fixtures: a fast daemon configuration (0.1 s polls), the test-only job kind, clean teardown."""

from __future__ import annotations

import os
import signal
import time

import pytest


@pytest.fixture(autouse=True)
def queue_home(archivist_home, monkeypatch):
    """A private ARCHIVIST_HOME with a quick daemon config and the ``selftest`` kind enabled."""
    monkeypatch.setenv("ARCHIVIST_TEST_KINDS", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    write_config(archivist_home)
    yield archivist_home
    _stop_everything()


@pytest.fixture
def configure(queue_home):
    """``configure(**settings)`` rewrites the queue section of config.yaml."""
    return lambda **extra: write_config(queue_home, **extra)


def write_config(home, **extra) -> None:
    settings = {"gpus": "[]", "cpu_slots": 2, "poll_interval": 0.1, "stop_grace": 3, "max_attempts": 2}
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
            stop_daemon(timeout=10)
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


def _wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
