"""GPU slots (runs only where CUDA is present): one slot per GPU, the worker sees only its own GPU."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.queue import QueueClient, Store
from engine.queue.config import load_config
from engine.queue.daemon import start_daemon


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.mark.skipif(_cuda_count() == 0, reason="needs a CUDA GPU")
def test_restore_on_a_gpu_slot(queue_home, tmp_path, tiny_compact, configure, monkeypatch, wait_for):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    configure(gpus="auto", cpu_slots=0)
    assert load_config().slots == [f"cuda:{i}" for i in range(_cuda_count())]
    model, _ = tiny_compact
    src = tmp_path / "reel"
    src.mkdir()
    rng = np.random.default_rng(5)
    for i in range(3):
        cv2.imwrite(str(src / f"f{i}.png"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    last = f"cuda:{_cuda_count() - 1}"
    with QueueClient() as q:
        jid = q.submit("restore", {"input": str(src), "output": str(tmp_path / "out") + "/", "models": [str(model)],
                                   "precision": "fp32"}, device=last)
    start_daemon()
    wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=120, what="GPU job ended")
    job = Store().get(jid)
    assert job.status == "done", job.error
    log = open(job.log_path).read()
    assert f"started on {last} (device cuda:0)" in "\n".join(e.message for e in Store().events(jid))
    assert "on cuda:0" in log
    assert len(list((tmp_path / "out").iterdir())) == 3
