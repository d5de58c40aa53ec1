"""``archivist degrade``: make (GT, LQ) training pairs from clean images."""

from __future__ import annotations

import argparse


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; allowed: 1 or more")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "degrade", help="make (GT, LQ) pairs from clean images with a profile or mix",
        description="Degrade an image or a folder of images into OUTDIR/gt, OUTDIR/lq and "
                    "OUTDIR/manifest.jsonl. Re-running with the same arguments skips finished pairs.")
    parser.add_argument("input", metavar="INPUT", help="an image or a folder of images")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="dataset folder")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--profile", metavar="NAME|PATH", help="a profile (name or YAML file)")
    which.add_argument("--mix", metavar="NAME|PATH", help="a mix (a profile name also works: a mix of one)")
    parser.add_argument("--count", type=_positive, default=1, metavar="N", help="pairs per image (default 1)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="master seed (default 0)")
    parser.add_argument("--crop", type=_positive, default=None, metavar="N",
                        help="random N×N crop of each pair (default: whole image)")
    parser.add_argument("--workers", type=_positive, default=1, metavar="N", help="worker processes (default 1)")
    parser.add_argument("--clip-length", type=_positive, default=None, metavar="N",
                        help="make N-frame clips (frame folders) instead of single pairs")
    parser.set_defaults(func=_degrade)


def _degrade(args: argparse.Namespace) -> int:
    from archivist_tui.output import Progress
    from engine.degrade import load_profile
    from engine.degrade.dataset import write_dataset

    profile = load_profile(args.profile or args.mix)
    with Progress("degrade", "pairs") as progress:
        summary = write_dataset(args.input, args.output, profile, count=args.count, seed=args.seed,
                                crop=args.crop, workers=args.workers, clip_length=args.clip_length,
                                progress=progress)
    print(f"{summary.outdir}: {summary.written} pairs written, {summary.skipped} already there, "
          f"{summary.total} in total")
    return 0
