"""engine.train.checkpoint on its own: random states survive a weights-only round trip, the last N
are kept, and only whole, finite checkpoints of this format are resumed."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from engine.errors import ArchivistError
from engine.train import checkpoint
from engine.train.runs import checkpoint_path, list_checkpoints


def _draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_random_states_round_trip_through_a_weights_only_file(tmp_path):
    checkpoint.seed_rngs(7)
    _draws()
    path = tmp_path / "rng.pt"
    torch.save({"rng": checkpoint.rng_state()}, path)
    expected = [_draws() for _ in range(3)]
    checkpoint.seed_rngs(99)  # anything else
    checkpoint.set_rng_state(torch.load(path, weights_only=True)["rng"])
    assert [_draws() for _ in range(3)] == expected


def _parts(value: float) -> dict:
    net = torch.nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.fill_(value)
    return {"g": net, "opt_g": torch.optim.Adam(net.parameters())}


def test_save_load_restore_and_prune(tmp_path):
    for it in (1, 2, 3):
        checkpoint.save_checkpoint(tmp_path, it, {"num_feat": 8}, _parts(float(it)), {"d_skipped": it})
        checkpoint.prune_checkpoints(tmp_path, keep=2)
    assert [i for i, _ in list_checkpoints(tmp_path)] == [2, 3]
    path, ckpt = checkpoint.load_latest(tmp_path)
    assert path == checkpoint_path(tmp_path, 3)
    assert ckpt["format"] == checkpoint.CHECKPOINT_FORMAT and ckpt["iteration"] == ckpt["data_position"] == 3
    assert ckpt["d_skipped"] == 3 and ckpt["network"] == {"num_feat": 8}
    parts = _parts(0.0)
    checkpoint.restore(ckpt, parts)
    assert torch.equal(parts["g"].weight, torch.full((2, 2), 3.0))


def test_non_finite_weights_are_never_written_nor_resumed(tmp_path):
    with pytest.raises(checkpoint.NonFiniteWeights, match="iteration 5: g weight weight holds non-finite"):
        checkpoint.save_checkpoint(tmp_path, 5, {}, _parts(float("nan")))
    assert not list(tmp_path.rglob("*"))
    bad = _parts(1.0)["g"].state_dict()
    bad["weight"][0, 0] = float("inf")
    path = checkpoint_path(tmp_path, 6)
    path.parent.mkdir()
    torch.save({"format": checkpoint.CHECKPOINT_FORMAT, "g": bad}, path)
    with pytest.raises(ArchivistError, match="g weight weight holds non-finite values .* remove it"):
        checkpoint.load_latest(tmp_path)
    torch.save({"format": "something else"}, path)
    with pytest.raises(ArchivistError, match="not an Archivist training checkpoint"):
        checkpoint.load_latest(tmp_path)
    path.write_bytes(b"half a file")
    with pytest.raises(ArchivistError, match="unreadable checkpoint"):
        checkpoint.load_latest(tmp_path)
