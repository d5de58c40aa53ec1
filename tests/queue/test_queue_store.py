"""The store: permissions, damaged and foreign files, schema migration, atomic claims, concurrent clients."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.queue import QueueClient, Store
from engine.queue.config import load_config
from engine.queue.store import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, pick_slot

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_dir_and_database_are_owner_only(tmp_path, monkeypatch):
    home = tmp_path / "fresh" / "home"
    monkeypatch.setenv("ARCHIVIST_HOME", str(home))
    with QueueClient() as q:
        q.submit("selftest", {"output": str(tmp_path / "o.txt")})
    assert _mode(home) == 0o700
    assert _mode(home / "queue.db") == 0o600
    for side in ("queue.db-wal", "queue.db-shm"):
        if (home / side).exists():
            assert _mode(home / side) == 0o600


def test_garbage_file_is_reported_never_reset(queue_home, capsys):
    db = queue_home / "queue.db"
    junk = b"this is not a database\n" * 100
    db.write_bytes(junk)
    with pytest.raises(ArchivistError, match="not an SQLite database"):
        Store()
    assert main(["queue", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("archivist: error: ") and "queue.db" in err and "Traceback" not in err
    assert db.read_bytes() == junk


def test_foreign_sqlite_database_is_reported(queue_home):
    db = queue_home / "queue.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE photos (id INTEGER, name TEXT)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(ArchivistError, match="not an Archivist queue database.*photos"):
        Store()
    assert db.read_bytes() == before


def test_damaged_pages_are_reported(queue_home):
    with QueueClient() as q:
        for i in range(50):
            q.submit("selftest", {"output": f"/tmp/never-{i}", "steps": 1})
    with Store() as s:
        s._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db = queue_home / "queue.db"
    data = bytearray(db.read_bytes())
    page = 4096
    data[page: 4 * page] = b"\xff" * (3 * page)  # smash the table pages after the header page
    db.write_bytes(bytes(data))
    with pytest.raises(ArchivistError, match="damaged|not an Archivist"):
        with Store() as s:
            s.jobs()


def test_newer_schema_is_refused(queue_home):
    Store().close()
    conn = sqlite3.connect(queue_home / "queue.db")
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(ArchivistError, match="schema version 99.*upgrade"):
        Store()


def test_version_1_database_migrates(queue_home):
    db = queue_home / "queue.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    for sql in MIGRATIONS[0]:
        conn.execute(sql)
    conn.execute("INSERT INTO jobs (kind, spec, status, created_at, updated_at) "
                 "VALUES ('selftest', '{\"output\": \"/tmp/x\"}', 'queued', 1.0, 1.0)")
    conn.commit()
    conn.close()
    with Store() as s:
        (job,) = s.jobs()
        assert job.kind == "selftest" and job.spec == {"output": "/tmp/x"} and job.request is None
        assert s._query("SELECT version FROM schema_version")[0][0] == SCHEMA_VERSION


def test_pick_slot():
    slots = ["cuda:0", "cuda:1", "cpu:0"]
    assert pick_slot("any", slots) == "cuda:0"
    assert pick_slot("any", ["cpu:1"]) == "cpu:1"
    assert pick_slot("cpu", slots) == "cpu:0"
    assert pick_slot("cuda:1", slots) == "cuda:1"
    assert pick_slot("cuda:2", slots) is None
    assert pick_slot("cpu", ["cuda:0"]) is None


def test_client_validation(queue_home):
    with QueueClient() as q:
        with pytest.raises(ArchivistError, match="unknown job kind 'bake'"):
            q.submit("bake", {})
        with pytest.raises(ArchivistError, match="^device = 'gpu7' invalid: allowed any, cpu or cuda:N"):
            q.submit("selftest", {"output": "/tmp/a"}, device="gpu7")
        with pytest.raises(ArchivistError, match="^after 99: no job #99"):  # the key; the CLI shows --after
            q.submit("selftest", {"output": "/tmp/a"}, after=99)
        with pytest.raises(ArchivistError, match="spec key 'output' is missing"):
            q.submit("selftest", {})
        with pytest.raises(ArchivistError, match="input .*no such file"):
            q.submit("restore", {"input": "/nonexistent/x.png", "output": "/tmp/o.png", "models": ["m"]})
        with pytest.raises(ArchivistError, match="no job #5"):
            q.get(5)


def test_config_validation(queue_home):
    cfg = queue_home / "config.yaml"
    cfg.write_text("queue:\n  gpus: []\n  max_attempts: 0\n")
    with pytest.raises(ArchivistError, match=r"config.yaml: queue.max_attempts = 0 invalid: allowed an integer 1 to 100$"):
        load_config()
    cfg.write_text("queue:\n  slotz: 3\n")
    with pytest.raises(ArchivistError, match=r"config.yaml: unknown key 'queue.slotz': allowed keys are gpus, cpu_slots, "):
        load_config()
    cfg.write_text("queue:\n  gpus: [0, 2]\n  hook: notify-send 'job done'\n")
    c = load_config(detect_gpus=False)  # as `daemon status` reads it: the machine is not asked
    assert c.slots == ["cuda:0", "cuda:2"] and c.hook == ["notify-send", "job done"] and c.max_attempts == 3
    # The daemon asks the machine: a GPU it lacks would be a slot that fails every job it takes.
    with pytest.raises(ArchivistError, match=r"config.yaml: queue.gpus = \[0, 2\] invalid: allowed \[\] or auto: "
                                             r"this machine has no CUDA GPU that PyTorch can use$"):
        load_config()
    cfg.write_text("queue:\n  gpus: []\n")
    assert load_config().slots == ["cpu:0"]


@pytest.mark.parametrize("text,line", [
    ("gpus: [0, 0]", "queue.gpus = [0, 0] invalid: allowed auto or a list of GPU indices, each an integer 0 or more, none twice"),
    ("gpus: [-1]", "queue.gpus = [-1] invalid: allowed auto or a list of GPU indices, each an integer 0 or more"),
    ("gpus: yes", "queue.gpus = True invalid: allowed auto or a list of GPU indices"),
    ("gpus: []\n  cpu_slots: 0", "queue.cpu_slots = 0 invalid: allowed an integer 1 to 64 when there is no GPU slot"),
    ("cpu_slots: 65", "queue.cpu_slots = 65 invalid: allowed null or an integer 0 to 64"),
    ("poll_interval: 0", "queue.poll_interval = 0 invalid: allowed a number 0.01 to 60 (seconds)"),
    ("hook: []", "queue.hook = [] invalid: allowed null or a command as a list of words or one string"),
    ("hook: ''", "queue.hook = '' invalid: allowed null or a command"),
])
def test_a_bad_queue_setting_names_the_file_key_value_and_range(queue_home, text, line):
    cfg = queue_home / "config.yaml"
    cfg.write_text(f"queue:\n  {text}\n")
    with pytest.raises(ArchivistError) as refused:
        load_config(detect_gpus=False)
    assert str(refused.value).startswith(f"{cfg}: {line}")


def test_queue_settings_resolve_defaults_and_hook_paths(queue_home):
    cfg = queue_home / "config.yaml"
    cfg.write_text("queue:\n  gpus: [1]\n  hook: bin/notify --quiet\n")
    c = load_config(detect_gpus=False)
    assert c.gpus == [1] and c.cpu_slots == 0 and c.slots == ["cuda:1"]
    assert c.hook == [str(queue_home / "bin" / "notify"), "--quiet"]  # read from the config's folder
    cfg.write_text("other: 1\n")
    c = load_config(detect_gpus=False)
    assert (c.gpus, c.cpu_slots, c.poll_interval, c.hook) == ([], 1, 1.0, None)
    cfg.write_text("queue: 5\n")
    with pytest.raises(ArchivistError, match=r"queue = 5 invalid: allowed a mapping"):
        load_config(detect_gpus=False)


def test_the_daemon_docs_hold_the_current_key_table():
    from engine.document import refresh_page

    page = (ROOT / "docs" / "daemon.md").read_text(encoding="utf-8")
    assert "| `max_attempts` | `3` | an integer 1 to 100 |" in page
    assert refresh_page(page) == page, "docs/daemon.md is stale: python -m engine.document docs/daemon.md"


def _run_children(script: str, n: int = 2) -> list[list[int]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(n)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    return results


def test_two_clients_add_200_jobs_with_distinct_ids(queue_home):
    Store().close()
    results = _run_children("""
        import json, sys
        from engine.queue import QueueClient
        who = sys.argv[1]
        with QueueClient() as q:
            ids = [q.submit("selftest", {"output": f"/tmp/out-{who}-{i}"}) for i in range(100)]
        print(json.dumps(ids))
    """)
    ids = results[0] + results[1]
    assert len(ids) == 200 and len(set(ids)) == 200
    with Store() as s:
        assert len(s.jobs("queued")) == 200


def test_claims_from_two_processes_never_overlap(queue_home):
    with QueueClient() as q:
        for i in range(60):
            q.submit("selftest", {"output": f"/tmp/claim-{i}"})
    results = _run_children("""
        import json
        from engine.queue import Store
        got = []
        with Store() as s:
            while (job := s.claim(["cpu:0", "cpu:1"])) is not None:
                got.append(job.id)
        print(json.dumps(got))
    """)
    a, b = map(set, results)
    assert not a & b
    assert len(a | b) == 60
    with Store() as s:
        assert {j.id for j in s.jobs("running")} == a | b



def test_the_faces_poll_reads_only_and_hands_back_unchanged_jobs_as_they_were(queue_home):
    """``JobsPoll``, the read API of the TUI's Queue screen: the store opened read-only (nothing
    created before there is a queue, nothing written), each spec parsed once, an unchanged job the
    same object, a changed one new, a removed one gone; names that are not UTF-8 come back as the
    same strings; a file that is not an Archivist queue is an error, never jobs."""
    from engine.queue.store import JobsPoll, StoreError

    poll = JobsPoll()
    assert poll.read() is None and poll.events(1) == []
    assert not (queue_home / "queue.db").exists()  # looking created nothing
    reel = os.fsdecode(b"reel_\xff.mkv")  # a name in no encoding at all
    with Store() as store:
        a = store.insert_job("restore", {"input": f"/films/{reel}", "models": ["m"]}, output=f"/out/{reel}")
        b = store.insert_job("restore", {"input": "/films/b.mkv", "models": ["m"]})
        c = store.insert_job("degrade", {"input": "/frames", "output": "/pairs"})
    first = poll.read()
    assert [j.id for j in first] == [a, b, c]
    assert first[0].spec["input"] == f"/films/{reel}" and first[0].columns["output"] == f"/out/{reel}"
    assert os.fsencode(first[0].columns["log_path"]).endswith(b"/jobs/%d/log" % a)
    with Store() as store:
        store.update(b, status="running", done=5.0, total=10.0, request="pause")
        store.execute("DELETE FROM jobs WHERE id = ?", (c,))
    second = poll.read()
    assert [j.id for j in second] == [a, b]
    assert second[0] is first[0]  # unchanged: nothing read into a new object
    assert second[1] is not first[1] and second[1].status == "pausing"  # the engine's rule for a pending request
    assert second[1].spec is first[1].spec  # the spec is read and parsed once per job
    assert [e.message for e in poll.events(a)] == ["submitted restore job (priority 0, device any)"]
    files = [queue_home / "queue.db", queue_home / "queue.db-wal"]  # (-shm is SQLite's lock memory: readers touch it)
    before = [(p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    poll.read()
    assert [(p.stat().st_size, p.stat().st_mtime_ns) for p in files] == before
    with pytest.raises(StoreError, match="opened for reading only"):
        with Store.for_reading() as store:
            store.update(a, status="failed")

    foreign = queue_home / "other.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, kind TEXT, spec TEXT, status TEXT)")
    con.commit()
    con.close()
    with pytest.raises(ArchivistError, match="not an Archivist queue database"):
        JobsPoll(foreign).read()
