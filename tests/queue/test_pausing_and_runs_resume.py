"""A pending pause reads 'pausing'; 'archivist runs resume' continues a run through its own job."""

from __future__ import annotations

import pytest
import yaml

from archivist_tui.cli import main
from engine.queue.client import QueueClient
from engine.queue.store import Store


def test_queue_list_says_pausing_and_cancelling_while_the_request_waits(queue_home, tmp_path, capsys):
    with QueueClient() as client:
        a = client.submit("selftest", {"output": str(tmp_path / "a")})
        b = client.submit("selftest", {"output": str(tmp_path / "b")})
    with Store() as store:  # both claimed as the daemon claims them; no worker acts on the requests
        store.claim(["cpu:0"])
        store.claim(["cpu:1"])
    assert main(["queue", "pause", str(a)]) == 0
    assert main(["queue", "cancel", str(b)]) == 0
    capsys.readouterr()
    assert main(["queue", "list"]) == 0
    rows = {int(line.split()[0]): line.split()[2] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows == {a: "pausing", b: "cancelling"}
    assert main(["queue", "show", str(a), "--json"]) == 0
    assert '"status": "running"' in capsys.readouterr().out  # the stored state is still the truth for scripts


def _trained_run(tmp_path, capsys) -> str:
    from tests.train.trainkit import tiny_config, write_pairs

    write_pairs(tmp_path / "pairs")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(**{"train.total_iters": 40})))
    assert main(["train", str(cfg), "--stop-at", "10", "--device", "cpu"]) == 0
    capsys.readouterr()
    return str(cfg)


@pytest.mark.slow  # over ~1 s: outside the inner loop (CI runs it)
def test_runs_resume_keeps_one_job_per_run(queue_home, tmp_path, capsys):
    cfg = _trained_run(tmp_path, capsys)

    def train_jobs():
        with QueueClient() as client:
            return [(j.id, j.status) for j in client.list_jobs() if j.kind == "train"]

    # No job yet: one is queued, resuming from the checkpoint.
    assert main(["runs", "resume", "tiny"]) == 0
    assert "queued as job #1" in capsys.readouterr().out
    assert train_jobs() == [(1, "queued")]
    with QueueClient() as client:
        assert client.get(1).spec["resume"] is True
    # Already waiting: nothing new.
    assert main(["runs", "resume", "tiny"]) == 0
    assert "job #1 is already queued" in capsys.readouterr().out
    # Paused (as the run's pause pauses its job): that same job goes back to the queue.
    assert main(["queue", "pause", "1"]) == 0
    assert main(["runs", "resume", "tiny"]) == 0
    assert "job #1 queued again" in capsys.readouterr().out
    assert train_jobs() == [(1, "queued")]
    # A second job for the run while the first waits is refused (two workers would train one run)...
    assert main(["train", cfg, "--resume", "--queue"]) == 1
    assert "job #1 (queued) writes there already" in capsys.readouterr().err
    # ...and once it is cancelled, a job submitted the other way for the same run counts too.
    assert main(["queue", "cancel", "1"]) == 0
    assert main(["train", cfg, "--resume", "--queue"]) == 0
    capsys.readouterr()
    assert main(["runs", "resume", "tiny"]) == 0
    assert "job #2 is already queued" in capsys.readouterr().out
    assert [j for j in train_jobs() if j[1] != "cancelled"] == [(2, "queued")]


def test_runs_resume_of_an_unknown_run_lists_the_runs(queue_home, capsys):
    assert main(["runs", "resume", "ghost"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no run named 'ghost'" in err[0]


def test_a_retried_cancelled_job_shows_no_progress_of_the_work_its_cancel_removed(queue_home, tmp_path, capsys):
    """A cancel removes what the job made, so its retry starts again from nothing; a failed job keeps
    its finished units, and its retry shows them."""
    with QueueClient() as client:
        cancelled = client.submit("selftest", {"output": str(tmp_path / "a")})
        failed = client.submit("selftest", {"output": str(tmp_path / "b")})
    with Store() as store:
        for _ in range(2):  # claimed as the daemon claims them, with progress as a worker reports it
            job = store.claim(["cpu:0", "cpu:1"])
            store.update(job.id, job.token, done=3.0, total=5.0, rate=1.0, eta=2.0)
        store.update(cancelled, status="cancelled", finished_at=1.0)
        store.update(failed, status="failed", finished_at=1.0, error="boom")
    assert main(["queue", "retry", str(cancelled)]) == 0
    assert main(["queue", "retry", str(failed)]) == 0
    with QueueClient() as client:
        assert (client.get(cancelled).done, client.get(cancelled).total) == (None, None)
        assert (client.get(failed).done, client.get(failed).total) == (3.0, 5.0)
