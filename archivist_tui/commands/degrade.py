"""``archivist degrade``: make (GT, LQ) training pairs from clean images."""

from __future__ import annotations

import argparse
from pathlib import Path

from archivist_tui.commands._common import int_arg
from archivist_tui.commands._queue_opts import add_queue_options
from engine.video.codecs import CONTAINERS_WORDS, DEFAULT_CODEC_WORDS, VIDEO_CODECS


# Counts of things: one at least, worded like every other range (engine.document.describe_range).
# --seed is 0 or more (int_arg's 64-bit bound is engine.degrade.pipeline.MAX_SEED), --crop 8 or more:
# the bounds that the engine and a queued job's spec check, said the same way.
def _positive(flag: str):
    return int_arg(flag, 1)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "degrade", help="make (GT, LQ) pairs from clean images or video, or age a whole clip",
        description="Degrade an image, a folder of images or a video's frames into OUTDIR/gt, OUTDIR/lq and "
                    "OUTDIR/manifest.jsonl (re-running with the same arguments skips finished pairs). "
                    f"With a video INPUT and a video OUTPUT ({CONTAINERS_WORDS}) the whole clip is aged in clip "
                    "mode instead: persistent drifting scratches, fresh grain every frame, flicker and gate "
                    "weave, with audio and subtitles kept.")
    parser.add_argument("input", metavar="INPUT", help="an image, a folder of images, or a video file")
    parser.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                        help="dataset folder; or a video file to age a whole clip")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--profile", metavar="NAME|PATH", help="a profile (name or YAML file)")
    which.add_argument("--mix", metavar="NAME|PATH", help="a mix (a profile name also works: a mix of one)")
    parser.add_argument("--count", type=_positive("--count"), default=1, metavar="N", help="pairs per image (default 1)")
    parser.add_argument("--seed", type=int_arg("--seed", 0), default=0, metavar="S", help="master seed (default 0)")
    parser.add_argument("--crop", type=int_arg("--crop", 8), default=None, metavar="N",
                        help="random N×N crop of each pair, cut from the damaged image (default: whole image); for a "
                        "dataset, also from a video's frames (an aged clip is never cropped: refused there)")
    parser.add_argument("--workers", type=_positive("--workers"), default=1, metavar="N", help="worker processes (default 1)")
    parser.add_argument("--clip-length", type=_positive("--clip-length"), default=None, metavar="N",
                        help="make N-frame clips (frame folders) instead of single pairs")
    video = parser.add_argument_group("video input")
    video.add_argument("--every", type=_positive("--every"), default=1, metavar="N",
                       help="dataset from a video: use every N-th frame (default 1)")
    video.add_argument("--codec", choices=VIDEO_CODECS, default=None,
                       help=f"aged clip: encoder (default by suffix: {DEFAULT_CODEC_WORDS})")
    video.add_argument("--crf", type=float, default=None, metavar="Q", help="aged clip: x264/x265 quality")
    video.add_argument("--start", default=None, metavar="T", help="aged clip: start at time T")
    video.add_argument("--duration", default=None, metavar="D", help="aged clip: only D seconds")
    video.add_argument("--overwrite", action="store_true",
                       help="aged clip: replace an output file that exists (by default refused before any work); "
                       "the old file is replaced only when the new one is complete")
    add_queue_options(parser)
    parser.set_defaults(func=_degrade)


def _is_video(path: str) -> bool:
    from engine.media import is_video

    return is_video(path)


# The options of each way to run (parser dest, flag, its default): one given where it has no meaning
# is refused, never silently left out (an aged clip once came out whole despite --crop).
_DATASET_ONLY = (("count", "--count", 1), ("crop", "--crop", None), ("workers", "--workers", 1),
                 ("clip_length", "--clip-length", None))
_CLIP_ONLY = (("codec", "--codec", None), ("crf", "--crf", None), ("start", "--start", None),
              ("duration", "--duration", None), ("overwrite", "--overwrite", False))


