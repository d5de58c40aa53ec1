"""2 Profiles: the forms built from the schema, validation as you type, saving, mixes, the preview.

Every test drives the real app (Pilot) over a temporary ARCHIVIST_HOME and asserts state: the
fields' texts, the schema's messages, the selection, and what was saved, read back through
``load_profile``. The preview is rendered by the real child process.
"""

from __future__ import annotations

import copy

import pytest
from textual.widgets import DataTable, Input, OptionList, SelectionList, Static, Switch

from tests.tui.conftest import make_app, wait_for


# -- helpers --------------------------------------------------------------------------------------
def _ids(options: OptionList) -> list[str]:
    return [options.get_option_at_index(i).id for i in range(options.option_count)]


async def select(pilot, key: str):
    """Highlight ``kind:name`` in the list and wait until it is the working copy."""
    screen = pilot.app.screen
    options = screen.query_one("#profiles-list", OptionList)
    await wait_for(pilot, lambda: key in _ids(options), what=f"{key} listed")
    options.highlighted = _ids(options).index(key)
    name = key.split(":", 1)[1]
    await wait_for(pilot, lambda: screen.doc is not None and screen.doc["name"] == name, what=f"{key} loaded")


async def open_effect(pilot, effect: str):
    """Put the table's cursor on ``effect`` and press enter: its form, focused on its first field."""
    from archivist_tui.widgets.param_form import ParamForm

    screen = pilot.app.screen
    table = screen.query_one(DataTable)
    table.focus()
    keys = [str(k.value) for k in table.rows]
    table.move_cursor(row=keys.index(effect))
    await pilot.press("enter")
    section = "extreme" if effect == "extreme" else f"effects.{effect}"
    await wait_for(pilot, lambda: any(f.section == section and f.display for f in screen.query(ParamForm))
                   and screen.focused is not None and screen._form(section) in screen.focused.ancestors,
                   what=f"the {effect} form")
    return screen._form(section)


async def focus_field(pilot, form, field_id: str):
    field = form.query_one(f"#{field_id}")
    field.focus()
    await wait_for(pilot, lambda: pilot.app.screen.focused is field, what=f"{field_id} focused")
    return field


async def type_into(pilot, field, text: str):
    """Type into a focused field the way a user does: its text is selected on focus, so it is replaced."""
    field.selection = type(field.selection)(0, len(field.value))
    await pilot.press(*list(text))


def _status(app) -> str:
    return str(app.screen.query_one("#profiles-status", Static).render())


# -- the forms ------------------------------------------------------------------------------------
@pytest.mark.slow  # opens all nineteen forms
async def test_every_effect_form_is_built_from_its_declarations(archivist_home):
    """One labelled row per declared parameter: a range as two fields, a chance as one, a choice as
    a selection list, the switch; bounds and unit beside each; the texts are the profile's values."""
    from archivist_tui.widgets.param_form import FieldRow, NumberField
    from engine.degrade.registry import EFFECTS
    from engine.degrade.schema import EXTREME_BOUNDS

    app = make_app(start="profiles")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await select(pilot, "profile:normal")
        doc = copy.deepcopy(screen.doc)
        for name, effect in [("extreme", None), *EFFECTS.items()]:
            form = await open_effect(pilot, name)
            rows = {row.field.key: row for row in form.query(FieldRow)}
            settings = doc["extreme"] if effect is None else doc["effects"][name]
            declared = ["strength", "cast"] if effect is None else list(effect.specs)
            assert list(rows) == ["enabled", "probability", *declared], name
            assert rows["enabled"].query_one(Switch).value is settings["enabled"]
            assert float(rows["probability"].query_one(NumberField).value) == settings["probability"]
            assert "0 … 1" in str(rows["probability"].query_one(".field-bounds").render())
            for key in declared:
                row = rows[key]
                bounds = str(row.query_one(".field-bounds").render())
                label = str(row.query_one(".field-label").render())
                assert label == key
                spec = None if effect is None else effect.specs[key]
                kind = "range" if spec is None else spec.kind
                if kind == "range":
                    low, high = row.query(NumberField)
                    assert [float(low.value), float(high.value)] == [float(v) for v in settings[key]], (name, key)
                    lo, hi = EXTREME_BOUNDS if spec is None else spec.bounds
                    assert f"{lo:g} … {hi:g}" in bounds, (name, key, bounds)
                    if spec is not None and spec.unit:
                        assert bounds.endswith(spec.unit), (name, key, bounds)
                    if spec is not None and spec.integer:
                        assert "whole" in bounds
                elif kind == "chance":
                    (field,) = row.query(NumberField)
                    assert float(field.value) == settings[key]
                    assert "0 … 1" in bounds
                else:
                    choice = row.query_one(SelectionList)
                    assert [choice.get_option_at_index(i).value for i in range(choice.option_count)] \
                        == list(spec.options)
                    assert set(choice.selected) == set(settings[key]), (name, key)
                    assert row.value() == settings[key]  # in the profile's order: a draw picks by position
            await pilot.press("escape")
            await wait_for(pilot, lambda: screen.focused is screen.query_one(DataTable), what="back to the table")
        assert screen.doc == doc  # looking changed nothing
        assert not screen.invalid


