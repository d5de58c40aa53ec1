"""``archivist demo``: age a generated cel clip, restore it with the starter model, measure it."""

from __future__ import annotations

import argparse
import sys

from archivist_tui.commands._common import add_device_options, int_arg


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="see it work: age a generated cel clip, restore it with the starter model",
        description="Draw a few seconds of procedural cel animation with audio, age it with the 'normal' "
        "profile in clip mode, restore it with the built-in starter model through the video pipeline, and "
        "write clean.mkv, damaged.mkv, restored.mkv and side_by_side.png. Nothing is downloaded.")
    p.add_argument("--out", default="archivist-demo", metavar="DIR", help="output folder (default ./archivist-demo)")
    p.add_argument("-m", "--model", default="archivist-starter", metavar="MODEL",
                   help="model to restore with (default the built-in archivist-starter)")
    p.add_argument("--seconds", type=float, default=4.0, metavar="S", help="clip length (default 4)")
    p.add_argument("--size", default="320x240", metavar="WxH", help="frame size (default 320x240)")
    p.add_argument("--seed", type=int_arg("--seed"), default=2024, metavar="N", help="seed of the drawing and the damage")
    add_device_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from archivist_tui.output import Progress
    from engine.demo import run_demo
    from engine.errors import ArchivistError

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ArchivistError(f"--size {args.size!r} invalid: expected WIDTHxHEIGHT, e.g. 320x240") from None
    if not (32 <= width <= 3840 and 32 <= height <= 2160) or width % 2 or height % 2:
        raise ArchivistError(f"--size {args.size} invalid: even sizes from 32x32 to 3840x2160")
    if not 0.5 <= args.seconds <= 60:
        raise ArchivistError(f"--seconds {args.seconds:g} invalid: allowed 0.5 to 60")

    bars: list[Progress] = []

    def factory(label: str, unit: str) -> Progress:
        for b in bars:
            b.close()
        bars.append(Progress(label, unit))
        return bars[-1]

    def stage(text: str) -> None:
        for b in bars:
            b.close()
        print(f"archivist demo: {text}", file=sys.stderr, flush=True)

    result = run_demo(args.out, model=args.model, seconds=args.seconds, width=width, height=height,
                      seed=args.seed, device=args.device, precision=args.precision, stage=stage,
                      progress_factory=factory)
    for b in bars:
        b.close()
    print(f"clean     {result.clean}")
    print(f"damaged   {result.damaged}")
    print(f"restored  {result.restored}")
    print(f"compare   {result.side_by_side}")
    print(f"PSNR damaged {result.psnr_damaged:.2f} dB -> restored {result.psnr_restored:.2f} dB")
    return 0
