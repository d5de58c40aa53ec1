"""Pictures and timings the TUI shows, made in a child process (``python -m archivist_tui.render``).

The TUI process never imports torch: it starts this module with ``subprocess`` and shows the PNG
it writes. Tasks:

- ``sample OUT.png [--seed N] [--size WxH]``: a clean procedural cel frame;
- ``preview OUT.png -m MODEL[:s[:σ]] ... [--frame IMG]``: before/after (split) of a chain;
- ``speed -m MODEL ... [--size 128]``: frames per second of a chain on the current device;
- ``degrade CLEAN.png DAMAGED.png --profile FILE.yaml --seed N [--frame IMG]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _write_png(out: Path, rgb) -> None:
    import cv2

    from engine.imagefiles import write_image  # any name: cv2.imwrite crashes on one that is not UTF-8

    tmp = out.with_name(f".{out.name}.part.png")
    if not write_image(tmp, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"cannot write {out}")
    tmp.replace(out)


def _read_rgb(path: Path):
    import cv2

    from engine.imagefiles import read_image

    img = read_image(path, cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"archivist: error: {path}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _frame(frame: str | None, seed: int = 7):
    from engine.synth.cel import cel_frame

    if frame:
        return _read_rgb(Path(frame))
    return cel_frame(seed, 256, 192)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="archivist_tui.render")
    sub = p.add_subparsers(dest="task", required=True)
    q = sub.add_parser("sample")
    q.add_argument("out")
    q.add_argument("--seed", type=int, default=7)
    q = sub.add_parser("preview")
    q.add_argument("out")
    q.add_argument("-m", "--model", action="append", required=True)
    q.add_argument("--frame")
    q = sub.add_parser("speed")
    q.add_argument("-m", "--model", action="append", required=True)
    q.add_argument("--size", type=int, default=128)
    q.add_argument("--seconds", type=float, default=1.0)
    q = sub.add_parser("degrade")
    q.add_argument("clean")
    q.add_argument("damaged")
    q.add_argument("--profile", required=True)
    q.add_argument("--seed", type=int, default=1234)
    q.add_argument("--frame")
    args = p.parse_args(argv)

    from engine.errors import ArchivistError

    try:
        if args.task == "sample":
            _write_png(Path(args.out), _frame(None, args.seed))
        elif args.task == "preview":
            import numpy as np

            from engine.inference.chain import Chain, parse_stage

            img = _frame(args.frame)
            chain = Chain.load([parse_stage(m) for m in args.model], device="auto", precision="auto")
            out = chain.run(img)
            if out.shape[:2] != img.shape[:2]:
                import cv2

                img = cv2.resize(img, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_NEAREST)
            w = img.shape[1]
            split = np.concatenate([img[:, : w // 2], out[:, w // 2:]], axis=1)
            split[:, w // 2 - 1: w // 2 + 1] = 255
            _write_png(Path(args.out), split)
        elif args.task == "speed":
            import time

            import numpy as np

            from engine.inference.chain import Chain, parse_stage

            chain = Chain.load([parse_stage(m) for m in args.model], device="auto", precision="auto")
            img = np.random.default_rng(0).integers(0, 255, (args.size, args.size, 3), dtype=np.uint8)
            chain.run(img)  # warm-up
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < args.seconds or n < 2:
                chain.run(img)
                n += 1
            dt = time.perf_counter() - t0
            print(json.dumps({"fps": n / dt, "frames": n, "size": args.size, "device": str(chain.device),
                              "chain": chain.describe()}))
        elif args.task == "degrade":
            from engine.degrade import degrade, load_profile

            img = _frame(args.frame)
            profile = load_profile(args.profile)
            lq, record = degrade(img, profile, args.seed)
            _write_png(Path(args.clean), img)
            _write_png(Path(args.damaged), lq)
            print(json.dumps(record, default=str))
    except ArchivistError as exc:
        print(f"archivist: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