@pytest.mark.slow
async def test_arrow_keys_nudge_numbers_by_a_step_that_fits_the_range(archivist_home):
    from engine.degrade.registry import EFFECTS

    app = make_app(start="profiles")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await select(pilot, "profile:normal")
        form = await open_effect(pilot, "grain")
        assert EFFECTS["grain"].specs["strength"].step == 0.1  # 0 … 60
        low = await focus_field(pilot, form, "strength-low")
        assert low.value == "4"
        await pilot.press("up")
        assert low.value == "4.1"
        await pilot.press("shift+up")  # ten steps
        assert low.value == "5.1"
        await pilot.press("down")
        assert low.value == "5"
        await wait_for(pilot, lambda: screen.doc["effects"]["grain"]["strength"] == [5.0, 7.0], what="doc updated")

        gens = await focus_field(pilot, form, "generations-high")  # whole numbers 1 … 4: step 1, clamped
        assert gens.value == "2"
        await pilot.press("up", "up", "up")
        assert gens.value == "4"
        prob = await focus_field(pilot, form, "probability-value")  # 0 … 1: step 0.01, clamped at 1
        await pilot.press("up")
        assert prob.value == "1"
        await pilot.press("down")
        assert prob.value == "0.99"
        await wait_for(pilot, lambda: screen.doc["effects"]["grain"]["generations"] == [1, 4]
                       and screen.doc["effects"]["grain"]["probability"] == 0.99, what="doc updated")

        await pilot.press("escape")
        form = await open_effect(pilot, "micro_defects")  # 0 … 3000 specks: a step of 10
        dust = await focus_field(pilot, form, "dust_count-low")
        await pilot.press("up")
        assert dust.value == "41"

        # space on the table switches an effect; its form shows it
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.focused is screen.query_one(DataTable))
        table = screen.query_one(DataTable)
        table.move_cursor(row=[str(k.value) for k in table.rows].index("grain"))
        await pilot.press("space")
        assert screen.doc["effects"]["grain"]["enabled"] is False
        form = await open_effect(pilot, "grain")
        assert form.row("enabled").query_one(Switch).value is False
        assert form.query_one("#strength-low", Input).value == "5"  # the edits made before are there


