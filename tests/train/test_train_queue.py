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
