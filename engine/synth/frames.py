"""Write a folder of procedural cel frames: the clean half of the starter model's training data.

    python -m engine.synth.frames OUT --count 600 --size 384 --seed 8000

Frame ``i`` is ``cel_frame(seed + i, size, size, t)`` with ``t`` drawn from the same seed, so a
folder is reproduced exactly from (seed, count, size). Frames already present are kept, so an
interrupted run continues where it stopped. PNG files are written under a temporary name and
renamed, so a frame that exists is complete.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from engine.synth.cel import cel_frame


def frame_name(index: int) -> str:
    return f"cel_{index:05d}.png"


def write_frames(out: str | Path, count: int, size: int = 384, seed: int = 8000) -> list[Path]:
    """Write ``count`` square frames of side ``size`` into ``out``; returns their paths."""
    import cv2

    if count < 1 or size < 32:
        raise ValueError(f"count must be at least 1 and size at least 32 (got {count}, {size})")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / frame_name(i)
        paths.append(path)
        if path.exists():
            continue
        t = float(np.random.default_rng([seed + i, 0x7]).uniform(0.0, 8.0))
        rgb = cel_frame(seed + i, size, size, t)
        tmp = path.with_name(f".{path.name}.part.png")
        if not cv2.imwrite(str(tmp), rgb[:, :, ::-1]):
            raise OSError(f"{tmp}: cannot write a PNG here")
        os.replace(tmp, path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.synth.frames", description=__doc__.split("\n")[0])
    parser.add_argument("out", help="folder to write cel_NNNNN.png into")
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--seed", type=int, default=8000)
    args = parser.parse_args(argv)
    try:
        paths = write_frames(args.out, args.count, args.size, args.seed)
    except ValueError as exc:
        print(f"archivist: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = exc.filename or args.out
        print(f"archivist: error: {where}: cannot write frames here: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{len(paths)} frames in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
