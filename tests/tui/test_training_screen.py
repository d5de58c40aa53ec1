"""3 Training against real run folders: metrics lines, previews, checkpoints, read incrementally."""

from __future__ import annotations

import json
import os

import pytest
from textual.widgets import OptionList, Static

from tests.tui.conftest import make_app, wait_for


def write_run(home, name: str, iterations: range, status: str = "running", pid: int | None = None):
    rdir = home / "runs" / name
    (rdir / "previews").mkdir(parents=True)
    (rdir / "checkpoints").mkdir()
    (rdir / "config.yaml").write_text(f"name: {name}\ntrain:\n  total_iters: 1000\n")
    (rdir / "run.json").write_text(json.dumps({"status": status, "iteration": iterations[-1],
                                               "pid": pid or os.getpid()}))
    append_metrics(rdir, iterations)
    return rdir


def append_metrics(rdir, iterations: range):
    with open(rdir / "metrics.jsonl", "a") as f:
        for it in iterations:
            f.write(json.dumps({"kind": "train", "iteration": it, "l_pix": 1 / (1 + it), "l_percep": 0.5 / (1 + it),
                                "l_g_gan": 0.1, "p_d_real": 0.7, "p_d_fake": 0.3, "lr_g": 1e-4, "it_per_s": 10.0,
                                "data_wait": 0.03, "cpu_mem_mb": 2048.0}) + "\n")
            if it % 50 == 0:
                f.write(json.dumps({"kind": "val", "iteration": it, "psnr": 20 + it / 100, "ssim": 0.8}) + "\n")


async def test_training_screen_follows_a_run(archivist_home, png):
    from archivist_tui.widgets.chart import Chart
    from archivist_tui.widgets.image import InlineImage

    rdir = write_run(archivist_home, "antilines-ft", range(10, 210, 10))
    preview = png("p.png")
    preview.rename(rdir / "previews" / "iter_000000200.png")
    (rdir / "checkpoints" / "iter_000000200.pt").write_bytes(b"")
    write_run(archivist_home, "old-run", range(10, 60, 10), status="done")
    os.utime(archivist_home / "runs" / "old-run", (1, 1))

    app = make_app(start="training")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        summary = screen.query_one("#training-summary", Static)
        await wait_for(pilot, lambda: "iter 200 / 1000" in str(summary.render()), what="summary")
        text = str(summary.render())
        assert "10.0 it/s" in text and "ETA 0:01:20" in text and "data wait 3 %" in text
        resources = str(screen.query_one("#training-resources", Static).render())
        assert "PSNR 22.00" in resources and "ckpts 200" in resources and "lr 1.0e-04" in resources
        losses = screen.query_one("#chart-losses", Chart)
        assert set(losses.series) == {"l_pix", "l_percep", "l_g_gan"}
        assert screen.query_one(InlineImage).path.name == "iter_000000200.png"
        options = screen.query_one(OptionList)
        assert [options.get_option_at_index(i).prompt for i in range(options.option_count)] == \
            ["antilines-ft ●", "old-run ✓"]

        # new lines arrive: only they are read, the curves and the summary follow
        append_metrics(rdir, range(210, 310, 10))
        await wait_for(pilot, lambda: "iter 300 / 1000" in str(summary.render()), what="new metrics")
        assert losses.series["l_pix"][0][-1] == 300

        # the other run
        options.highlighted = 1
        await wait_for(pilot, lambda: "old-run  done" in str(summary.render()), what="second run")


def test_metrics_tail_reads_only_complete_new_lines(tmp_path):
    from engine.train.metrics import MetricsTail

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"iteration": 1}\n{"iteration": 2}\n{"itera')
    tail = MetricsTail(path)
    assert [r["iteration"] for r in tail.read()] == [1, 2]
    with open(path, "a") as f:
        f.write('tion": 3}\n')
    assert [r["iteration"] for r in tail.read()] == [1, 2, 3]


@pytest.mark.slow
async def test_pause_request_reaches_the_run(archivist_home):
    rdir = write_run(archivist_home, "r1", range(10, 30, 10))
    app = make_app(start="training")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.screen.selected is not None)
        await pilot.press("p")
        await wait_for(pilot, lambda: (rdir / "control").exists(), what="control file")