@pytest.mark.slow
async def test_a_value_not_allowed_shows_the_schema_message_and_the_save_keys_refuse(archivist_home):
    from engine.degrade import load_profile
    from engine.degrade.library import new_profile

    path = new_profile("mine", "normal")
    before = path.read_text()
    app = make_app(start="profiles")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await select(pilot, "profile:mine")
        form = await open_effect(pilot, "grain")
        high = await focus_field(pilot, form, "strength-high")
        await type_into(pilot, high, "70")
        row = form.row("strength")
        await wait_for(pilot, lambda: row.error is not None, what="the message")
        message = str(row.query_one(".field-error").render())
        assert "effects.grain.strength: [4, 70] is not allowed (out of range)" in message
        assert "a number 0 to 60, or [low, high]" in message  # the schema's allowed range, word for word
        assert high.has_class("-invalid")
        assert screen.doc["effects"]["grain"]["strength"] == [4.0, 7.0]  # never entered the working copy
        assert "effects.grain.strength" in _status(app)

        # a second field not allowed: inverted range, then not a whole number
        low = await focus_field(pilot, form, "size-low")
        await type_into(pilot, low, "2")
        await wait_for(pilot, lambda: "inverted range" in (form.row("size").error or ""), what="inverted")
        gens = await focus_field(pilot, form, "generations-low")
        await type_into(pilot, gens, "1.5")
        await wait_for(pilot, lambda: "not a whole number" in (form.row("generations").error or ""))
        assert set(screen.invalid) == {"effects.grain.strength", "effects.grain.size", "effects.grain.generations"}

        # ctrl+s and S refuse and say which fields
        await pilot.press("ctrl+s")
        assert path.read_text() == before
        notes = [n.message for n in app._notifications]
        assert any("not saved" in n and "effects.grain.strength" in n and "effects.grain.size" in n for n in notes)
        refusals = sum("not saved" in str(n.message) for n in app._notifications)
        await pilot.press("S")
        await wait_for(pilot, lambda: sum("not saved" in str(n.message) for n in app._notifications) > refusals,
                       what="save-as refused")
        assert app.screen is screen  # no save-as dialog
        assert not (archivist_home / "profiles" / "mine-copy.yaml").exists()

        # the table marks the effect; fixing the fields clears everything
        await type_into(pilot, gens, "1")
        low = await focus_field(pilot, form, "size-low")
        await type_into(pilot, low, "1.2")
        high = await focus_field(pilot, form, "strength-high")
        await type_into(pilot, high, "6")
        await wait_for(pilot, lambda: not screen.invalid, what="all allowed")
        assert not high.has_class("-invalid") and form.row("strength").error is None
        assert screen.doc["effects"]["grain"]["strength"] == [4.0, 6.0]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: path.read_text() != before, what="saved")
        grain = load_profile("mine").effects["grain"]
        assert grain.values["strength"] == (4.0, 6.0) and grain.values["size"] == (1.2, 1.6)


@pytest.mark.slow
async def test_a_choice_needs_one_option_at_least(archivist_home):
    app = make_app(start="profiles")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await select(pilot, "profile:normal")
        form = await open_effect(pilot, "compression")
        codec = form.row("codec").query_one(SelectionList)
        codec.focus()
        assert set(codec.selected) == {"jpeg", "mpeg2"}
        codec.deselect_all()
        await wait_for(pilot, lambda: "effects.compression.codec" in screen.invalid)
        assert "one of jpeg, mpeg2, h264 or a list of them" in form.row("codec").error
        codec.select("h264")
        await wait_for(pilot, lambda: not screen.invalid)
        assert screen.doc["effects"]["compression"]["codec"] == ["h264"]


# -- the preview ----------------------------------------------------------------------------------
@pytest.mark.slow
async def test_the_preview_follows_the_last_change_and_a_stale_render_never_wins(archivist_home):
    from archivist_tui.screens.profiles import Preview
    from archivist_tui.widgets.image import InlineImage

    app = make_app(start="profiles")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await select(pilot, "profile:normal")
        await wait_for(pilot, lambda: screen.preview is not None and screen.preview.generation == screen.generation,
                       timeout=60, what="the first preview")
        first = copy.copy(screen.preview)
        assert first.damaged.exists() and first.clean.exists()
        assert screen.query_one("#profiles-damaged", InlineImage).path == first.damaged

        form = await open_effect(pilot, "grain")
        low = await focus_field(pilot, form, "strength-low")
        await type_into(pilot, low, "50")
        high = await focus_field(pilot, form, "strength-high")
        await type_into(pilot, high, "50")
        # rendered by the child process with the new values: the degrader's record says so
        await wait_for(pilot, lambda: screen.preview.generation > first.generation
                       and screen.preview.record["effects"]["grain"]["params"]["strength"] == 50.0,
                       timeout=60, what="a preview of strength 50")
        newer = screen.preview
        assert not first.damaged.exists()  # older renders are removed once a newer one is shown

        # The older render arrives late (its process finished after the newer one): dropped.
        screen.render_finished(Preview(first.generation, first.clean, first.damaged, first.record))
        assert screen.preview is newer
        assert screen.query_one("#profiles-damaged", InlineImage).path == newer.damaged
        assert newer.damaged.exists()
        # So is a render of the same generation delivered twice.
        screen.render_finished(Preview(newer.generation, newer.clean, newer.damaged, {}))
        assert screen.preview is newer and newer.damaged.exists()


