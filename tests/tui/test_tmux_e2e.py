"""End to end in a real terminal: ``archivist`` in tmux, driven with send-keys, read with capture-pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    """One tmux server of our own (``-L``), so nothing else on the machine is touched."""

    def __init__(self, tmp_path: Path, home: Path):
        self.socket = f"archivist-test-{os.getpid()}-{tmp_path.name}"
        self.home = home

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        # The server's environment is ours: without $COLUMNS/$LINES, which would override the size asked for.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check, env=env)

    def start(self, command: str, name: str = "tui", **extra_env: str) -> None:
        env = {"ARCHIVIST_HOME": str(self.home), "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", **extra_env}
        args = ["new-session", "-d", "-s", name, "-x", "120", "-y", "40"]
        for k, v in env.items():
            args += ["-e", f"{k}={v}"]
        self.tmux(*args, command)

    def screen(self, name: str = "tui") -> str:
        out = self.tmux("capture-pane", "-p", "-t", name, check=False)
        return out.stdout

    def keys(self, *keys: str, name: str = "tui") -> None:
        self.tmux("send-keys", "-t", name, *keys)

    def wait_for(self, text: str, timeout: float = 60, name: str = "tui") -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen(name)
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{self.screen(name)}")

    def alive(self, name: str = "tui") -> bool:
        return self.tmux("has-session", "-t", name, check=False).returncode == 0

    def wait_gone(self, timeout: float = 30, name: str = "tui") -> None:
        deadline = time.monotonic() + timeout
        while self.alive(name) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not self.alive(name), f"the session did not end within {timeout:g} s; the screen:\n{self.screen(name)}"

    def cursor(self, name: str = "tui") -> tuple[int, int]:
        """Where the terminal's cursor is: Textual puts it in the focused input, so it shows the focus."""
        x, y = self.tmux("display", "-p", "-t", name, "#{cursor_x} #{cursor_y}").stdout.split()
        return int(x), int(y)

    def type_into_field(self, text: str, name: str = "tui") -> None:
        """Type ``text`` into the focused input, press Enter, and wait until the focus has moved on:
        keys sent before the form moved the focus would land in the field just left."""
        self.keys("-l", text, name=name)
        self.wait_for(text, name=name)
        row = self.cursor(name)[1]
        self.keys("Enter", name=name)
        deadline = time.monotonic() + 30
        while self.cursor(name)[1] == row:
            assert time.monotonic() < deadline, f"the focus never left the field of {text!r}:\n{self.screen(name)}"
            time.sleep(0.05)

    def pane_pid(self, name: str = "tui") -> int:
        return int(self.tmux("list-panes", "-t", name, "-F", "#{pane_pid}").stdout.split()[0])

    def kill(self) -> None:
        self.tmux("kill-server", check=False)


@pytest.fixture
def tmux(tmp_path, archivist_home):
    t = Tmux(tmp_path, archivist_home)
    yield t
    t.kill()


def _gone(pid: int, timeout: float) -> bool:
    """True once ``pid`` has exited. A zombie counts: once tmux's server is gone the process is
    re-parented, and in a container whose first process never reaps, it stays a zombie for good."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (ProcessLookupError, FileNotFoundError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_every_screen_in_tmux_then_quit(tmux, library_model):
    tmux.start(f"{sys.executable} -m archivist_tui.cli")
    tmux.wait_for("1 Queue")
    tmux.wait_for("No job store yet")
    tmux.keys("2")
    tmux.wait_for("EFFECT")
    tmux.keys("3")
    tmux.wait_for("No training runs yet")
    tmux.keys("4")
    screen = tmux.wait_for("tiny")
    assert "compact" in screen and "8/2×1" in screen
    tmux.keys("?")
    tmux.wait_for("Models keys")  # the screen's own keys head the help
    tmux.keys("1")
    tmux.wait_for("Add")
    tmux.keys("q")
    tmux.wait_gone()  # q quits


@pytest.mark.slow
def test_terminal_loss_exits_quietly(tmux):
    tmux.start(f"exec {sys.executable} -m archivist_tui.cli tui --images halfcell")
    tmux.wait_for("1 Queue")
    pid = tmux.pane_pid()
    tmux.tmux("kill-session", "-t", "tui")  # the terminal goes away: SIGHUP
    assert _gone(pid, 30), "the TUI kept running after its terminal went away"


@pytest.mark.slow
def test_add_a_restore_job_and_watch_it_finish(tmux, library_model, archivist_home, tmp_path, kinds_for_tests, gate):
    import cv2
    import numpy as np

    from engine.queue.client import QueueClient

    src = tmp_path / "frames"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"f{i}.png"), np.full((32, 32, 3), 40 * i, np.uint8))
    out = tmp_path / "restored"
    # The test kinds travel to the daemon the TUI starts, for the held job of the last step.
    tmux.start(f"{sys.executable} -m archivist_tui.cli tui --images halfcell --root {tmp_path}",
               ARCHIVIST_TEST_KINDS=kinds_for_tests)
    tmux.wait_for("1 Queue")
    tmux.keys("a")
    tmux.wait_for("Add a restore job")
    for text in ("frames", "restored"):
        tmux.type_into_field(text)
    tmux.wait_for("tiny")
    tmux.keys("C-s")
    tmux.wait_for("frames → tiny", timeout=60)  # the job's row
    tmux.keys("d")  # start the daemon from the TUI
    tmux.wait_for("daemon ● up", timeout=60)
    tmux.wait_for("done", timeout=120)
    assert len(list(out.glob("*.png"))) == 3

    # A job still running when the TUI quits keeps running: the TUI is only a client. The job is
    # held by the test after its first step, so it is still running whatever the machine's speed.
    marker = tmp_path / "slow.out"
    with QueueClient() as client:
        held = client.submit("selftest", {"output": str(marker), "steps": 2, "gate": str(gate), "hold_at": [1]})
    gate.wait_held(1, timeout=60)
    tmux.wait_for("running", timeout=60)
    tmux.keys("q")
    tmux.wait_gone()
    with QueueClient() as client:
        assert client.get(held).status == "running"
    gate.open(1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with QueueClient() as client:
            if client.get(held).status in ("done", "failed"):
                break
        time.sleep(0.2)
    with QueueClient() as client:
        assert client.get(held).status == "done"
    assert marker.exists()
    subprocess.run([sys.executable, "-m", "archivist_tui.cli", "daemon", "stop"], env=dict(
        os.environ, ARCHIVIST_HOME=str(archivist_home), PYTHONPATH=str(ROOT)), capture_output=True, timeout=60)
