"""The daemon with real processes: start/stop/status, running jobs, pause/resume/cancel/retry/after/hook."""

from __future__ import annotations

import json
import os
import signal
import sys

import psutil
import pytest

from archivist_tui.cli import main
from engine.queue import QueueClient, Store
from engine.queue.daemon import daemon_pid, start_daemon, stop_daemon


def _job(jid):
    with Store() as s:
        return s.get(jid)


def _status(jid):
    return _job(jid).status


def _selftest(tmp_path, name, **spec):
    return {"output": str(tmp_path / f"{name}.txt"), "counter": str(tmp_path / "counter"), **spec}


def test_daemon_start_status_stop(queue_home, capsys):
    assert main(["daemon", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["running"] is False

    assert main(["daemon", "start"]) == 0
    assert "daemon started (pid" in capsys.readouterr().out
    pid = daemon_pid()
    assert pid and psutil.pid_exists(pid)
    assert os.getsid(pid) == pid  # detached: its own session, no controlling terminal

    assert main(["daemon", "status", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["running"] is True and st["pid"] == pid and st["slots"] == ["cpu:0", "cpu:1"]
    assert st["log"].endswith("daemon.log") and os.path.exists(st["log"])

    assert main(["daemon", "start"]) == 1
    assert f"already running (pid {pid}" in capsys.readouterr().err

    assert main(["daemon", "stop"]) == 0
    assert f"daemon stopped (pid {pid})" in capsys.readouterr().out
    assert daemon_pid() is None
    assert main(["daemon", "status"]) == 0
    assert "not running" in capsys.readouterr().out
    assert main(["daemon", "stop"]) == 0
    assert "not running" in capsys.readouterr().err


def test_foreground_daemon_runs_jobs_and_stops_on_sigterm(queue_home, tmp_path, wait_for):
    import subprocess

    from engine.queue.daemon import _source_root_env

    with QueueClient() as q:
        jid = q.submit("selftest", _selftest(tmp_path, "fg", steps=3))
    proc = subprocess.Popen([sys.executable, "-m", "archivist_tui.cli", "daemon", "start", "--foreground"],
                            env=_source_root_env(dict(os.environ)), stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _status(jid) == "done", what="job done")
        assert daemon_pid() == proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "daemon stopped" in err


def test_bad_config_stops_start_with_a_clear_error(queue_home, configure, capsys):
    configure(max_attempts=-1)
    assert main(["daemon", "start"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archivist: error: ")
    assert "config.yaml: queue.max_attempts = -1 invalid: allowed an integer 1 to 100" in err[0]
    assert daemon_pid() is None


def _starts(jid) -> list[int]:
    """The step each run of a selftest job started from, read from its log."""
    import re

    return [int(n) for n in re.findall(r"run starts at step (\d+)", open(_job(jid).log_path).read())]


@pytest.mark.slow
def test_jobs_pause_resume_cancel_priority(queue_home, tmp_path, configure, gate, wait_for, capsys):
    configure(cpu_slots=1)
    with QueueClient() as q:
        # Held by the test at step 5 (then paused there) and at step 20 (then cancelled there).
        long = q.submit("selftest", _selftest(tmp_path, "long", steps=60, hold_at=[5, 20], gate=str(gate)))
        low = q.submit("selftest", _selftest(tmp_path, "low", steps=2), priority=-5)
        high = q.submit("selftest", _selftest(tmp_path, "high", steps=2), priority=5)
        doomed = q.submit("selftest", _selftest(tmp_path, "doomed", steps=2), priority=-10)
        assert q.cancel(doomed) == "cancelled"
    start_daemon()
    worker = gate.wait_held(5)
    j = _job(long)
    assert j.status == "running" and j.slot == "cpu:0" and j.worker_pid == worker and j.total == 60

    assert main(["queue", "pause", str(long)]) == 0
    assert "pause requested" in capsys.readouterr().out
    wait_for(lambda: _status(long) == "paused", what="paused")
    wait_for(lambda: not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE,
             what="the paused worker to exit (its device released)")
    assert not (tmp_path / "long.txt").exists()

    # The slot is free again: the queued jobs run, the higher priority first.
    wait_for(lambda: _status(low) == "done", what="low done")
    assert _job(high).started_at < _job(low).started_at

    gate.open(5)
    assert main(["queue", "resume", str(long)]) == 0
    assert f"job #{long} queued" in capsys.readouterr().out
    gate.wait_held(20)
    assert _starts(long) == [0, 5]  # resumed from its state, not from zero

    assert main(["queue", "cancel", str(long)]) == 0
    assert "cancel requested" in capsys.readouterr().out
    wait_for(lambda: _status(long) == "cancelled", what="cancelled")
    assert not (tmp_path / "long.txt").exists()
    assert not (queue_home / "jobs" / str(long) / "state.json").exists()
    assert _status(doomed) == "cancelled"

    assert main(["queue", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [j["status"] for j in listing] == ["cancelled", "done", "done", "cancelled"]
    assert main(["queue", "show", str(long)]) == 0
    shown = capsys.readouterr().out
    assert "paused at a safe boundary" in shown and "cancelled; partial output removed" in shown
    assert main(["queue", "log", str(low)]) == 0
    assert f"job {low} done" in capsys.readouterr().out
    gate.open(20)
    assert main(["queue", "retry", str(long)]) == 0
    wait_for(lambda: _status(long) == "done", timeout=60, what="retried job done")
    assert (tmp_path / "long.txt").read_text().startswith(f"job {long} steps 60")
    counter = (tmp_path / "counter").read_text().split("\n")
    assert sorted(c for c in counter if c) == sorted(f"done {i}" for i in (long, low, high))


@pytest.mark.slow
def test_failures_retry_and_dependencies(queue_home, tmp_path, wait_for, capsys):
    with QueueClient() as q:
        flaky = q.submit("selftest", _selftest(tmp_path, "flaky", steps=1, fail_times=1))
        broken = q.submit("selftest", _selftest(tmp_path, "broken", steps=1, fail_times=3))
        waits = q.submit("selftest", _selftest(tmp_path, "waits", steps=1), after=broken)
        first = q.submit("selftest", _selftest(tmp_path, "first", steps=8))
        second = q.submit("selftest", _selftest(tmp_path, "second", steps=1), after=first)
        nogpu = q.submit("selftest", _selftest(tmp_path, "nogpu", steps=1), device="cuda:3")
        crashy = q.submit("selftest", _selftest(tmp_path, "crashy", steps=1, crash_times=1))
    start_daemon()
    wait_for(lambda: _status(second) == "done", what="dependent job done")
    assert _job(second).started_at >= _job(first).finished_at
    wait_for(lambda: _status(waits) == "failed", what="dependent of a failed job fails")
    assert _status(flaky) == "done" and _job(flaky).attempts == 1
    b = _job(broken)
    assert b.status == "failed" and b.attempts == 2 and "selftest failure 2 of 3" in b.error
    assert _job(waits).error == f"dependency #{broken} ended failed"
    wait_for(lambda: _status(crashy) == "done", what="crashed-once job done")
    assert _job(crashy).attempts == 1
    with Store() as s:
        assert any("worker crashed (SIGABRT)" in e.message for e in s.events(crashy))
    n = _job(nogpu)
    assert n.status == "failed" and "device cuda:3: no such slot" in n.error

    # A retry starts the count again; the third failure is the last one the job has in it.
    assert main(["queue", "retry", str(broken)]) == 0
    wait_for(lambda: _status(broken) == "done", what="retried job done")
    assert main(["queue", "retry", str(broken)]) == 1
    assert "only failed or cancelled jobs can be retried" in capsys.readouterr().err

    assert main(["queue", "remove", str(first)]) == 0
    assert main(["queue", "clear", "--done"]) == 0
    assert "removed 4 done job(s)" in capsys.readouterr().out
    with Store() as s:
        assert sorted(j.id for j in s.jobs()) == sorted([waits, nogpu])
    assert not (queue_home / "jobs" / str(first)).exists()


def test_hook_runs_without_a_shell(queue_home, tmp_path, configure, wait_for):
    record = tmp_path / "hook.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text(
        "import json, os\n"
        f"with open({str(record)!r}, 'a') as f:\n"
        "    f.write(json.dumps({k: v for k, v in os.environ.items() if k.startswith('ARCHIVIST_JOB_')}) + '\\n')\n"
    )
    configure(hook=json.dumps([sys.executable, str(hook)]))
    evil = tmp_path / "$(touch pwned); touch pwned2"
    evil.mkdir()
    with QueueClient() as q:
        ok = q.submit("selftest", {"output": str(evil / "out.txt"), "steps": 1})
        bad = q.submit("selftest", {"output": str(tmp_path / "bad.txt"), "steps": 1, "fail_times": 9})
    start_daemon()
    wait_for(lambda: record.exists() and len(record.read_text().splitlines()) == 2, what="two hook runs")
    runs = {int(r["ARCHIVIST_JOB_ID"]): r for r in map(json.loads, record.read_text().splitlines())}
    assert runs[ok]["ARCHIVIST_JOB_STATUS"] == "done" and runs[ok]["ARCHIVIST_JOB_KIND"] == "selftest"
    assert runs[ok]["ARCHIVIST_JOB_OUTPUT"] == str(evil / "out.txt")
    assert runs[bad]["ARCHIVIST_JOB_STATUS"] == "failed" and "selftest failure" in runs[bad]["ARCHIVIST_JOB_ERROR"]
    assert not any(p.name.startswith("pwned") for p in tmp_path.rglob("*"))
    assert not any(p.name.startswith("pwned") for p in queue_home.rglob("*"))


def test_worker_killed_is_taken_back_not_counted(queue_home, tmp_path, gate, wait_for):
    with QueueClient() as q:
        jid = q.submit("selftest", _selftest(tmp_path, "victim", steps=8, hold_at=[4], gate=str(gate)))
    start_daemon()
    os.kill(gate.wait_held(4), signal.SIGKILL)
    gate.open(4)
    wait_for(lambda: _status(jid) == "done", what="done after takeover")
    j = _job(jid)
    assert j.attempts == 0 and j.error is None
    with Store() as s:
        assert any("taken back" in e.message for e in s.events(jid))
    assert (tmp_path / "counter").read_text() == f"done {jid}\n"
    assert _starts(jid) == [0, 4]  # the second worker went on from the first one's state
    import stat

    assert stat.S_IMODE(os.stat(queue_home / "jobs").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(queue_home / "jobs" / str(jid)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(j.log_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(queue_home / "daemon.log").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(queue_home / "daemon.pid").st_mode) == 0o600


@pytest.mark.slow  # over ~1 s: outside the inner loop (CI runs it)
def test_daemon_stop_requeues_running_jobs_and_next_start_resumes(queue_home, tmp_path, gate, wait_for):
    with QueueClient() as q:
        jid = q.submit("selftest", _selftest(tmp_path, "stopme", steps=8, hold_at=[4], gate=str(gate)))
    start_daemon()
    gate.wait_held(4)
    stop_daemon()
    j = _job(jid)
    assert j.status == "queued" and j.attempts == 0
    with Store() as s:
        assert s.events(jid)[-1].message == "stopped by the daemon; queued to resume"
    gate.open(4)
    start_daemon()
    wait_for(lambda: _status(jid) == "done", what="resumed to done")
    assert _starts(jid) == [0, 4]
