"""4 Models against a real library: list, rename, role, export, preview, speed test, remove, import.

Each action runs the real ``archivist`` (or the render helper) in a child process, as the TUI does.
"""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from tests.tui.conftest import cell_texts, make_app, type_and_enter, wait_for


def _names(app) -> list[str]:
    return [row[0] for row in cell_texts(app.screen.query_one(DataTable))]


async def _select(pilot, app, name: str) -> None:
    """Put the cursor on ``name``'s row (the built-in starter is listed too)."""
    await wait_for(pilot, lambda: name in _names(app), what=f"{name} listed")
    app.screen.query_one(DataTable).move_cursor(row=_names(app).index(name))
    await pilot.pause()


def _role(app, name: str) -> str:
    return cell_texts(app.screen.query_one(DataTable))[_names(app).index(name)][3]


@pytest.mark.slow
async def test_models_screen_lists_and_manages_the_library(library_model, archivist_home, tmp_path):
    from archivist_tui.widgets.dialogs import Confirm
    from archivist_tui.widgets.image import InlineImage

    app = make_app(start="models")
    async with app.run_test(size=(140, 36)) as pilot:
        await wait_for(pilot, lambda: "tiny" in _names(app), what="tiny listed")
        row = cell_texts(app.screen.query_one(DataTable))[_names(app).index("tiny")]
        assert row[1:5] == ["compact", "8/2×1", "custom", "1.6 k"]
        assert "archivist-starter" in _names(app)  # the built-in, listed in every library
        models = archivist_home / "models"

        # rename
        await _select(pilot, app, "tiny")
        await pilot.press("n")
        await type_and_enter(pilot, "tiny2")
        await wait_for(pilot, lambda: "tiny2" in _names(app), what="renamed")
        assert (models / "tiny2.safetensors").exists() and not (models / "tiny.safetensors").exists()

        # role
        await _select(pilot, app, "tiny2")
        await pilot.press("o")
        await type_and_enter(pilot, "medium")
        await wait_for(pilot, lambda: _role(app, "tiny2") == "medium", what="role")

        # a wrong role is refused with the command's one-line message (allowed roles named), nothing changes
        await _select(pilot, app, "tiny2")
        await pilot.press("o")
        await type_and_enter(pilot, "sharpen")

        def refusal():
            return next((n for n in app._notifications if n.severity == "error" and "'sharpen'" in str(n.message)),
                        None)

        await wait_for(pilot, refusal, what="the command's one-line refusal")
        assert "\n" not in str(refusal().message).strip() and "antilines" in str(refusal().message)
        assert _role(app, "tiny2") == "medium"
        from engine.models.library import Library

        assert Library(models).get("tiny2").role == "medium"

        # export
        out = tmp_path / "out"
        out.mkdir()
        await _select(pilot, app, "tiny2")
        await pilot.press("e")
        await type_and_enter(pilot, f"safetensors {out}")
        await wait_for(pilot, lambda: (out / "tiny2.safetensors").exists(), what="export")

        # before/after preview, rendered in a child process, shown inline
        await _select(pilot, app, "tiny2")
        await pilot.press("v")
        image = app.screen.query_one(InlineImage)
        await wait_for(pilot, lambda: image.path is not None and image.path.exists(), what="preview")

        # speed test
        await _select(pilot, app, "tiny2")
        await pilot.press("b")
        await wait_for(pilot, lambda: any("fps" in str(n.message) for n in app._notifications), what="speed")

        # remove (confirmed)
        await _select(pilot, app, "tiny2")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")
        await wait_for(pilot, lambda: "tiny2" not in _names(app), what="removed")
        assert not (models / "tiny2.safetensors").exists()

        # import through the path prompt
        await pilot.press("i")
        await type_and_enter(pilot, str(out / "tiny2.safetensors"))
        await wait_for(pilot, lambda: "tiny2" in _names(app), what="imported")


async def test_a_preview_with_nowhere_to_go_says_so_and_keeps_the_app(archivist_home):
    """A file where the TUI's cache folder should be (or a read-only home) made the preview's worker
    fail, which ends a Textual app; now the refusal is a notice."""
    import shutil

    cache = archivist_home / "cache"
    if cache.exists():
        shutil.rmtree(cache)
    cache.write_text("not a folder")
    app = make_app(start="models")
    async with app.run_test(size=(140, 36)) as pilot:
        await wait_for(pilot, lambda: "archivist-starter" in _names(app), what="the library listed")
        app.screen._render_preview(["archivist-starter:1.0"])
        await wait_for(pilot, lambda: any("preview not rendered" in str(n.message) for n in app._notifications),
                       what="the notice")
        assert app.is_running
