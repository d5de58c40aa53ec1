"""Training speed: iterations/s and the fraction of step time spent waiting for data.

    python benchmarks/bench_train.py [--device cpu|cuda] [--iters 8] [--gan] [--workers auto]
                                     [--mix default] [--damage-scale frame|patch]

Runs the real trainer (``engine.train.run_training``) on a 48nf16nc Compact at batch 8 × 128²
with clean frames degraded on the fly by the degrader (mix ``default``), in a temporary
ARCHIVIST_HOME, and reads ``it_per_s`` and ``data_wait`` from the run's ``metrics.jsonl``
(the first iterations, start-up and warm-up, are left out). On CUDA it also compares fp32 with
bf16 + channels_last. ``--damage-scale`` chooses how patches are damaged (``frame``, the default:
windows of frames damaged whole; ``patch``: as archivist-starter v1 was trained).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.train import config_from_dict, run_training  # noqa: E402


def make_frames(folder: Path, count: int = 12, size: int = 384) -> None:
    """Synthetic 'cel' frames: flat colour regions with dark outlines and a gradient background."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    for i in range(count):
        img = np.stack([x / size * 200 + 30, y / size * 180 + 40, np.full_like(x, 120.0)], -1)
        for _ in range(6):
            cx, cy, r = rng.integers(0, size, 2).tolist() + [int(rng.integers(20, 80))]
            colour = rng.integers(0, 255, 3).tolist()
            cv2.circle(img, (cx, cy), r, colour, -1)
            cv2.circle(img, (cx, cy), r, (10, 10, 10), 3)
        cv2.imwrite(str(folder / f"frame{i:03d}.png"), img.clip(0, 255).astype(np.uint8))


def bench(root: Path, name: str, device: str, precision: str, channels_last: bool, iters: int, gan: bool,
          workers: str | int, batch: int, patch: int, mix: str = "default", damage_scale: str = "frame") -> dict:
    doc = {
        "name": name, "device": device, "precision": precision, "channels_last": channels_last,
        "network": {"num_feat": 48, "num_conv": 16},
        "data": {"clean": [str(root / "frames")], "mix": mix, "patch_size": patch, "batch_size": batch,
                 "workers": workers, "val_count": 1, "val_size": 128, "damage_scale": damage_scale},
        "losses": {"perceptual": {"weight": 0}, "gan": {"weight": 0.1 if gan else 0, "d_num_feat": 64}},
        "train": {"total_iters": iters, "log_every": max(iters // 2, 1), "val_every": 10**6,
                  "checkpoint_every": 10**6},
    }
    t0 = time.perf_counter()
    run_training(config_from_dict(doc, base_dir=root))
    wall = time.perf_counter() - t0
    lines = [json.loads(x) for x in (root / "home" / "runs" / name / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in lines if r["kind"] == "train"][-1]  # the second half of the run
    return {"name": name, "it_per_s": last["it_per_s"], "data_wait": last["data_wait"],
            "gpu_mem_mb": last.get("gpu_mem_mb"), "wall_s": wall}


def bench_data(root: Path, batch: int, patch: int, reps: int = 5, mix: str = "default",
               damage_scale: str = "frame") -> float:
    """Seconds to make one batch (read, crop, augment, degrade) in one process."""
    from engine.train import data as tdata

    frames = tdata.list_images(root / "frames", "frames")
    ds = tdata.PairBatches(seed=0, rank=0, batch_size=batch, patch_size=patch, scale=1, flip=True, rot90=True,
                           clean=frames, degrader=tdata.Degrader.load(mix), damage_scale=damage_scale)
    ds[0]  # warm the image cache
    t = time.perf_counter()
    for i in range(1, reps + 1):
        ds[i]
    return (time.perf_counter() - t) / reps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--iters", type=int, default=8)
    ap.add_argument("--gan", action="store_true", help="with the UNet discriminator (GAN stage)")
    ap.add_argument("--workers", default="auto")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--mix", default="default", help="degradation mix or profile (name or YAML path)")
    ap.add_argument("--damage-scale", default="frame", choices=("frame", "patch"))
    args = ap.parse_args()
    mix = str(Path(args.mix).resolve()) if args.mix.endswith((".yaml", ".yml")) else args.mix
    workers = args.workers if args.workers == "auto" else int(args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["ARCHIVIST_HOME"] = str(root / "home")
        make_frames(root / "frames")
        per_batch = bench_data(root, args.batch, args.patch, mix=mix, damage_scale=args.damage_scale)
        print(f"data: {per_batch:.3f} s per batch of {args.batch} × {args.patch}² (read, crop, flip/rot, degrade "
              f"at {args.damage_scale} scale) in one process")
        variants = [("fp32", "fp32", False)]
        if args.device.startswith("cuda"):
            variants += [("bf16-cl", "bf16", True), ("fp16-cl", "fp16", True)]
        print(f"Compact 48nf16nc, batch {args.batch} × {args.patch}², on-the-fly mix {args.mix!r}, "
              f"{'GAN' if args.gan else 'pixel-only'}, device {args.device}, workers {args.workers}")
        for label, precision, cl in variants:
            r = bench(root, label, args.device, precision, cl, args.iters, args.gan, workers, args.batch, args.patch,
                      mix, args.damage_scale)
            mem = f", GPU mem {r['gpu_mem_mb']:.0f} MB" if r["gpu_mem_mb"] else ""
            print(f"  {label:8s} {r['it_per_s']:7.2f} it/s  data wait {r['data_wait'] * 100:5.1f} %{mem}"
                  f"  (run {r['wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
