"""``archivist preview``: a before/after picture of one frame through a model chain."""

from __future__ import annotations

import argparse

from archivist_tui.commands._common import add_device_options, int_arg, tiling_arg


def register(sub) -> None:
    p = sub.add_parser(
        "preview",
        help="write a before/after picture of one frame of a video (or an image) through a chain",
        description="Restore one frame of INPUT with the chain given by -m and write the original and the "
        "result side by side (or split down the middle) to OUT.png.",
    )
    p.add_argument("input", metavar="INPUT", nargs="?", default=None,
                   help="a video file or an image (default: the built-in sample frame, a drawn cel frame)")
    p.add_argument("-m", "--model", action="append", required=True, metavar="MODEL",
                   help="MODEL[:strength[:sigma]]; repeat to chain")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="the picture to write (.png or .tiff)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--frame", type=int_arg("--frame"), default=None, metavar="N", help="frame index, from 0 (default 0)")
    where.add_argument("--time", default=None, metavar="T", help="the first frame at or after T (seconds or [HH:]MM:SS)")
    p.add_argument("--layout", choices=("side", "split"), default="side",
                   help="side: before | after; split: left half before, right half after (default side)")
    p.add_argument("--tile", type=tiling_arg("--tile", "tile"), default=0, metavar="N", help="process in N×N tiles (0: whole frame)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT when it exists (by default refused)")
    add_device_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.errors import ArchivistError
    from engine.inference.chain import Chain, parse_stage
    from engine.ownership import check_absent, check_not_input
    from engine.video.options import parse_time
    from engine.video.preview import preview_frame

    if args.input is None and (args.frame is not None or args.time is not None):
        raise ArchivistError("--frame and --time choose a frame of INPUT: give INPUT (a video file)")
    time = parse_time(args.time, "time") if args.time is not None else None
    check_not_input(args.output, [args.input] if args.input is not None else [])  # before the model is loaded
    check_absent(Path(args.output), args.overwrite)
    stages = [parse_stage(m) for m in args.model]
    chain = Chain.load(stages, device=args.device, precision=args.precision, tile=args.tile)
    out = preview_frame(args.input, chain, args.output, frame=args.frame, time=time, layout=args.layout,
                        overwrite=args.overwrite)
    print(out)
    return 0
