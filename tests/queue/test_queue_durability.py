"""Durability of the queue's records (issue 12): nothing but SQLite opens the database file, a worker
outlives its daemon and its results land, no acknowledged job is lost; a full disk is not damage."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.queue import QueueClient, Store
from engine.queue.daemon import daemon_pid, start_daemon, stop_daemon
from tests.disks import fill, tmpfs

ROOT = Path(__file__).resolve().parents[2]

# A process that holds the store the way a worker does: its own Store, then a second one (the
# heartbeat's), then writes on request. Lines on stdin: "write" inserts a job and answers its id.
HOLDER = textwrap.dedent("""
    import sys
    from engine.queue.store import Store
    main = Store()
    main.jobs()
    beat = Store(main.path)   # the heartbeat's own connection, opened second
    beat.jobs()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "write":
            job_id = main.insert_job("selftest", {"output": "/nonexistent/x"})
            print(job_id, flush=True)
        elif line.strip() == "beat":
            beat.update(1, heartbeat=1.0)
            print("ok", flush=True)
""")


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_second_store_in_a_process_keeps_its_writes_visible(queue_home):
    """Closing a descriptor on the database drops the process's POSIX locks; another process closing
    its connection then checkpoints and deletes the WAL under the live one, and writes vanish."""
    with QueueClient() as q:
        q.submit("selftest", {"output": str(queue_home / "o.txt")})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "ready"
        # Another process (``queue list``) opens and closes the store: it must not be the last one.
        Store().close()
        holder.stdin.write("write\n")
        holder.stdin.flush()
        acknowledged = int(holder.stdout.readline())
        holder.stdin.write("beat\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "ok"
        with Store() as s:  # a third process' view, while the holder still runs
            assert s.find(acknowledged) is not None, "an acknowledged job is not in the store"
            assert s.get(1).heartbeat == 1.0
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with Store() as s:
        assert [j.id for j in s.jobs()] == [1, acknowledged]
    assert _integrity(queue_home / "queue.db") == "ok"


def test_nothing_but_sqlite_opens_the_database_file(queue_home, tmp_path):
    """The kind: no Python-level open of queue.db (or its -wal/-shm) anywhere on the store's paths:
    creating, opening, migrating, reading, writing, claiming, the client's commands."""
    opened: list[str] = []
    names = {"queue.db", "queue.db-wal", "queue.db-shm", "queue.db-journal"}

    def hook(event: str, args: tuple) -> None:
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            if os.path.basename(os.fsdecode(args[0])) in names:
                opened.append(os.fsdecode(args[0]))

    sys.addaudithook(hook)  # audit hooks stay for the process: it only records queue.db opens
    from archivist_tui.cli import main

    with QueueClient() as q:  # creates the database
        job = q.submit("selftest", {"output": str(tmp_path / "a.txt")})
        q.pause(job)
        q.resume(job)
    with Store() as main_store, Store() as second:
        claimed = second.claim(["cpu:0"])
        main_store.update(claimed.id, claimed.token, heartbeat=2.0)
        main_store.jobs()
    assert main(["queue", "list"]) == 0
    assert main(["queue", "list", "--json"]) == 0
    assert opened == []


@pytest.mark.slow
def test_worker_outlives_its_killed_daemon_and_its_result_lands(queue_home, tmp_path, gate, wait_for, capsys):
    """kill -9 the daemon while a worker runs, read the queue, add jobs, start a new daemon: the
    orphaned worker's ``done`` lands once, it is not run again, the added jobs are all there."""
    from archivist_tui.cli import main

    counter = tmp_path / "counter"
    with QueueClient() as q:
        held = q.submit("selftest", {"output": str(tmp_path / "held.txt"), "steps": 3, "hold_at": [2],
                                     "gate": str(gate), "counter": str(counter)}, device="cpu")
    start_daemon()
    worker = wait_for(lambda: gate.held(2), timeout=60, what="the worker held at step 2")
    os.kill(daemon_pid(), signal.SIGKILL)
    wait_for(lambda: daemon_pid() is None, timeout=30, what="the killed daemon's lock to go")
    assert main(["queue", "list"]) == 0
    capsys.readouterr()
    with QueueClient() as q:  # acknowledged once submit returns
        added = [q.submit("selftest", {"output": str(tmp_path / f"n{i}.txt"), "counter": str(counter)})
                 for i in range(3)]
    start_daemon()  # the new daemon must leave the orphan's job to it
    gate.open(2)
    wait_for(lambda: not _alive(worker), timeout=60, what="the orphaned worker to exit")

    def all_done() -> bool:
        with Store() as s:
            return all(j.status == "done" for j in s.jobs())

    wait_for(all_done, timeout=60, what="every job done")
    stop_daemon()
    with Store() as s:
        job = s.get(held)
        assert job.attempts == 0
        claims = [e.message for e in s.events(held) if e.message.startswith("claimed")]
        assert len(claims) == 1, claims
        assert sorted(j.id for j in s.jobs()) == sorted([held, *added])
    assert sorted(counter.read_text().split("\n")[:-1]) == sorted(f"done {j}" for j in [held, *added])
    assert _integrity(queue_home / "queue.db") == "ok"


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -- a full disk ------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """ARCHIVIST_HOME on a 1 MiB tmpfs of its own (mounted here; CI runs as root), unmounted after."""
    with tmpfs(tmp_path / "small", "1m") as mount:
        home = mount / "home"
        monkeypatch.setenv("ARCHIVIST_HOME", str(home))
        home.mkdir(mode=0o700)
        (home / "config.yaml").write_text("queue:\n  gpus: []\n  cpu_slots: 1\n  poll_interval: 0.1\n")
        yield home


