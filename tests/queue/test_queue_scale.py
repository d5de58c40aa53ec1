"""The queue at scale (issue 12): an idle daemon's pass does not read the queued jobs, bulk actions are
atomic and skip ended jobs. Speed itself is measured by benchmarks/bench_queue.py, not here."""

from __future__ import annotations

import json
import time

import pytest

from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.queue import QueueClient, Store
from engine.queue.config import load_config
from engine.queue.daemon import Daemon

QUEUED = 300


def _fill(store: Store, n: int, after: int | None, tmp_path) -> None:
    now = time.time()
    with store.transaction() as conn:
        for i in range(n):
            conn.execute("INSERT INTO jobs (kind, spec, status, priority, device, created_at, updated_at, after_id)"
                         " VALUES ('selftest', ?, 'queued', 0, 'any', ?, ?, ?)",
                         (json.dumps({"output": str(tmp_path / f"o{i}.txt"), "steps": 1}), now, now, after))


def test_idle_daemon_pass_reads_no_queued_job(queue_home, tmp_path):
    """Every queued job waits on a paused one: after one pass that finds nothing, the next passes read
    neither the queued rows nor try a claim, until something in the queue changes."""
    with QueueClient() as q:
        blocker = q.submit("selftest", {"output": str(tmp_path / "never.txt")})
        q.pause(blocker)
    statements: list[str] = []
    with Store() as store:
        _fill(store, QUEUED, blocker, tmp_path)
        daemon = Daemon(load_config(detect_gpus=False), store)
        daemon.tick()
        store._conn.set_trace_callback(statements.append)
        for _ in range(3):
            daemon.tick()
        assert statements, "the trace saw nothing"
        # (the trace shows each statement with its values bound)
        assert not [s for s in statements if "FROM jobs j" in s], "an idle pass tried a claim"
        assert not [s for s in statements if "'queued'" in s], "an idle pass read the queued jobs"
        # A change (a job asking for a device this daemon lacks): the next pass sees it and fails it.
        with QueueClient() as q:
            impossible = q.submit("selftest", {"output": str(tmp_path / "gpu.txt")}, device="cuda:7")
        statements.clear()
        daemon.tick()
        assert store.get(impossible).status == "failed"
        assert "no such slot" in store.get(impossible).error
        store._conn.set_trace_callback(None)
        assert all(j.status == "queued" for j in store.jobs() if j.id not in (blocker, impossible))


def test_pause_all_skips_jobs_that_ended_and_is_one_transaction(queue_home, tmp_path, capsys):
    """A job that ends between the listing and its turn is skipped, not an error half-way; the rest
    are all paused together."""
    with QueueClient() as q:
        ids = [q.submit("selftest", {"output": str(tmp_path / f"o{i}.txt")}) for i in range(6)]
        with Store() as s:  # one "ends" (as its worker would write) and one is running
            s.update(ids[2], status="done", finished_at=time.time())
            s.claim(["cpu:0"])  # the first queued: ids[0]
        paused = q.pause_all()
    assert sorted(paused) == [i for i in ids if i != ids[2]]
    with Store() as s:
        jobs = {j.id: j for j in s.jobs()}
    assert jobs[ids[2]].status == "done"
    assert jobs[ids[0]].status == "running" and jobs[ids[0]].request == "pause"
    assert all(jobs[i].status == "paused" for i in ids[1:] if i != ids[2])
    capsys.readouterr()
    assert main(["queue", "resume", "--all"]) == 0
    # The job still pausing is part of "all": its pause is withdrawn (it would end up paused).
    assert f"#{ids[0]}" in capsys.readouterr().out
    with Store() as s:
        jobs = s.jobs()
        assert [j.status for j in jobs] == ["running", "queued", "done", "queued", "queued", "queued"]
        assert jobs[0].request is None


