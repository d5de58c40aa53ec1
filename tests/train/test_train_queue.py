"""``archivist train --queue``: the run becomes a train job, run by the queue's train kind."""

from __future__ import annotations

import json

import pytest

from archivist_tui.cli import main


@pytest.mark.slow
def test_train_queue_submits_and_the_kind_runs_it(make_config, capsys):
    cfg = make_config()
    assert main(["train", str(cfg), "--queue"]) == 0
    job_id = int(capsys.readouterr().out.strip())
    assert main(["queue", "show", str(job_id), "--json"]) == 0
    job = json.loads(capsys.readouterr().out)
    assert job["kind"] == "train" and job["spec"]["name"]

    # Run the job's kind as a worker would, in-process.
    from pathlib import Path

    from engine.queue.kinds import JobContext, get_kind

    kind = get_kind("train")
    ctx = JobContext(job_id=job_id, device="cpu", work_dir=Path(cfg).parent, progress=lambda d, t=None: None,
                     should_stop=lambda: False)
    assert kind.run(job["spec"], ctx) is True
    assert main(["runs", "show", job["spec"]["name"], "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["status"] == "done"


def test_train_queue_bad_config_refused_at_submit(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnetwork: {num_feat: -3}\n")
    for extra in ([], ["--name", "other"]):  # a run name given too: the config is still checked
        assert main(["train", str(bad), "--queue", *extra]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("archivist: error: ")


def test_a_queued_run_paused_with_runs_pause_pauses_its_job(make_config, capsys):
    """`archivist runs pause` (the TUI's Training screen) on a queued run: the job pauses with it
    instead of being queued again; `runs stop` ends the job. The job's output is the run folder."""
    from pathlib import Path

    from engine.queue.kinds import JobContext, get_kind
    from engine.train.runs import request, run_dir

    cfg = make_config()
    assert main(["train", str(cfg), "--queue"]) == 0
    job_id = int(capsys.readouterr().out.strip())
    assert main(["queue", "show", str(job_id), "--json"]) == 0
    job = json.loads(capsys.readouterr().out)
    name = job["spec"]["name"]
    assert job["output"] == str(run_dir(name, must_exist=False))

    kind = get_kind("train")
    for action, outcome in (("pause", "pause"), ("stop", "cancel")):
        asked = []

        def progress(done, total=None, action=action, asked=asked):
            if not asked:
                asked.append(request(name, action))

        ctx = JobContext(job_id=job_id, device="cpu", work_dir=Path(cfg).parent, progress=progress,
                         should_stop=lambda: False)
        assert kind.run(job["spec"], ctx) == outcome


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archivist: error: "), err
    return err[0]


def test_a_queued_new_run_whose_name_exists_is_refused_at_submit(make_config, capsys):
    """Queued, a new config under a used run name would continue that run with the old settings:
    refused when it is added, in the words the direct command uses."""
    from engine.queue import QueueClient
    from engine.train.runs import run_dir

    cfg = make_config()
    assert main(["train", str(cfg), "--stop-at", "2", "--device", "cpu"]) == 0
    capsys.readouterr()
    before = sorted(p.name for p in run_dir("tiny").rglob("*"))
    assert main(["train", str(cfg), "--queue"]) == 1
    line = _one_error(capsys)
    assert "run 'tiny' exists already" in line and "--resume" in line and "--name" in line
    with QueueClient() as q:
        with pytest.raises(Exception, match="run 'tiny' exists already.*continue it with resume") as caught:
            q.submit("train", {"config": str(cfg)})
        assert "--" not in str(caught.value)
        assert q.list_jobs() == []
        # resuming it, or a name alone, is still queued
        assert q.submit("train", {"name": "tiny", "resume": True})
    assert sorted(p.name for p in run_dir("tiny").rglob("*")) == before


@pytest.mark.parametrize("stop_at", ["0", "-1"])
def test_a_stop_at_before_the_first_iteration_writes_no_run(make_config, capsys, stop_at):
    from engine.train.runs import run_dir

    cfg = make_config()
    assert main(["train", str(cfg), "--name", "nn", "--stop-at", stop_at, "--device", "cpu"]) == 1
    assert _one_error(capsys) == (f"archivist: error: --stop-at {stop_at} invalid: allowed an integer 1 or more "
                                  "(iterations)")
    assert not run_dir("nn", must_exist=False).exists()
    assert main(["train", str(cfg), "--name", "nn", "--stop-at", "1", "--device", "cpu"]) == 0  # the name is free


def test_a_job_that_stops_at_an_iteration_reports_its_own_end_as_the_total(make_config, capsys):
    from pathlib import Path

    from engine.queue.kinds import JobContext, get_kind

    cfg = make_config()
    seen = []
    ctx = JobContext(job_id=1, device="cpu", work_dir=Path(cfg).parent, progress=lambda d, t: seen.append((d, t)),
                     should_stop=lambda: False)
    assert get_kind("train").run({"config": str(cfg), "name": "part", "stop_at": 5}, ctx) is True
    assert seen[-1] == (5, 5) and all(t == 5 for _, t in seen)
