"""How the screens look, at 80×24 and 160×48 (pytest-textual-snapshot; ``--snapshot-update`` to accept)."""

from __future__ import annotations

import pytest

from tests.tui.conftest import make_app, wait_for
from tests.tui.test_queue_screen import write_store
from tests.tui.test_training_screen import write_run

SIZES = [(80, 24), (160, 48)]


async def settle(pilot):
    """Tables size their columns on the refresh after rows arrive: let a few refreshes pass."""
    for _ in range(3):
        await pilot.pause(0.1)
        await pilot.wait_for_scheduled_animations()


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_queue_snapshot(snap_compare, steady_header, archivist_home, tmp_path, size, monkeypatch):
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    log = tmp_path / "job.log"
    log.write_text("segment 17 closed\n")
    write_store(archivist_home, log, event_time=1_700_000_000.0)

    async def ready(pilot):
        from textual.widgets import DataTable

        await wait_for(pilot, lambda: pilot.app.screen.query_one(DataTable).row_count == 2)
        await wait_for(pilot, lambda: "reel_03" in str(pilot.app.screen.query_one("#queue-detail").render()))
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_models_snapshot(snap_compare, steady_header, library_model, size):
    async def ready(pilot):
        from textual.widgets import DataTable

        await wait_for(pilot, lambda: pilot.app.screen.query_one(DataTable).row_count >= 1)
        await settle(pilot)

    assert snap_compare(make_app(start="models"), terminal_size=size, run_before=ready)


@pytest.mark.slow
def test_training_snapshot(snap_compare, steady_header, archivist_home):
    import os

    write_run(archivist_home, "antilines-ft", range(10, 210, 10), pid=os.getpid())

    async def ready(pilot):
        await wait_for(pilot, lambda: "iter 200" in str(pilot.app.screen.query_one("#training-summary").render()))
        await settle(pilot)

    assert snap_compare(make_app(start="training"), terminal_size=(160, 48), run_before=ready)


@pytest.mark.slow  # over ~1 s: outside the inner loop (CI runs it)
def test_profiles_snapshot(snap_compare, steady_header):
    async def ready(pilot):
        await wait_for(pilot, lambda: pilot.app.screen.doc is not None)
        await settle(pilot)

    # 80 columns: the preview panel folds away (a line says p shows it), so nothing here depends
    # on a child process.
    assert snap_compare(make_app(start="profiles"), terminal_size=(80, 24), run_before=ready)


async def _open_grain_form(pilot, preview: bool):
    """normal › grain, its strength field focused (cursor steady), the preview finished if shown."""
    from tests.tui.test_profiles_screen import focus_field, open_effect, select

    screen = pilot.app.screen
    await select(pilot, "profile:normal")
    form = await open_effect(pilot, "grain")
    field = await focus_field(pilot, form, "strength-low")
    for widget in screen.query("Input"):
        widget.cursor_blink = False
    field.selection = type(field.selection)(0, len(field.value))
    if preview:
        await wait_for(pilot, lambda: screen.preview is not None and screen.preview.generation == screen.generation,
                       timeout=60, what="the preview")
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
@pytest.mark.slow
def test_profiles_form_snapshot(snap_compare, steady_header, size):
    async def ready(pilot):
        await _open_grain_form(pilot, preview=size[0] >= 100)

    assert snap_compare(make_app(start="profiles"), terminal_size=size, run_before=ready)


@pytest.mark.slow
def test_profiles_full_screen_preview_snapshot(snap_compare, steady_header):
    async def ready(pilot):
        await _open_grain_form(pilot, preview=True)
        await pilot.press("p")
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#profiles-side").display)
        await settle(pilot)

    assert snap_compare(make_app(start="profiles"), terminal_size=(80, 24), run_before=ready)
