"""One rule for a run's state (engine.train.runs.run_status), shown alike by `archivist runs` and the TUI.

A run whose process is gone never reads `running`: killed with SIGKILL it reads `interrupted`, a
pid given to another process later does not keep it alive, and a run that fails on a full disk
still records `failed` in run.json.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.train.runs import list_checkpoints, read_state, run_dir
from tests.disks import fill, tmpfs

ROOT = Path(__file__).resolve().parents[2]


def both_faces(capsys, name: str) -> tuple[str, str, str]:
    """The run's status as `runs list --json`, `runs show --json` and the TUI's Training screen read it."""
    from archivist_tui.data import list_runs

    capsys.readouterr()
    assert main(["runs", "list", "--json"]) == 0
    listed = {r["name"]: r["status"] for r in json.loads(capsys.readouterr().out)}[name]
    assert main(["runs", "show", name, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["status"]
    tui = {r.name: r.state for r in list_runs()}[name]
    return listed, shown, tui


def fake_run(home: Path, name: str, **state) -> Path:
    rdir = home / "runs" / name
    rdir.mkdir(parents=True)
    (rdir / "config.yaml").write_text(f"name: {name}\ntrain:\n  total_iters: 100\n")
    (rdir / "run.json").write_text(json.dumps(state))
    return rdir


def test_a_pid_taken_by_another_process_does_not_keep_a_run_running(archivist_home, capsys):
    """The pid in run.json belongs to a live process, but one started after the run began (the pid
    was given out again): the run is interrupted. Its own process, or an older run.json without
    the start time, reads running as long as the pid lives."""
    me = psutil.Process()
    fake_run(archivist_home, "reused", status="running", pid=os.getpid(), started=me.create_time() - 3600)
    fake_run(archivist_home, "mine", status="running", pid=os.getpid(), started=me.create_time())
    fake_run(archivist_home, "older", status="running", pid=os.getpid())
    fake_run(archivist_home, "damaged", status=None)
    fake_run(archivist_home, "elsewhere", status="running", pid=os.getpid(), started=me.create_time() - 3600,
             host=socket.gethostname() + "-other")
    assert both_faces(capsys, "reused") == ("interrupted",) * 3
    assert both_faces(capsys, "mine") == ("running",) * 3
    assert both_faces(capsys, "older") == ("running",) * 3
    assert both_faces(capsys, "damaged") == ("unknown",) * 3
    assert both_faces(capsys, "elsewhere") == ("running",) * 3  # another machine's processes are not ours to judge
    # Nothing reads a pause request of a run that is not running: refused, and no control file left.
    assert main(["runs", "pause", "reused"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["archivist: error: run 'reused' is interrupted, not running: nothing to pause "
                   "(its process is gone; continue it with: archivist runs resume reused)"]
    assert not (archivist_home / "runs" / "reused" / "control").exists()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.slow
def test_a_run_killed_with_sigkill_reads_interrupted_in_both_faces(make_config, archivist_home, capsys):
    cfg = make_config(**{"train.total_iters": 100000, "train.log_every": 1, "train.checkpoint_every": 2,
                         "train.val_every": 100000})
    proc = subprocess.Popen([sys.executable, "-m", "archivist_tui.cli", "train", str(cfg), "--name", "killed"],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rdir = run_dir("killed", must_exist=False)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None and not list_checkpoints(rdir):
            time.sleep(0.1)
        assert proc.poll() is None and list_checkpoints(rdir), proc.stderr.read()
        assert both_faces(capsys, "killed") == ("running",) * 3
        assert read_state(rdir)["pid"] == proc.pid
        proc.kill()
        # Killed but not yet reaped (a zombie: the pid still answers a signal 0): already interrupted.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.02)
        assert psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE
        assert both_faces(capsys, "killed") == ("interrupted",) * 3
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stderr.close()
    assert read_state(rdir)["status"] == "running"  # what the killed process left: the rule reads it
    assert both_faces(capsys, "killed") == ("interrupted",) * 3
    assert main(["runs", "remove", "killed"]) == 0  # not refused as "running"
    assert not rdir.exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs of the test's own."""
    with tmpfs(tmp_path / "disk", "4m") as mount:
        yield mount


@pytest.mark.slow
def test_a_run_that_fails_on_a_full_disk_records_failed(make_config, small_disk, monkeypatch, capsys):
    """The disk fills during training: the checkpoint and the metrics cannot be written, and neither
    can a new run.json; the run's last word still lands (over the old file), so run.json says failed,
    not running, while nobody runs it."""
    from engine.train import run_training

    monkeypatch.setenv("ARCHIVIST_HOME", str(small_disk))
    cfg = make_config(**{"train.total_iters": 50, "train.log_every": 1, "train.checkpoint_every": 5,
                         "train.val_every": 100000})

    def fill_at_three(iteration: int, total: int) -> None:
        if iteration == 3:
            fill(small_disk)

    with pytest.raises(ArchivistError, match="space"):
        run_training(cfg, name="full", progress=fill_at_three, device="cpu")
    rdir = small_disk / "runs" / "full"
    assert read_state(rdir)["status"] == "failed"
    assert both_faces(capsys, "full") == ("failed",) * 3
    assert not [p.name for p in rdir.iterdir() if p.name.startswith(".")]  # no temporary file left
    (small_disk / "filler").unlink()
    assert main(["runs", "show", "full"]) == 0
