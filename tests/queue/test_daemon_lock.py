"""One daemon per state directory, whatever happens to daemon.pid; paths pinned before it detaches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest

from archivist_tui.cli import main
from engine.queue import QueueClient, Store
from engine.queue.daemon import _source_root_env, daemon_pid
from tests.queue.conftest import write_config


def read_pid_file(path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_deleting_the_pid_file_lets_no_second_daemon_start(queue_home, capsys, wait_for):
    assert main(["daemon", "start"]) == 0
    capsys.readouterr()
    pid = daemon_pid()
    assert pid and pid > 0
    pid_file = queue_home / "daemon.pid"
    pid_file.unlink()  # a tmp cleaner, a user tidying up

    assert main(["daemon", "status", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["running"] is True and st["pid"] == pid
    assert main(["daemon", "status"]) == 0
    assert f"running (pid {pid})" in capsys.readouterr().out

    assert main(["daemon", "start"]) == 1
    assert f"already running (pid {pid}" in capsys.readouterr().err
    # Not even a daemon started by hand, past the start command's own check, gets in.
    second = subprocess.run([sys.executable, "-m", "engine.queue.daemon"], env=_source_root_env(dict(os.environ)),
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 1
    assert f"already running (pid {pid}" in second.stderr

    # The daemon writes its pid file again, and stop finds it either way.
    wait_for(lambda: read_pid_file(pid_file) == pid, what="daemon.pid written again")
    pid_file.unlink()
    assert main(["daemon", "stop"]) == 0
    assert f"daemon stopped (pid {pid})" in capsys.readouterr().out
    assert daemon_pid() is None
    wait_for(lambda: _gone(pid), what="the daemon process to end")


def test_without_the_kernels_lock_table_the_lock_still_tells(queue_home, capsys, monkeypatch, wait_for):
    """Where /proc/locks cannot be read, a momentary shared lock says whether the daemon runs."""
    from engine import daemonlock

    monkeypatch.setattr(daemonlock, "_locks_table", lambda: None)
    assert main(["daemon", "start"]) == 0
    capsys.readouterr()
    pid = read_pid_file(queue_home / "daemon.pid")
    assert daemon_pid() == pid
    (queue_home / "daemon.pid").unlink()
    assert daemon_pid() in (-1, pid)  # running; the pid comes back with the file
    assert main(["daemon", "start"]) == 1
    assert main(["daemon", "stop"]) == 0
    assert f"daemon stopped (pid {pid})" in capsys.readouterr().out
    assert daemon_pid() is None


@pytest.mark.slow
def test_a_relative_state_directory_and_hook_are_pinned_before_the_daemon_detaches(
        queue_home, tmp_path, monkeypatch, wait_for):
    workdir = tmp_path / "here"
    home = workdir / "rel-home"
    home.mkdir(parents=True)
    write_config(home, hook="hooks/notify")
    (home / "hooks").mkdir()
    hook = home / "hooks" / "notify"
    # The hook runs in the daemon's folder ("/"): it must get an absolute ARCHIVIST_HOME too.
    hook.write_text('#!/bin/sh\necho "$ARCHIVIST_JOB_ID $ARCHIVIST_JOB_STATUS" > "$ARCHIVIST_HOME/hook-ran"\n')
    hook.chmod(0o755)
    env = dict(os.environ, ARCHIVIST_HOME="rel-home")
    monkeypatch.setenv("ARCHIVIST_HOME", str(home))  # this process (and the teardown) use the same place
    start = subprocess.run([sys.executable, "-m", "archivist_tui.cli", "daemon", "start"], cwd=workdir, env=env,
                           capture_output=True, text=True, timeout=120)
    assert start.returncode == 0, start.stderr
    assert "daemon started" in start.stdout
    pid = daemon_pid()
    assert pid and psutil.Process(pid).cwd() == "/"
    assert psutil.Process(pid).environ()["ARCHIVIST_HOME"] == str(home)

    with QueueClient() as q:
        jid = q.submit("selftest", {"output": str(tmp_path / "out.txt"), "steps": 2})
    wait_for(lambda: Store().get(jid).status == "done", what="the job done")
    wait_for(lambda: (home / "hook-ran").exists(), what="the hook")
    assert (home / "hook-ran").read_text().split() == [str(jid), "done"]
    assert Store().get(jid).log_path.startswith(str(home))

    status = subprocess.run([sys.executable, "-m", "archivist_tui.cli", "daemon", "status", "--json"], cwd=workdir,
                            env=env, capture_output=True, text=True, timeout=120)
    doc = json.loads(status.stdout)
    assert doc["running"] is True and doc["pid"] == pid and doc["database"] == str(home / "queue.db")
    stop = subprocess.run([sys.executable, "-m", "archivist_tui.cli", "daemon", "stop"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0 and f"daemon stopped (pid {pid})" in stop.stdout


def test_pinned_environment_leaves_no_relative_path(tmp_path, monkeypatch):
    from engine.queue.daemon import pinned_environment

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARCHIVIST_HOME", "state")
    env = pinned_environment({"ARCHIVIST_HOME": "state", "PYTHONPATH": "src:/abs", "PATH": "bin::/usr/bin",
                              "XDG_DATA_HOME": "data"})
    assert env["ARCHIVIST_HOME"] == str(tmp_path / "state")
    assert env["XDG_DATA_HOME"] == str(tmp_path / "data")
    assert env["PATH"].split(os.pathsep) == [str(tmp_path / "bin"), str(tmp_path), "/usr/bin"]
    assert all(os.path.isabs(p) for p in env["PYTHONPATH"].split(os.pathsep))
    assert str(tmp_path / "src") in env["PYTHONPATH"].split(os.pathsep)


def test_a_daemon_that_does_not_report_ready_in_time_is_not_left_running(queue_home):
    """The start command's wait is the daemon's deadline: past it, the daemon is stopped, never left
    running unannounced (a zero wait makes the deadline pass at once, on any machine)."""
    from engine.errors import ArchivistError
    from engine.queue.daemon import start_daemon

    with pytest.raises(ArchivistError, match="did not report ready within 0 s and was stopped"):
        start_daemon(timeout=0.0)
    left = [p for p in psutil.process_iter(["cmdline"]) if "engine.queue.daemon" in " ".join(p.info["cmdline"] or [])
            and _home_of(p) == str(queue_home) and not _gone(p.pid)]
    assert left == [] and daemon_pid() is None


def _home_of(proc: psutil.Process) -> str | None:
    try:
        return proc.environ().get("ARCHIVIST_HOME")
    except psutil.Error:
        return None
