"""The command line and the TUI report the same state, because both read it through the engine.

A daemon killed with SIGKILL and a training process killed with SIGKILL leave files behind
(``daemon.pid``, a ``run.json`` saying ``running``); neither face may believe them. The real
daemon and a real process that records itself as a run's trainer are killed; then ``archivist
daemon status``/``runs list`` and the real app (its header, its Training screen) are read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from archivist_tui.cli import main
from tests.tui.conftest import make_app, wait_for

ROOT = Path(__file__).resolve().parents[2]

# A process that records itself in run.json as the run's trainer (as the trainer does when it
# starts), then waits to be killed.
TRAINER = r"""
import sys, time
from pathlib import Path
from engine.train.runs import process_identity, write_state
write_state(Path(sys.argv[1]), {"status": "running", "iteration": 10, **process_identity()})
print("recorded", flush=True)
time.sleep(600)
"""


def _gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, f"process {pid} still alive"
        time.sleep(0.05)


@pytest.mark.slow
async def test_a_killed_daemon_and_a_killed_run_read_the_same_in_both_faces(queue_daemon, capsys):
    home = queue_daemon
    from engine.queue.daemon import start_daemon

    pid = start_daemon()
    capsys.readouterr()
    assert main(["daemon", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["running"] is True

    rdir = home / "runs" / "killed"
    rdir.mkdir(parents=True)
    (rdir / "config.yaml").write_text("name: killed\ntrain:\n  total_iters: 100\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    trainer = subprocess.Popen([sys.executable, "-c", TRAINER, str(rdir)], stdout=subprocess.PIPE, text=True,
                               env=env)
    assert trainer.stdout.readline().strip() == "recorded"

    app = make_app(start="training")
    async with app.run_test(size=(120, 36)) as pilot:
        from archivist_tui.widgets.header import HeaderLine

        header = app.screen.query_one(HeaderLine)
        await wait_for(pilot, lambda: header.daemon == "up", what="the daemon up in the header")
        await wait_for(pilot, lambda: app.screen.selected is not None and app.screen.selected.state == "running",
                       what="the run running on the Training screen")

        os.kill(pid, signal.SIGKILL)
        trainer.kill()  # SIGKILL: the trainer writes nothing more
        trainer.wait(timeout=30)
        _gone(pid)
        assert json.loads((rdir / "run.json").read_text())["status"] == "running"  # what the files still say
        assert (home / "daemon.pid").exists()

        await wait_for(pilot, lambda: header.daemon == "down", what="the daemon down in the header")
        await wait_for(pilot, lambda: app.screen.selected.state == "interrupted", what="the run interrupted")
        tui_daemon, tui_run = header.daemon, app.screen.selected.state

    capsys.readouterr()
    assert main(["daemon", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert main(["runs", "list", "--json"]) == 0
    runs = {r["name"]: r["status"] for r in json.loads(capsys.readouterr().out)}
    assert (status["running"], tui_daemon) == (False, "down")
    assert (runs["killed"], tui_run) == ("interrupted", "interrupted")
