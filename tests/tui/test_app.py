"""The shell: screens, keys, help, command palette, quitting; torch never loads in the TUI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tui.conftest import make_app, wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_keys_switch_screens_help_and_quit():
    from archivist_tui.screens.models import ModelsScreen
    from archivist_tui.screens.profiles import ProfilesScreen
    from archivist_tui.screens.queue import QueueScreen
    from archivist_tui.screens.training import TrainingScreen
    from archivist_tui.widgets.header import HeaderLine

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen), what="queue screen")
        for key, cls in (("2", ProfilesScreen), ("3", TrainingScreen), ("4", ModelsScreen), ("1", QueueScreen)):
            await pilot.press(key)
            await wait_for(pilot, lambda cls=cls: isinstance(app.screen, cls), what=cls.__name__)
            assert app.screen.query_one(HeaderLine).current == cls.MODE
        # The header learns the daemon's state from the first poll.
        await wait_for(pilot, lambda: app.screen.query_one(HeaderLine).daemon == "none", what="daemon state")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: app.screen.query("HelpPanel"), what="help panel")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: not app.screen.query("HelpPanel"), what="help closed")
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="exit")


@pytest.mark.slow
async def test_every_screen_action_is_a_palette_command():
    from textual.command import CommandPalette

    app = make_app(start="models")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "models")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for action in ("Import", "Fetch", "Export", "Rename", "Role", "Remove", "Preview", "Speed test"):
            assert f"Models: {action}" in titles
        assert {"Go to Queue", "Go to Profiles", "Go to Training", "Go to Models"} <= set(titles)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")
        for ch in "Go to Training":
            await pilot.press("space" if ch == " " else ch)

        def highlighted() -> str:
            from textual.command import CommandList

            found = app.screen.query_one(CommandList)
            index = found.highlighted
            return "" if index is None else str(found.get_option_at_index(index).prompt)

        # The palette searches in the background: enter picks the command once it is highlighted.
        await wait_for(pilot, lambda: "Go to Training" in highlighted(), what="the command highlighted")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "training", what="palette switched screen")


SCRIPT = r"""
import asyncio, json, sys, time
from archivist_tui.app import ArchivistApp

class Probe(ArchivistApp):
    shown = []  # the modes whose poll result a screen has shown, in order

    def on_polled(self, message):
        super().on_polled(message)
        if not isinstance(message.data, Exception):
            self.shown.append(message.mode)

async def main():
    app = Probe(images="halfcell", poll_seconds=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        for key, mode in zip("12341", ("queue", "profiles", "training", "models", "queue")):
            before = app.shown.count(mode)
            await pilot.press(key)
            deadline = time.monotonic() + 60
            while app.shown.count(mode) <= before:  # the screen has read and shown its data
                assert time.monotonic() < deadline, f"screen {mode} never showed a poll"
                await pilot.pause(0.05)
    heavy = sorted(m for m in ("torch", "textual_image", "cv2") if m in sys.modules)
    print(json.dumps(heavy))

asyncio.run(main())
"""


@pytest.mark.slow
def test_the_tui_process_never_imports_torch(library_model):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "torch" not in loaded
    assert "textual_image" not in loaded  # headless: no terminal to query


def test_tui_command_options():
    from archivist_tui.cli import build_parser

    args = build_parser().parse_args(["tui", "--images", "none", "--screen", "models"])
    assert args.images == "none" and args.screen == "models"


def test_image_mode_env_override(monkeypatch):
    from archivist_tui.widgets.image import resolve_mode

    monkeypatch.setenv("ARCHIVIST_IMAGES", "none")
    assert resolve_mode("kitty") == "none"
    monkeypatch.delenv("ARCHIVIST_IMAGES")
    assert resolve_mode("kitty") == "halfcell"  # not a TTY under pytest


def test_without_a_terminal_the_tui_says_so_and_exits():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "archivist_tui.cli"], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert out.returncode == 1
    assert out.stderr.startswith("archivist: error: the workstation needs a terminal")
