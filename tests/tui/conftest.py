"""TUI fixtures: the app run headless against a real temporary ARCHIVIST_HOME."""

from __future__ import annotations

import asyncio
import inspect
import shutil
import time
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run ``async def`` tests in a fresh event loop (no asyncio plugin needed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = pyfuncitem._fixtureinfo.argnames
        asyncio.run(pyfuncitem.obj(**{n: pyfuncitem.funcargs[n] for n in names}))
        return True
    return None


@pytest.fixture
def steady_header(monkeypatch):
    """Snapshots must not show the machine's CPU load: the header's device figure is fixed."""
    from archivist_tui import data

    monkeypatch.setattr(data, "device_summary", lambda: "cpu")


@pytest.fixture
def library_model(archivist_home, tiny_compact):
    """A real tiny model in the library, named ``tiny``."""
    path, _net = tiny_compact
    target = archivist_home / "models"
    target.mkdir(exist_ok=True)
    shutil.copyfile(path, target / "tiny.safetensors")
    return target / "tiny.safetensors"


def make_app(**kwargs):
    from archivist_tui.app import ArchivistApp

    kwargs.setdefault("images", "halfcell")
    kwargs.setdefault("poll_seconds", 0.2)
    app = ArchivistApp(**kwargs)
    app.animation_level = "none"
    return app


async def wait_for(pilot, condition, timeout: float = 60.0, what: str = "condition"):
    """Let the app run until ``condition()`` holds (polls, workers and child processes finish)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        try:
            if condition():
                return
        except Exception:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def type_and_enter(pilot, text: str, clear: bool = True):
    from textual.widgets import Input

    await wait_for(pilot, lambda: pilot.app.screen.query(Input), 30, "an input")
    field = pilot.app.screen.query_one(Input)
    if clear:
        field.value = ""
    field.insert_text_at_cursor(text)
    await pilot.press("enter")


def cell_texts(table) -> list[list[str]]:
    """A DataTable's cells as plain strings, row by row."""
    rows = []
    for row_key in table.rows:
        rows.append([str(getattr(c, "plain", c)) for c in table.get_row(row_key)])
    return rows


@pytest.fixture
def png(tmp_path):
    """Write a small real PNG and return its path."""
    import cv2
    import numpy as np

    def make(name: str = "frame.png", w: int = 64, h: int = 48, seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img)
        return path

    return make


@pytest.fixture
def queue_daemon(archivist_home, kinds_for_tests, monkeypatch):
    """A quick daemon configuration with the test-only kinds (``selftest``, ``gated``); the daemon
    (if a test starts one) and its workers are stopped afterwards."""
    from tests.queue.conftest import _stop_everything, write_config

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    write_config(archivist_home)
    yield archivist_home
    _stop_everything()
