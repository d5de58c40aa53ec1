"""A checkpoint write killed with SIGKILL leaves ``checkpoints/.iter_*.part``: the next run of the
same run removes it, and never one whose writer is still alive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from engine.train import run_training
from engine.train.runs import checkpoint_path, list_checkpoints, run_dir

# Writes a checkpoint the way the trainer does (engine.atomic.atomic_write), then hangs in
# the middle of it until killed.
HANG_IN_WRITE = """
import sys, time
from pathlib import Path
from engine.atomic import atomic_write

def write(tmp):
    Path(tmp).write_bytes(b"half a checkpoint")
    print(tmp, flush=True)
    time.sleep(120)

atomic_write(Path(sys.argv[1]), write)
"""


def _start_hanging_writer(path):
    proc = subprocess.Popen([sys.executable, "-c", HANG_IN_WRITE, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    partial = proc.stdout.readline().strip()  # printed once the partial file holds data: the writer is mid-write
    assert partial, "the writer printed nothing"
    return proc, partial


@pytest.mark.slow
def test_a_killed_checkpoint_write_is_cleared_by_the_next_run(make_config):
    cfg = make_config(**{"train.total_iters": 10, "train.checkpoint_every": 10, "train.val_every": 10})
    assert run_training(cfg).status == "done"
    rdir = run_dir("tiny")
    killed, killed_partial = _start_hanging_writer(checkpoint_path(rdir, 20))
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    live, live_partial = _start_hanging_writer(checkpoint_path(rdir, 30))
    try:
        leftovers = sorted(p.name for p in (rdir / "checkpoints").glob(".iter_*.part"))
        assert len(leftovers) == 2 and os.path.basename(killed_partial) in leftovers
        longer = make_config("longer.yaml", **{"train.total_iters": 20, "train.checkpoint_every": 10,
                                               "train.val_every": 10})
        result = run_training(longer, resume=True)
        assert result.status == "done"
        assert not os.path.exists(killed_partial)
        assert os.path.exists(live_partial)  # its writer is alive: not this run's to remove
        assert [i for i, _ in list_checkpoints(rdir)] == [10, 20]
    finally:
        live.kill()
        live.wait()
