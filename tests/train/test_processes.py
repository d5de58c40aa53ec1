"""Real processes: SIGINT saves a checkpoint and the run resumes; DDP with gloo and 2 processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine.train import run_training
from engine.train.runs import list_checkpoints, read_state, run_dir

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


LONG_RUN = {"train.total_iters": 100000, "train.log_every": 1, "train.checkpoint_every": 100000,
            "train.val_every": 100000}


def _train_until_logged(cfg, name: str, **popen) -> subprocess.Popen:
    """``archivist train`` in its own process, returned once it has logged three iterations."""
    proc = subprocess.Popen([sys.executable, "-m", "archivist_tui.cli", "train", str(cfg), "--name", name],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    metrics = run_dir(name, must_exist=False) / "metrics.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.1)
    if proc.poll() is not None:
        pytest.fail(f"training ended before it was signalled: {proc.communicate()}")
    return proc


@pytest.mark.slow
def test_sigint_checkpoints_exits_cleanly_and_resumes(make_config):
    cfg = make_config(**LONG_RUN)
    proc = _train_until_logged(cfg, "sig")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "interrupted at iteration" in out and "--resume" in out
    ckpts = list_checkpoints(run_dir("sig"))
    assert len(ckpts) == 1 and ckpts[0][0] >= 3
    assert read_state(run_dir("sig"))["status"] == "interrupted"
    stopped = ckpts[0][0]
    result = run_training(cfg, name="sig", resume=True, stop_at=stopped + 2)
    assert result.iteration == stopped + 2 and result.status == "stop_at"


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "timeout-or-systemd"])
def test_a_signal_to_the_whole_process_group_checkpoints_too(make_config, signum):
    """Ctrl-C in a terminal signals the whole foreground process group, and so do ``timeout`` and
    ``systemctl stop``: the loader processes get the signal as well as the trainer. A loader process
    that died of it made the trainer fail with a traceback instead of checkpointing."""
    cfg = make_config(**LONG_RUN, **{"data.workers": 2})
    proc = _train_until_logged(cfg, "group", start_new_session=True)
    try:
        os.killpg(proc.pid, signum)
        out, err = proc.communicate(timeout=60)
        deadline = time.monotonic() + 20  # no loader process outlives the trainer
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            pytest.fail("a loader process was still running 20 s after the trainer exited")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "interrupted at iteration" in out, err
    ckpts = list_checkpoints(run_dir("group"))
    assert len(ckpts) == 1 and ckpts[0][0] >= 3
    assert read_state(run_dir("group"))["status"] == "interrupted"


def _ddp_train(cfg, name: str, **env) -> tuple[int, str]:
    """``archivist -v train`` under torchrun with two CPU ranks: (exit status, stderr).

    A guard against a hang, not a verdict on speed (about 20 s when it works). The whole process
    group goes on every path: killing torchrun alone once left a rank waiting for its peer for an
    hour, and a rank left behind listens on every address in the tests that follow."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "archivist_tui.cli", "-v", "train", str(cfg), "--name", name, "--device", "cpu"]  # -v: a hang shows where
    proc = subprocess.Popen(cmd, env={**_env(), **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"DDP training did not finish in 300 s; its stderr ends:\n{err[-3000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode, err


@pytest.mark.slow
@pytest.mark.timeout(400)  # the helper's own guard (300 s) must fire first: it kills the whole group
def test_ddp_two_processes_with_gloo(make_config):
    cfg = make_config(**{"train.total_iters": 3, "train.log_every": 1, "train.checkpoint_every": 3,
                         "train.val_every": 3, "data.val_count": 1})
    returncode, err = _ddp_train(cfg, "ddp")
    assert returncode == 0, err[-3000:]
    rdir = run_dir("ddp")
    assert [i for i, _ in list_checkpoints(rdir)] == [3]
    assert read_state(rdir)["world_size"] == 2
    lines = [json.loads(x) for x in (rdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines if r["kind"] == "train"] == [1, 2, 3]  # rank 0 alone logs
    ckpt = torch.load(str(list_checkpoints(rdir)[0][1]), weights_only=True)
    assert not any(k.startswith("module.") for k in ckpt["g"])


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_ddp_a_step_one_rank_finds_non_finite_is_skipped_by_every_rank(make_config):
    """A rank that skipped its backward alone left the other waiting in DDP's all-reduce for ever."""
    cfg = make_config(**{"train.total_iters": 4, "train.log_every": 1, "train.checkpoint_every": 4,
                         "train.val_every": 4, "data.val_count": 1})
    returncode, err = _ddp_train(cfg, "ddpnan", ARCHIVIST_TRAIN_FAULT_NAN="2@1")  # rank 1 alone, iteration 2
    assert returncode == 0, err[-3000:]
    assert err.count("iteration 2: non-finite loss_g, step skipped") == 2  # both ranks skipped it
    assert [i for i, _ in list_checkpoints(run_dir("ddpnan"))] == [4]


@pytest.mark.skipif(sys.platform != "linux", reason="fork-based loader processes")
def test_loader_processes_give_the_same_batches(make_config):
    from engine.train import data as tdata
    from engine.train.config import load_config

    cfg = load_config(make_config())
    pairs = tdata.paired_files(cfg.resolve_path(cfg.data.paired))
    ds = tdata.PairBatches(seed=1, rank=0, batch_size=2, patch_size=32, scale=1, flip=True, rot90=True, pairs=pairs)
    inline = [b for b in tdata.make_loader(ds, 0, 4, 0)]
    forked = [b for b in tdata.make_loader(ds, 0, 4, 2)]
    resumed = [b for b in tdata.make_loader(ds, 2, 4, 0)]
    for (a, b), (c, d) in zip(inline, forked):
        assert torch.equal(a, c) and torch.equal(b, d)
    assert torch.equal(inline[2][0], resumed[0][0]) and torch.equal(inline[3][1], resumed[1][1])
