"""Helpers for the trainer tests: tiny paired datasets and configs (nf 8, nc 2, 32 px, batch 2)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_pairs(root: Path, count: int = 4, size: int = 48, noise: float = 4.0) -> Path:
    """A paired dataset (gt/ + lq/, same names): stripes and checks; LQ faded (a tone curve) and noisy."""
    rng = np.random.default_rng(0)
    (root / "gt").mkdir(parents=True, exist_ok=True)
    (root / "lq").mkdir(exist_ok=True)
    y, x = np.mgrid[0:size, 0:size]
    for i in range(count):
        gt = np.stack([(x * 3 + i * 20) % 256, (y * 5) % 256, ((x // 6 + y // 6) % 2) * 200], -1).astype(np.uint8)
        lq = np.clip(gt.astype(np.float32) * 0.6 + 40 + rng.normal(0, noise, gt.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "gt" / f"f{i}.png"), gt)
        cv2.imwrite(str(root / "lq" / f"f{i}.png"), lq)
    return root


def tiny_config(**overrides) -> dict:
    """A pixel-only config document over ``pairs/`` (relative to the config file)."""
    doc = {
        "name": "tiny",
        "seed": 0,
        "network": {"num_feat": 8, "num_conv": 2},
        "data": {"paired": "pairs", "patch_size": 32, "batch_size": 2, "workers": 0, "val_count": 1,
                 "val_size": 48},
        "losses": {"perceptual": {"weight": 0}, "gan": {"weight": 0}},
        "optim": {"g": {"lr": 2.0e-3}},
        "ema": {"decay": 0.5},
        "train": {"total_iters": 20, "log_every": 5, "val_every": 10, "checkpoint_every": 10,
                  "keep_checkpoints": 3},
    }
    for key, value in overrides.items():
        node = doc
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return doc


