"""Messages in the TUI speak the TUI's words: no command-line flags, no 'see archivist ... --help'."""

from __future__ import annotations

import pytest

from tests.tui.conftest import make_app, type_and_enter, wait_for


def test_command_line_errors_are_put_in_the_tuis_words():
    from archivist_tui.data import CommandResult, tui_words

    assert tui_words("archivist: error: argument --format: invalid choice: 'jpg' (choose from 'pth', "
                     "'safetensors', 'onnx') (see 'archivist models export --help')") == \
        "format: invalid choice: 'jpg' (choose from 'pth', 'safetensors', 'onnx')"
    assert tui_words("archivist: error: argument ROLE: invalid choice: 'foo' (see 'archivist models role --help')") \
        == "role: invalid choice: 'foo'"
    assert tui_words("archivist: error: argument -o/--output: expected one argument") == \
        "o: expected one argument"
    from engine.models.library import missing_model_message

    assert tui_words(missing_model_message("archivist-medium", ["tiny"])) == \
        "model 'archivist-medium' is not in the library yet; it is in the catalog: fetch it with f on 4 Models " \
        "(needs network)"
    assert tui_words(missing_model_message("nope", ["tiny"])).endswith("(f on 4 Models fetches one)")
    result = CommandResult(["runs", "promote"], 2, "", "archivist: error: argument --iter: invalid int value: "
                           "'abc' (see 'archivist runs promote --help')\n")
    assert result.message == "iter: invalid int value: 'abc'"


def messages(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


@pytest.mark.slow
async def test_models_screen_messages_name_fields_not_flags(library_model, tmp_path):
    from archivist_tui.widgets.dialogs import Prompt

    app = make_app(start="models")
    async with app.run_test(size=(140, 40)) as pilot:
        table = app.screen.query_one("DataTable")
        await wait_for(pilot, lambda: table.row_count >= 2, what="models")
        names = [str(getattr(c, "plain", c)) for c in table.get_column("name")]
        table.move_cursor(row=names.index("tiny"))

        seen: list[str] = []

        async def say(keys: str, answer: str, needle: str, timeout: float = 10) -> None:
            await pilot.press(keys)
            await wait_for(pilot, lambda: isinstance(app.screen, Prompt), what="prompt")
            await type_and_enter(pilot, answer)
            await wait_for(pilot, lambda: any(needle in m for m in messages(app)), timeout=timeout, what=needle)
            seen.extend(m for m in messages(app) if m not in seen)

        await say("e", f"jpg {tmp_path}", "'jpg' is not a format; formats are pth, safetensors, onnx")
        await say("o", "sharpest", "'sharpest' is not a role")
        # A failure the command line reports, shown without its shell decorations.
        await say("e", f"pth {tmp_path}/missing/tiny.pth", "missing: output folder does not exist", timeout=60)
        for m in seen:
            assert "--" not in m and "archivist" not in m, m