@pytest.mark.slow
async def test_at_80x24_the_preview_is_one_key_away(archivist_home):
    from archivist_tui.widgets.image import InlineImage

    app = make_app(start="profiles")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await select(pilot, "profile:normal")
        side = screen.query_one("#profiles-side")
        hint = screen.query_one("#profiles-hint", Static)
        assert not side.display and hint.display  # hidden, and it says so
        assert "p shows it full screen" in str(hint.render())
        form = await open_effect(pilot, "grain")
        field = await focus_field(pilot, form, "strength-low")
        await pilot.press("p")  # from inside a number field: p is not a digit, it reaches the screen
        await wait_for(pilot, lambda: side.display and side.size.width >= 70, what="the full-screen preview")
        assert not screen.query_one("#profiles-editor").display
        damaged = screen.query_one("#profiles-damaged", InlineImage)
        await wait_for(pilot, lambda: damaged.path is not None and damaged.path.exists(), timeout=60)
        assert damaged.size.width >= 30 and damaged.size.height >= 10
        assert field.value == "4"  # the p was not typed into the field
        await pilot.press("escape")
        await wait_for(pilot, lambda: not side.display and screen.focused is field, what="back to the field")


# -- saving ---------------------------------------------------------------------------------------
@pytest.mark.slow
async def test_save_as_selects_the_new_profile_with_its_own_description(archivist_home):
    from engine.degrade import load_profile
    from engine.degrade.library import shipped_profiles_dir

    normal_file = (shipped_profiles_dir() / "normal.yaml").read_text()
    app = make_app(start="profiles")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await select(pilot, "profile:normal")
        form = await open_effect(pilot, "grain")
        prob = await focus_field(pilot, form, "probability-value")
        await type_into(pilot, prob, "0.25")
        await wait_for(pilot, lambda: screen.doc["effects"]["grain"]["probability"] == 0.25)
        await pilot.press("ctrl+s")  # shipped: refused, with the way out
        assert any("S saves a copy" in n.message for n in app._notifications)

        await pilot.press("S")
        await wait_for(pilot, lambda: app.screen.query("#save-name"), what="the save-as dialog")
        dialog = app.screen
        name, description = dialog.query_one("#save-name", Input), dialog.query_one("#save-description", Input)
        assert description.value == "Made from normal: grain.probability 0.25."  # not normal's own words
        name.value = "heavy"  # a shipped name
        name.focus()
        await pilot.press("enter", "enter")
        await wait_for(pilot, lambda: "taken by a shipped profile" in str(dialog.query_one("#save-error").render()))
        name.value = "grainy"
        description.value = "Normal with grain on a quarter of the samples"
        description.focus()
        await pilot.press("enter")

        options = screen.query_one("#profiles-list", OptionList)
        await wait_for(pilot, lambda: screen.current is not None and screen.current.name == "grainy",
                       what="the new profile selected")
        assert options.get_option_at_index(options.highlighted).id == "profile:grainy"
        assert screen.doc["description"] == "Normal with grain on a quarter of the samples"
        saved = load_profile("grainy")
        assert saved.description == "Normal with grain on a quarter of the samples"
        assert saved.effects["grain"].probability == 0.25
        assert (shipped_profiles_dir() / "normal.yaml").read_text() == normal_file
        # the edits moved to the new profile: normal is as shipped again, not marked unsaved
        assert "profile:normal" not in screen.drafts
        assert "•" not in str(options.get_option("profile:normal").prompt)


@pytest.mark.slow
async def test_unsaved_edits_stay_while_another_profile_is_shown(archivist_home):
    app = make_app(start="profiles")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await select(pilot, "profile:normal")
        form = await open_effect(pilot, "crease")
        prob = await focus_field(pilot, form, "probability-value")
        await type_into(pilot, prob, "0.1")
        await wait_for(pilot, lambda: screen.doc["effects"]["crease"]["probability"] == 0.1)
        await select(pilot, "profile:heavy")
        options = screen.query_one("#profiles-list", OptionList)
        assert str(options.get_option("profile:normal").prompt).endswith("•")
        await select(pilot, "profile:normal")
        assert screen.doc["effects"]["crease"]["probability"] == 0.1
        assert "unsaved changes" in _status(app)