@pytest.mark.parametrize("daemon_holds_the_store", [False, True], ids=["closed", "open-elsewhere"])
def test_full_disk_is_not_damage_and_reading_still_works(small_disk, tmp_path, capsys, daemon_holds_the_store):
    """On a full disk: reading commands work, writing ones say 'no space' (never 'damaged', never
    advice to move the database aside), nothing is lost, and all works again once space is freed.
    ``open-elsewhere``: another process (a daemon) holds the store open meanwhile."""
    from archivist_tui.cli import main

    with QueueClient() as q:
        ids = [q.submit("selftest", {"output": str(tmp_path / f"o{i}.txt")}) for i in range(3)]
    holder = None
    if daemon_holds_the_store:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env=env)
        assert holder.stdout.readline().strip() == "ready"
    try:
        filler = fill(small_disk.parent)
        capsys.readouterr()
        assert main(["queue", "list"]) == 0
        out = capsys.readouterr().out
        assert all(f"\n{i} " in "\n" + out for i in ids), out
        assert main(["queue", "list", "--json"]) == 0
        assert [j["id"] for j in json.loads(capsys.readouterr().out)] == ids
        assert main(["queue", "show", str(ids[0])]) == 0
        assert main(["daemon", "status"]) == 0
        capsys.readouterr()
        from archivist_tui.data import list_jobs  # the TUI's queue screen reads the same

        assert [j.id for j in list_jobs()] == ids
        assert main(["queue", "pause", str(ids[1])]) == 1
        err = capsys.readouterr().err
        assert err.startswith("archivist: error: ") and err.count("\n") == 1, err
        assert "no space" in err and "intact" in err, err
        assert "damaged" not in err and "move it aside" not in err and "Traceback" not in err, err
        filler.unlink()
        assert main(["queue", "pause", str(ids[1])]) == 0
    finally:
        if holder is not None:
            holder.stdin.close()
            holder.wait(timeout=30)
    with Store() as s:
        assert [(j.id, j.status) for j in s.jobs()] == [(ids[0], "queued"), (ids[1], "paused"), (ids[2], "queued")]
    assert _integrity(small_disk / "queue.db") == "ok"


def _log_count(log: Path, text: str) -> int:
    return log.read_text(errors="replace").count(text) if log.exists() else 0


def test_daemon_opening_on_a_full_disk_stays_up_and_runs_the_jobs_once_space_is_free(
        small_disk, kinds_for_tests, tmp_path, wait_for):
    """A daemon whose first open of the store meets a full disk (the disk filled just after ``daemon
    start``) logs 'no space' each poll, stays up, and runs the queued job once space is freed."""
    out = tmp_path / "o.txt"
    with QueueClient() as q:
        job = q.submit("selftest", {"output": str(out), "steps": 2})
    filler = fill(small_disk.parent)
    log = tmp_path / "daemon.log"  # off the full disk, so the test can read what it says
    with open(log, "wb") as f:
        daemon = subprocess.Popen([sys.executable, "-m", "engine.queue.daemon"], stdin=subprocess.DEVNULL,
                                  stdout=f, stderr=f, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_for(lambda: _log_count(log, "no space left") >= 3 or daemon.poll() is not None, 60,
                 what="the daemon to log the full disk on three polls")
        assert daemon.poll() is None, log.read_text()
        assert "damaged" not in log.read_text() and "Traceback" not in log.read_text(), log.read_text()
        filler.unlink()
        wait_for(lambda: Store().get(job).status == "done" or daemon.poll() is not None, 60,
                 what="the queued job to run once space is free")
        assert daemon.poll() is None and Store().get(job).status == "done", log.read_text()
        assert out.exists()
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log.read_text()
    assert _integrity(small_disk / "queue.db") == "ok"


def test_daemon_start_returns_with_the_store_open_and_a_full_disk_then_does_not_end_it(
        small_disk, kinds_for_tests, tmp_path, wait_for):
    """``daemon start`` returns once the daemon has opened the store (its shared-memory file exists);
    a disk that fills right after leaves the daemon running, and it runs new jobs once space is free."""
    start_daemon()
    try:
        pid = daemon_pid()
        assert (small_disk / "queue.db-shm").exists(), "daemon start returned before the daemon opened the store"
        filler = fill(small_disk.parent)
        with pytest.raises(Exception, match="no space"):
            with QueueClient() as q:
                q.submit("selftest", {"output": str(tmp_path / "never.txt")})
        assert daemon_pid() == pid
        filler.unlink()
        out = tmp_path / "o.txt"
        with QueueClient() as q:
            job = q.submit("selftest", {"output": str(out), "steps": 2})
        wait_for(lambda: Store().get(job).status == "done" or daemon_pid() is None, 60,
                 what="the job to run after space came back")
        assert daemon_pid() == pid and out.exists()
    finally:
        stop_daemon(timeout=60)
    assert _integrity(small_disk / "queue.db") == "ok"
