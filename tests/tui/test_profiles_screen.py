"""2 Profiles: list, toggle, edit with the schema's validation, preview, save as, mix weights."""

from __future__ import annotations

import yaml
from textual.widgets import DataTable, OptionList, Static

from tests.tui.conftest import cell_texts, make_app, type_and_enter, wait_for


def _status(app) -> str:
    return str(app.screen.query_one("#profiles-status", Static).render())


async def test_profile_editor_validates_previews_and_saves(archivist_home):
    from archivist_tui.widgets.image import InlineImage

    app = make_app(start="profiles")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.doc is not None, what="a profile loaded")
        options = screen.query_one(OptionList)
        names = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert "profile:normal" in names and "mix:default" in names
        options.highlighted = names.index("profile:normal")
        await wait_for(pilot, lambda: screen.doc["name"] == "normal", what="normal")

        # the preview: clean and damaged frames rendered by the degrader in a child process
        clean = screen.query_one("#profiles-clean", InlineImage)
        damaged = screen.query_one("#profiles-damaged", InlineImage)
        await wait_for(pilot, lambda: damaged.path is not None and damaged.path.exists(), what="preview")
        assert clean.path.exists()
        drawn = screen.query_one("#profiles-drawn", Static)
        assert "grain.strength=" in str(drawn.render())  # what the degrader drew, from its record

        table = screen.query_one(DataTable)
        table.focus()
        effects = list(screen.doc["effects"])
        row = effects.index("grain")
        table.move_cursor(row=row)
        await pilot.pause()

        # space toggles the effect
        before = screen.doc["effects"]["grain"]["enabled"]
        await pilot.press("space")
        assert screen.doc["effects"]["grain"]["enabled"] is (not before)
        await pilot.press("space")

        # an out-of-bounds value is refused with the schema's message and not kept
        await pilot.press("enter")
        await type_and_enter(pilot, "probability=1.7")
        await wait_for(pilot, lambda: "✗" in _status(app), what="error shown")
        assert "probability" in _status(app)
        assert screen.doc["effects"]["grain"]["probability"] != 1.7

        # a good value is kept and shown
        await pilot.press("enter")
        await type_and_enter(pilot, "probability=0.25 strength=3-6")
        await wait_for(pilot, lambda: "✓" in _status(app), what="valid")
        assert screen.doc["effects"]["grain"]["probability"] == 0.25
        assert cell_texts(table)[row][2] == "0.25"

        # re-roll the seed
        seed = screen.seed
        await pilot.press("s")
        assert screen.seed != seed

        # save as a user profile
        await pilot.press("S")
        await type_and_enter(pilot, "mygrain")
        saved = archivist_home / "profiles" / "mygrain.yaml"
        await wait_for(pilot, lambda: saved.exists(), what="saved")
        doc = yaml.safe_load(saved.read_text())
        assert doc["name"] == "mygrain" and doc["effects"]["grain"]["probability"] == 0.25
        from engine.degrade import load_profile

        assert load_profile("mygrain").effects["grain"].values["strength"] == (3, 6)

        # mix weights: a shipped mix is saved as a user copy
        await wait_for(pilot, lambda: "mix:default" in [options.get_option_at_index(i).id
                                                        for i in range(options.option_count)])
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        options.highlighted = ids.index("mix:default")
        await wait_for(pilot, lambda: screen.current is not None and screen.current.kind == "mix")
        await pilot.press("m")
        await type_and_enter(pilot, "subtle=1 normal=1")
        mix = archivist_home / "profiles" / "mixes" / "default-custom.yaml"
        await wait_for(pilot, lambda: mix.exists(), what="mix saved")
        assert yaml.safe_load(mix.read_text())["profiles"] == {"subtle": 1, "normal": 1}
