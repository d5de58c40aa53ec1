"""End to end in a real terminal: edit one value of a profile in the TUI (tmux), save it as a new
profile, and degrade a frame with it from the command line.

Every step waits for a positive sign on the screen (capture-pane) before the next key goes in:
keys sent before the TUI has moved the focus land in the wrong place.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"), pytest.mark.slow]


class Tmux:
    """A tmux server of our own (``-L``): nothing else on the machine is touched."""

    def __init__(self, tmp_path: Path, home: Path):
        self.socket = f"archivist-profiles-{os.getpid()}-{tmp_path.name}"
        self.home = home

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        # The server's environment is ours: without $COLUMNS/$LINES, which would override the size asked for.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check, env=env)

    def start(self, command: str) -> None:
        env = {"ARCHIVIST_HOME": str(self.home), "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
        args = ["new-session", "-d", "-s", "tui", "-x", "120", "-y", "40"]
        for k, v in env.items():
            args += ["-e", f"{k}={v}"]
        self.tmux(*args, command)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "tui", check=False).stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "tui", *keys)

    def wait_for(self, *texts: str, timeout: float = 60) -> str:
        """Until every one of ``texts`` is on the screen at once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{texts!r} never appeared; the screen:\n{self.screen()}")

    def kill(self) -> None:
        self.tmux("kill-server", check=False)


@pytest.fixture
def tmux(tmp_path, archivist_home):
    t = Tmux(tmp_path, archivist_home)
    yield t
    t.kill()


def test_edit_a_value_save_as_a_new_profile_and_degrade_with_it(tmux, archivist_home, png, tmp_path, capsys):
    from archivist_tui.cli import main
    from engine.degrade import load_profile

    tmux.start(f"{sys.executable} -m archivist_tui.cli tui --screen profiles --images halfcell")
    tmux.wait_for("EFFECT", "antilines")  # the list has the focus, its first profile shown
    tmux.keys("Down", "Down")  # antilines, heavy, normal
    tmux.wait_for("Medium samples")  # normal's description in the title
    tmux.keys("Enter")  # into the effects
    tmux.wait_for("enter edits extreme")
    for effect in ("texture_trap", "dye_fading", "color_cast", "emulsion_degradation", "stains", "grain"):
        tmux.keys("Down")
        tmux.wait_for(f"enter edits {effect}")
    tmux.keys("Enter")
    tmux.wait_for("normal › grain", "tab next field")
    tmux.keys("Tab")  # from the switch to the probability
    tmux.wait_for("probability: chance that the effect happens")
    tmux.keys("-l", "0.25")  # the field's text is selected on focus: typing replaces it
    tmux.wait_for("unsaved changes")

    tmux.keys("S")  # not a digit: from inside a number field it reaches the screen
    tmux.wait_for("Save the profile as", "Made from normal: grain.probability 0.25.")
    tmux.keys("-l", "tmuxgrain")  # replaces the suggested name
    tmux.wait_for("tmuxgrain")
    tmux.keys("Enter")  # to the description (kept as suggested)
    tmux.wait_for("enter: save")
    tmux.keys("Enter")
    tmux.wait_for("tmuxgrain  Made from normal: grain.probability 0.25.")  # the new profile, selected
    saved = archivist_home / "profiles" / "tmuxgrain.yaml"
    assert saved.is_file()

    profile = load_profile("tmuxgrain")
    assert profile.effects["grain"].probability == 0.25
    assert profile.description == "Made from normal: grain.probability 0.25."
    normal = load_profile("normal")
    assert {k: v for k, v in profile.effects.items() if k != "grain"} == \
        {k: v for k, v in normal.effects.items() if k != "grain"}  # nothing else moved

    frame = png("frame.png", 64, 48)
    out = tmp_path / "pairs"
    assert main(["degrade", str(frame), "-o", str(out), "--profile", "tmuxgrain", "--seed", "3"]) == 0
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines() if line.strip()]
    assert len(entries) == 1
    assert entries[0]["profile"] == "tmuxgrain" and entries[0]["profile_hash"] == profile.hash
    assert (out / entries[0]["lq"]).is_file() and (out / entries[0]["gt"]).is_file()
    capsys.readouterr()