async def test_psnr_and_ssim_have_their_own_axes(archivist_home):
    from archivist_tui.widgets.chart import Chart

    rdir = write_run(archivist_home, "r1", range(10, 20, 10))
    with open(rdir / "metrics.jsonl", "a") as f:
        for i in range(1, 11):
            f.write(json.dumps({"kind": "val", "iteration": 100 * i, "psnr": 20 + i / 5, "ssim": 0.8 + i / 100}) + "\n")
    app = make_app(start="training")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        psnr = screen.query_one("#chart-psnr", Chart)
        ssim = screen.query_one("#chart-ssim", Chart)
        await wait_for(pilot, lambda: psnr.series and ssim.series, what="validation curves")
        assert set(psnr.series) == {"psnr"} and set(ssim.series) == {"ssim"}

        # Each axis spans its own values: PSNR's ticks are in dB (20-22), SSIM's 0.8-0.9.
        def ticks(chart) -> list[float]:
            import re

            return [float(m.group(1)) for m in re.finditer(r"^\s*(-?[\d.]+)\s*┤", chart.render().plain, re.M)]

        await wait_for(pilot, lambda: ticks(psnr) and ticks(ssim), what="both charts drawn with their axes")
        assert ticks(psnr) and min(ticks(psnr)) >= 19.5 and max(ticks(psnr)) <= 22.5, ticks(psnr)
        assert ticks(ssim) and 0.75 <= min(ticks(ssim)) and max(ticks(ssim)) <= 0.95, ticks(ssim)


@pytest.mark.slow
async def test_r_on_a_paused_run_resumes_its_job_not_a_second_one(queue_daemon, tmp_path):
    """A run trained by the queue, paused from the Training screen: r queues that same job again."""
    import yaml

    from archivist_tui.cli import main
    from engine.queue.client import QueueClient
    from tests.train.trainkit import tiny_config, write_pairs

    write_pairs(tmp_path / "pairs")
    cfg = tmp_path / "cfg.yaml"
    # Long enough that it is still training when paused; log often so the screen sees it move.
    cfg.write_text(yaml.safe_dump(tiny_config(**{"train.total_iters": 100000, "train.log_every": 1,
                                                 "train.val_every": 100000, "train.checkpoint_every": 100000})))
    with QueueClient() as client:
        job = client.submit("train", {"config": str(cfg)})
    assert main(["daemon", "start"]) == 0

    def jobs():
        with QueueClient() as client:
            return [(j.id, j.status) for j in client.list_jobs()]

    app = make_app(start="training")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        summary = screen.query_one("#training-summary", Static)
        await wait_for(pilot, lambda: "tiny  running" in str(summary.render()), timeout=120, what="run running")
        await pilot.press("p")
        await wait_for(pilot, lambda: jobs() == [(job, "paused")], timeout=120, what="its job paused")
        await wait_for(pilot, lambda: "tiny  paused" in str(summary.render()), what="run paused")
        await pilot.press("r")
        await wait_for(pilot, lambda: jobs()[0][1] in ("queued", "running"), timeout=60, what="the job resumed")
        assert len(jobs()) == 1, jobs()
        await wait_for(pilot, lambda: any(f"job {job} queued again" in str(n.message) for n in app._notifications),
                       what="the message")
        await wait_for(pilot, lambda: "tiny  running" in str(summary.render()), timeout=120, what="running again")
        # r again while it runs: still one job.
        await pilot.press("r")
        await wait_for(pilot, lambda: any("already running" in str(n.message) for n in app._notifications),
                       what="already running")
        assert len(jobs()) == 1, jobs()
        await pilot.press("x")
        await wait_for(pilot, lambda: jobs()[0][1] == "cancelled", timeout=120, what="stopped")