def check_mode_options(args: argparse.Namespace) -> None:
    """Refuse an option that the chosen way (an aged clip, a dataset from a video or from images) ignores."""
    from engine.errors import ArchivistError

    video_in = _is_video(args.input)
    if video_in and _is_video(args.output):
        for dest, flag, default in (*_DATASET_ONLY, ("every", "--every", 1)):
            if getattr(args, dest) != default:
                raise ArchivistError(f"{flag} applies to a dataset (an OUTPUT folder of pairs), not to an aged clip "
                                     f"(a video OUTPUT, {args.output}): leave out {flag}, or give a folder")
        return
    for dest, flag, default in _CLIP_ONLY:
        if getattr(args, dest) != default:
            if dest == "overwrite":
                raise ArchivistError("--overwrite applies to an aged clip (a video OUTPUT); a dataset folder is "
                                     "extended with the same settings, never overwritten")
            raise ArchivistError(f"{flag} applies to an aged clip (a video INPUT and a video file OUTPUT), "
                                 f"not to a dataset folder ({args.output}): leave out {flag}")
    if not video_in and args.every != 1:
        raise ArchivistError(f"--every applies to a video INPUT, not to {args.input}: leave out --every")


def _degrade(args: argparse.Namespace) -> int:
    check_mode_options(args)
    if args.queue:
        return _queue_degrade(args)
    from archivist_tui.output import Progress
    from engine.degrade import load_profile
    from engine.degrade.dataset import write_dataset

    profile = load_profile(args.profile or args.mix)
    if _is_video(args.input):
        if _is_video(args.output):
            return _age_clip(args, profile)
        from engine.degrade.dataset import check_video_dataset
        from engine.video.degrade import extract_frames

        source = Path(args.output) / "source"
        # Checked before a frame is extracted: the settings of a dataset already there, --crop.
        check_video_dataset(args.input, args.output, profile, seed=args.seed, crop=args.crop,
                            clip_length=args.clip_length)
        with Progress("frames", "frames") as progress:
            progress(0, None)
            extract_frames(args.input, source, every=args.every)
        args.input = str(source)
    with Progress("degrade", "pairs") as progress:
        summary = write_dataset(args.input, args.output, profile, count=args.count, seed=args.seed,
                                crop=args.crop, workers=args.workers, clip_length=args.clip_length,
                                progress=progress)
    print(f"{summary.outdir}: {summary.written} pairs written, {summary.skipped} already there, "
          f"{summary.total} in total")
    return 0


def _age_clip(args: argparse.Namespace, profile) -> int:
    from archivist_tui.output import Progress
    from engine.video.degrade import degrade_video
    from engine.video.options import VideoOptions, parse_time

    options = VideoOptions(
        codec=args.codec, crf=args.crf, overwrite=args.overwrite,
        start=parse_time(args.start, "start") if args.start else 0.0,
        duration=parse_time(args.duration, "duration") if args.duration else None,
    )
    with Progress("degrade", "frames") as progress:
        result = degrade_video(args.input, args.output, profile, args.seed, options, progress=progress)
    print(f"{args.output}: {result.frames} frames aged with {getattr(profile, 'name', profile)} (seed {args.seed})")
    return 0


def _queue_degrade(args: argparse.Namespace) -> int:
    """``--queue``: a dataset from images as a job for the daemon (resumes by skipping finished pairs)."""
    from archivist_tui.commands._queue_opts import submit_from_args
    from engine.errors import ArchivistError

    if _is_video(args.input):
        raise ArchivistError(f"{args.input}: --queue takes an image or a folder of images; a video input "
                             "runs directly (without --queue)")
    spec = {"input": args.input, "output": args.output, "profile": args.profile or args.mix, "count": args.count,
            "seed": args.seed, "crop": args.crop, "workers": args.workers, "clip_length": args.clip_length}
    return submit_from_args(args, "degrade", spec)
