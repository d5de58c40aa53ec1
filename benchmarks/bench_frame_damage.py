"""Training patches damaged at frame scale against patch scale: what a patch costs and what it shows.

    python benchmarks/bench_frame_damage.py [--mix default] [--patches 256] [--reps 7] [--big]

- **cost**: milliseconds to make one on-the-fly 128² training sample (crop, flips, damage) from
  384² frames (and from 1920×1080 frames with ``--big``), one process, one OpenCV thread, for
  ``data.damage_scale: patch`` (v1) and ``frame``: the fastest of ``--reps`` interleaved
  repetitions (the least disturbed by other work on a shared machine) and their median.
- **what it changes**: for each frame-scale effect alone (its ``heavy`` settings, always on) on
  flat mid-grey 384² frames, over ``--patches`` patches: the share of patches it touches, the mean
  spread of its light change inside one patch (95th − 5th percentile of LQ/GT), and the mean
  |LQ − GT|; then the mean PSNR of damaged against clean patches of the whole mix on generated
  cel and photographic frames.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.degrade import load_profile  # noqa: E402
from engine.quality import psnr  # noqa: E402
from engine.synth.frames import make_frame  # noqa: E402
from engine.train import data as tdata  # noqa: E402

SCALES = ("patch", "frame")
EFFECTS = ("vignette", "flicker", "stains", "crease", "scratches")


def write(folder: Path, frames: dict[str, np.ndarray]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rgb in frames.items():
        cv2.imwrite(str(folder / name), rgb[:, :, ::-1])
    return sorted(folder.iterdir())


def batches(frames: list[Path], degrader: tdata.Degrader, scale: str, patch: int = 128) -> tdata.PairBatches:
    return tdata.PairBatches(seed=0, rank=0, batch_size=1, patch_size=patch, scale=1, flip=True, rot90=True,
                             clean=frames, degrader=degrader, damage_scale=scale)


def cost(frames: list[Path], degrader: tdata.Degrader, reps: int, samples: int = 96) -> dict[str, tuple[float, float]]:
    sets = {s: batches(frames, degrader, s) for s in SCALES}
    for ds in sets.values():
        for i in range(len(frames) * 2):  # read every frame once, warm the caches
            ds.sample(10**6, i)
    times: dict[str, list[float]] = {s: [] for s in SCALES}
    for rep in range(reps):
        for s, ds in sets.items():
            t = time.perf_counter()
            for i in range(samples):
                ds.sample(rep, i)
            times[s].append((time.perf_counter() - t) / samples * 1000)
    return {s: (float(np.min(v)), float(np.median(v))) for s, v in times.items()}


def say_cost(what: str, c: dict[str, tuple[float, float]]) -> None:
    (pmin, pmed), (fmin, fmed) = c["patch"], c["frame"]
    print(f"cost per 128² sample, {what}: patch scale {pmin:.2f} ms (median {pmed:.2f}), frame scale {fmin:.2f} ms "
          f"(median {fmed:.2f}): {fmin / pmin:.2f}×")


def one_effect(name: str, folder: Path) -> tdata.Degrader:
    settings = dict(load_profile("heavy").effects[name].values)
    if name == "stains":
        settings.update(large=1.0, speckle=0.0)  # the large, frame-scale stains alone
    if name == "scratches":
        settings.update(hair_count=[0, 0])  # long scratches alone
    doc = {"name": f"only-{name}", "effects": {name: {"enabled": True, "probability": 1.0, **settings}}}
    path = folder / f"only-{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return tdata.Degrader.load(str(path))


def what_it_changes(root: Path, patches: int) -> None:
    flat = write(root / "flat", {"grey.png": np.full((384, 384, 3), 128, np.uint8)})
    print(f"\nEach frame-scale effect alone (heavy's settings, always on), {patches} patches of 128² from a "
          "flat grey 384² frame:")
    print(f"  {'effect':10s} {'scale':6s} {'patches touched':>16s} {'spread in a patch':>18s} {'mean |LQ-GT|':>13s}")
    for name in EFFECTS:
        degrader = one_effect(name, root)
        for s in SCALES:
            ds = batches(flat, degrader, s)
            touched, spread, diff = 0, [], []
            for i in range(patches):
                lq, gt = ds.sample(0, i)
                ratio = lq[..., 1] / gt[..., 1]
                touched += bool(np.abs(lq - gt).max() > 0.01)
                spread.append(np.percentile(ratio, 95) - np.percentile(ratio, 5))
                diff.append(np.abs(lq - gt).mean())
            print(f"  {name:10s} {s:6s} {touched / patches:16.0%} {np.mean(spread):18.3f} {np.mean(diff):13.4f}")


def mix_psnr(frames: list[Path], degrader: tdata.Degrader, patches: int) -> dict[str, float]:
    out = {}
    for s in SCALES:
        ds = batches(frames, degrader, s)
        values = []
        for i in range(patches):
            lq, gt = ds.sample(1, i)
            values.append(psnr(lq, gt))
        out[s] = float(np.mean(values))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mix", default="default", help="mix or profile for the cost and the PSNR (name or YAML)")
    ap.add_argument("--patches", type=int, default=256)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--big", action="store_true", help="also measure the cost on 1920×1080 frames")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    degrader = tdata.Degrader.load(args.mix)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generated = write(root / "frames", {f"{k}_{i}.png": make_frame(k, 20_000 + i, 384)
                                            for i, k in enumerate(["cel", "photo", "bwphoto", "cel", "photo", "bwcel"])})
        say_cost(f"mix {args.mix}, 384² frames", cost(generated, degrader, args.reps))
        if args.big:
            big = write(root / "big", {f"b{i}.png": cv2.resize(make_frame("photo", 21_000 + i, 540), (1920, 1080))
                                       for i in range(2)})
            say_cost(f"mix {args.mix}, 1920×1080 frames", cost(big, degrader, args.reps))
        what_it_changes(root, args.patches)
        p = mix_psnr(generated, degrader, args.patches)
        print(f"\nMix {args.mix}, {args.patches} patches from generated cel and photo frames: mean PSNR of the damaged "
              f"patch {p['patch']:.2f} dB at patch scale, {p['frame']:.2f} dB at frame scale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
