"""Write a folder of procedural frames: the clean half of the starter models' training data.

    python -m engine.synth.frames OUT --count 600 --size 384 --seed 8000 [--kind cel|photo|mixed]

``--kind cel`` (the default) writes cel frames: frame ``i`` is ``cel_frame(seed + i, size, size,
t)`` with ``t`` drawn from the same seed, as archivist-starter v1 was trained on. ``photo`` writes
photographic frames (``photo_frame(seed + i, size, size)``, dead leaves). ``mixed`` draws each
frame's kind from its seed: colour cels, colour photographs, and black-and-white ones of both
(R = G = B), in the shares of :data:`MIXED`, named by index and kind (``mixed_00012_bwphoto.png``;
kinds ``cel``, ``photo``, ``bwcel``, ``bwphoto``). A folder is reproduced exactly from (kind,
seed, count, size).

Seeds from :data:`engine.synth.EVALUATION_SEEDS` are kept for the evaluation (``engine.evaluate``)
and refused here: data that evaluates never trains. Frames already present are kept, so an
interrupted run continues where it stopped. PNG files are written under a temporary name and
renamed, so a frame that exists is complete.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from engine.errors import ArchivistError
from engine.synth.cel import cel_frame
from engine.synth.photo import photo_frame
from engine.synth.seeds import EVALUATION_SEEDS

KINDS = ("cel", "photo", "mixed")
# The kinds of a mixed folder and their shares: live action and cartoons, colour and black-and-white.
MIXED = {"cel": 0.35, "photo": 0.40, "bwphoto": 0.15, "bwcel": 0.10}


def frame_kind(kind: str, seed: int) -> str:
    """What frame ``seed`` of a folder of ``kind`` is: cel, photo, bwcel or bwphoto."""
    if kind != "mixed":
        return kind
    u = float(np.random.default_rng([seed, 0x31C]).random())
    for name, share in MIXED.items():
        if u < share:
            return name
        u -= share
    return name


def make_frame(kind: str, seed: int, size: int) -> np.ndarray:
    """The frame of one kind (cel, photo, bwcel, bwphoto) for ``seed``: H×W×3 uint8 RGB."""
    if kind in ("cel", "bwcel"):
        t = float(np.random.default_rng([seed, 0x7]).uniform(0.0, 8.0))
        rgb = cel_frame(seed, size, size, t)
        if kind == "bwcel":
            import cv2

            rgb = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        return rgb
    return photo_frame(seed, size, size, gray=kind == "bwphoto")


def frame_name(index: int, kind: str = "cel", folder_kind: str | None = None) -> str:
    """``cel_00012.png``; in a mixed folder ``mixed_00012_bwphoto.png`` (sorted by index, so the
    frames a trainer holds out for validation, the last by name, are a mix too)."""
    if (folder_kind or kind) == "mixed":
        return f"mixed_{index:05d}_{kind}.png"
    return f"{kind}_{index:05d}.png"


def check_training_seeds(seed: int, count: int) -> None:
    """Refuse frame seeds that the evaluation keeps for itself."""
    first, last = seed, seed + count - 1
    if first <= EVALUATION_SEEDS.stop - 1 and last >= EVALUATION_SEEDS.start:
        raise ValueError(f"seeds {first}..{last} overlap {EVALUATION_SEEDS.start}..{EVALUATION_SEEDS.stop - 1}, "
                         "which the evaluation keeps (engine.evaluate); choose another --seed")


def write_frames(out: str | Path, count: int, size: int = 384, seed: int = 8000, kind: str = "cel") -> list[Path]:
    """Write ``count`` square frames of side ``size`` into ``out``; returns their paths."""
    if count < 1 or size < 32:
        raise ValueError(f"count must be at least 1 and size at least 32 (got {count}, {size})")
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not allowed; allowed: {', '.join(KINDS)}")
    if seed < 0:
        raise ValueError(f"seed must be 0 or more (got {seed})")
    check_training_seeds(seed, count)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        this = frame_kind(kind, seed + i)
        path = folder / frame_name(i, this, kind)
        paths.append(path)
        if path.exists():
            continue
        _write_png(path, np.ascontiguousarray(make_frame(this, seed + i, size)[:, :, ::-1]))
    return paths


def _write_png(path: Path, bgr: np.ndarray) -> None:
    """Write a frame whole or not at all (a killed run leaves no half PNG that a rerun would keep)."""
    from engine.atomic import atomic_write
    from engine.imagefiles import write_image  # any folder name: cv2.imwrite crashes on non-UTF-8

    def write(tmp: Path) -> None:
        if not write_image(tmp, bgr, suffix=".png"):
            raise ArchivistError(f"{path}: OpenCV cannot encode this frame as PNG")

    atomic_write(path, write)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.synth.frames", description=__doc__.split("\n")[0])
    parser.add_argument("out", help="folder to write the frames into (KIND_NNNNN.png)")
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--seed", type=int, default=8000, help="seed of frame 0 (frame i: seed + i)")
    parser.add_argument("--kind", default="cel", help="cel (default), photo or mixed")
    args = parser.parse_args(argv)
    try:
        paths = write_frames(args.out, args.count, args.size, args.seed, args.kind)
    except (ValueError, ArchivistError) as exc:
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
