"""``archivist restore``: run a chain of models over an image or a folder of images."""

from __future__ import annotations

import argparse

from archivist_tui.commands._common import add_device_options
from archivist_tui.commands._queue_opts import add_queue_options, submit_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "restore",
        help="restore an image or a folder of images with a chain of models",
        description="Restore INPUT through one or more models. Several -m form a chain; each stage is "
        "MODEL[:strength[:sigma]] (strength 0-1 blends with the stage's input, sigma 0-50 is DRUNet's "
        "noise level). MODEL is a library name or a model file.",
    )
    p.add_argument("input", metavar="INPUT", help="an image file or a folder of images")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output image (or folder, for a folder input or a path ending in /)")
    p.add_argument("-m", "--model", action="append", required=True, metavar="MODEL",
                   help="MODEL[:strength[:sigma]]; repeat to chain, e.g. -m medium -m drunet:0.5:5")
    p.add_argument("--tile", type=int, default=0, metavar="N",
                   help="process in N×N tiles to bound memory (0: whole frame; default 0)")
    p.add_argument("--tile-overlap", type=int, default=40, metavar="N",
                   help="context pixels shared by neighbouring tiles; the cross-fade sits in the middle (default 40)")
    p.add_argument("--format", choices=("png", "tiff"), default=None,
                   help="output image format for folders (default png; 16-bit input stays 16-bit)")
    add_device_options(p)
    add_queue_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.queue:
        spec = {"input": args.input, "output": args.output, "models": list(args.model), "tile": args.tile,
                "tile_overlap": args.tile_overlap, "precision": args.precision, "format": args.format}
        return submit_from_args(args, "restore", spec)
    from archivist_tui.output import Progress
    from engine.inference.chain import Chain, parse_stage
    from engine.inference.restore import restore_images

    stages = [parse_stage(m) for m in args.model]
    chain = Chain.load(stages, device=args.device, precision=args.precision, tile=args.tile,
                       tile_overlap=args.tile_overlap)
    with Progress("restore", "images") as progress:
        result = restore_images(args.input, args.output, chain, fmt=args.format, progress=progress)
    for path in result.outputs:
        print(path)
    return 0