# -- mixes ----------------------------------------------------------------------------------------
@pytest.mark.slow
async def test_adding_a_profile_to_a_mix_keeps_the_others(archivist_home):
    """The bug: editing a mix to add one profile dropped the other three (the old prompt's text was
    replaced by what the user typed). Members are fields now; adding one adds a row."""
    from archivist_tui.widgets.param_form import MixForm, NumberField
    from engine.degrade import load_profile

    app = make_app(start="profiles")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await select(pilot, "mix:default")
        await pilot.press("m")
        form = screen.query_one(MixForm)
        await wait_for(pilot, lambda: isinstance(screen.focused, NumberField), what="the first weight")
        assert form.members() == ["subtle", "normal", "heavy"]
        await pilot.press("a")  # to the add field
        await wait_for(pilot, lambda: screen.focused is form.query_one("#mix-add"))
        await pilot.press(*"antilines", "enter")
        await wait_for(pilot, lambda: form.members() == ["subtle", "normal", "heavy", "antilines"])
        await wait_for(pilot, lambda: screen.focused is form.rows()[-1].query_one(NumberField))
        await type_into(pilot, screen.focused, "0.2")
        await wait_for(pilot, lambda: screen.doc["profiles"] == {"subtle": 0.1, "normal": 0.3, "heavy": 0.6,
                                                                 "antilines": 0.2}, what="weights in the doc")
        assert "8.3 %" in str(form.rows()[0].query_one(".mix-share").render())  # 0.1 of 1.2

        await pilot.press("S")
        await wait_for(pilot, lambda: app.screen.query("#save-name"), what="the save-as dialog")
        app.screen.query_one("#save-name", Input).value = "default-lines"
        await pilot.press("enter", "enter")
        await wait_for(pilot, lambda: screen.current is not None and screen.current.name == "default-lines",
                       what="the new mix selected")
    for path in (archivist_home / "profiles" / "mixes").glob("*.yaml"):
        mix = load_profile(path)
        assert [p.name for p, _ in mix.entries] == ["subtle", "normal", "heavy", "antilines"], path
    mix = load_profile("default-lines")
    weights = {p.name: w for p, w in mix.entries}
    assert abs(weights["antilines"] - 0.2 / 1.2) < 1e-9 and abs(weights["heavy"] - 0.6 / 1.2) < 1e-9
    assert mix.description.startswith("Made from the mix default")


@pytest.mark.slow
async def test_mix_weights_edited_and_a_profile_removed_in_place(archivist_home):
    import yaml

    from archivist_tui.widgets.param_form import MixForm, NumberField
    from engine.degrade import load_profile

    mixes = archivist_home / "profiles" / "mixes"
    mixes.mkdir(parents=True)
    (mixes / "mine.yaml").write_text(yaml.safe_dump({"name": "mine", "description": "my mix",
                                                      "profiles": {"subtle": 1, "normal": 1, "heavy": 2}},
                                                     sort_keys=False))
    app = make_app(start="profiles")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await select(pilot, "mix:mine")
        await pilot.press("m")
        form = screen.query_one(MixForm)
        await wait_for(pilot, lambda: isinstance(screen.focused, NumberField))
        # a weight not allowed: the schema's message, and no save
        await type_into(pilot, screen.focused, "0")
        await wait_for(pilot, lambda: "profiles.subtle" in screen.invalid)
        assert "profiles.subtle: 0 is not allowed" in str(form.query_one("#mix-errors").render())
        await pilot.press("ctrl+s")
        assert yaml.safe_load((mixes / "mine.yaml").read_text())["profiles"]["subtle"] == 1
        # remove subtle with its button, nudge heavy up
        subtle = form.rows()[0]
        subtle.query_one(".mix-remove").press()
        await wait_for(pilot, lambda: form.members() == ["normal", "heavy"] and not screen.invalid)
        heavy = form.rows()[1].query_one(NumberField)
        heavy.focus()
        await pilot.press("up")
        await wait_for(pilot, lambda: screen.doc["profiles"] == {"normal": 1, "heavy": 2.01})
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "subtle" not in (mixes / "mine.yaml").read_text())
        # removing every member is refused at save time with the reason
        for row in form.rows():
            row.query_one(".mix-remove").press()
        await wait_for(pilot, lambda: form.members() == [])
        await pilot.press("ctrl+s")
        assert any("at least one profile" in n.message for n in app._notifications)
    mix = load_profile("mine")
    assert [(p.name, round(w, 4)) for p, w in mix.entries] == [("normal", round(1 / 3.01, 4)),
                                                              ("heavy", round(2.01 / 3.01, 4))]
    assert mix.description == "my mix"