def test_pause_all_with_a_job_ending_during_the_action(queue_home, tmp_path, monkeypatch):
    """The race itself: a job ends after the bulk action has listed the jobs. Before, the loop raised
    'has already ended' at that job and left the rest unpaused."""
    with QueueClient() as q:
        ids = [q.submit("selftest", {"output": str(tmp_path / f"o{i}.txt")}) for i in range(5)]
        ended: list[int] = []

        def end_one() -> None:  # another process (a worker) ends a job at this moment, once
            if not ended:
                with Store() as other:
                    other.update(ids[3], status="done", finished_at=time.time())
                ended.append(ids[3])

        def listing_then_end(status=None):
            listed = real_jobs(status)
            end_one()
            return listed

        def end_then_transaction(*args, **kwargs):
            end_one()
            return real_transaction(*args, **kwargs)

        # Whichever the action does first, list the jobs or open its transaction, the job ends then.
        real_jobs, real_transaction = q.store.jobs, q.store.transaction
        monkeypatch.setattr(q.store, "jobs", listing_then_end)
        monkeypatch.setattr(q.store, "transaction", end_then_transaction)
        try:
            paused = q.pause_all()
        except ArchivistError as exc:  # the old loop
            pytest.fail(f"pause --all stopped half-way: {exc}")
        assert ended == [ids[3]]
    with Store() as s:
        statuses = {j.id: j.status for j in s.jobs()}
    assert statuses[ids[3]] == "done"
    assert ids[3] not in paused
    assert all(statuses[i] == "paused" for i in ids if i != ids[3])


def test_list_json_is_each_job_as_show_gives_it(queue_home, tmp_path, capsys):
    """``queue list --json`` writes the store's rows without parsing the specs again: the objects are
    the same as each job's own ``to_dict`` (unicode, quotes, nested values, nulls, a status filter)."""
    with QueueClient() as q:
        a = q.submit("selftest", {"output": str(tmp_path / 'ré "quoted" \\ o.txt'), "steps": 3})
        b = q.submit("selftest", {"output": str(tmp_path / "b.txt")}, priority=5, after=a)
        q.pause(b)
    with Store() as s:
        expected = [j.to_dict() for j in s.jobs()]
    assert main(["queue", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected
    assert main(["queue", "list", "--json", "--status", "paused"]) == 0
    assert json.loads(capsys.readouterr().out) == [expected[1]]
    assert main(["queue", "list", "--json", "--status", "failed"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_claim_takes_the_best_job_a_free_slot_can_run(queue_home, tmp_path):
    """The claim stops at the first fitting job of the queue's order: highest priority, then oldest;
    a job waits for its dependency; a slot takes only the devices it can run (slot names only here)."""
    with QueueClient() as q:
        cpu = q.submit("selftest", {"output": str(tmp_path / "cpu.txt")}, device="cpu", priority=9)
        gpu1 = q.submit("selftest", {"output": str(tmp_path / "g1.txt")}, device="cuda:1", priority=8)
        first = q.submit("selftest", {"output": str(tmp_path / "a.txt")})
        waits = q.submit("selftest", {"output": str(tmp_path / "w.txt")}, priority=7, after=first)
        gpu0 = q.submit("selftest", {"output": str(tmp_path / "g0.txt")}, device="cuda:0", priority=1)
        later = q.submit("selftest", {"output": str(tmp_path / "b.txt")})
    with Store() as s:
        assert s.claim(["cuda:0"]).id == gpu0
        assert s.claim(["cuda:0"]).id == first  # any; `waits` waits for `first`
        assert s.claim(["cpu:0"]).id == cpu
        assert s.claim(["cuda:0"]).id == later
        assert s.claim(["cuda:0"]) is None  # cuda:1 and a waiting job remain
        s.update(first, status="done")
        job = s.claim(["cuda:0", "cpu:0"])
        assert job.id == waits and job.slot == "cuda:0"  # `any` prefers a GPU slot
        job = s.claim(["cuda:1"])
        assert job.id == gpu1 and job.slot == "cuda:1"