@pytest.mark.slow
async def test_a_save_the_disk_refuses_says_so_and_keeps_the_profile_and_the_edits(archivist_home):
    """A write that fails (here the process's file-size limit, as a full disk would) leaves the saved
    profile as it was, no partial file beside it, the edits on screen, and the app running."""
    import resource

    from engine.degrade.library import new_profile

    path = new_profile("mine", "normal")
    before = path.read_text()
    app = make_app(start="profiles")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await select(pilot, "profile:mine")
        form = await open_effect(pilot, "grain")
        high = await focus_field(pilot, form, "strength-high")
        await type_into(pilot, high, "6")
        await wait_for(pilot, lambda: screen.doc["effects"]["grain"]["strength"] == [4.0, 6.0], what="edited")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) // 2, hard))  # Python ignores SIGXFSZ: EFBIG
        try:
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: any("not saved" in str(n.message) for n in app._notifications),
                           what="the refusal")
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        note = next(str(n.message) for n in app._notifications if "not saved" in str(n.message))
        assert str(path) in note and "file too large" in note
        assert path.read_text() == before
        assert sorted(p.name for p in path.parent.iterdir()) == ["mine.yaml"]
        assert screen.doc["effects"]["grain"]["strength"] == [4.0, 6.0]  # the edits are still there
        await pilot.press("ctrl+s")  # room again: the same edits save
        await wait_for(pilot, lambda: path.read_text() != before, what="saved")


@pytest.mark.parametrize("fault", ["file-size-limit", "cache-folder-blocked"])
async def test_a_preview_that_cannot_be_written_says_so_and_keeps_the_app(archivist_home, fault):
    """The preview writes the profile being edited to the TUI's cache before it renders it. A disk
    that refused that write (full, a file-size limit, a file where the cache folder should be)
    crashed the whole app with a traceback; CI once caught the preview's timer firing inside the
    save test's file-size limit."""
    import resource

    from engine.degrade.library import new_profile

    new_profile("mine", "normal")
    app = make_app(start="profiles")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await select(pilot, "profile:mine")
        await wait_for(pilot, lambda: screen.doc is not None, what="the profile open")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        if fault == "file-size-limit":
            resource.setrlimit(resource.RLIMIT_FSIZE, (16, hard))
        else:
            cache = archivist_home / "cache"
            if cache.exists():
                import shutil

                shutil.rmtree(cache)
            cache.write_text("not a folder")
        try:
            screen._start_preview()
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        await pilot.pause()
        notes = [str(n.message) for n in app._notifications if "preview not rendered" in str(n.message)]
        assert notes and ("file too large" in notes[0] or "cache" in notes[0]), notes
        assert app.is_running and app.screen is screen


async def test_save_as_with_nowhere_to_save_says_so_and_keeps_the_app(archivist_home):
    """A file where the profiles folder should be made Save as fail inside its dialog's callback,
    which ended the app; now it is refused in a notice and the edits stay."""
    from textual.widgets import Input

    (archivist_home / "profiles").write_text("not a folder")
    app = make_app(start="profiles")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await select(pilot, "profile:normal")
        form = await open_effect(pilot, "grain")
        prob = await focus_field(pilot, form, "probability-value")
        await type_into(pilot, prob, "0.25")
        await wait_for(pilot, lambda: screen.doc["effects"]["grain"]["probability"] == 0.25)
        await pilot.press("S")
        await wait_for(pilot, lambda: app.screen.query("#save-name"), what="the save-as dialog")
        name = app.screen.query_one("#save-name", Input)
        name.value = "grainy"
        name.focus()
        await pilot.press("enter", "enter")
        await wait_for(pilot, lambda: any("not saved" in str(n.message) for n in app._notifications),
                       what="the refusal")
        assert app.is_running and screen.doc["effects"]["grain"]["probability"] == 0.25
