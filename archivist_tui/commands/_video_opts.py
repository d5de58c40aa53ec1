"""The video options of ``archivist restore`` and the handler that runs a video restoration."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from archivist_tui.commands._common import int_arg
from engine.media import is_video
from engine.video.codecs import AUDIO_CHOICES, CODECS, DEFAULT_CODEC_WORDS


def add_video_options(parser: argparse.ArgumentParser) -> None:
    """Options that apply when INPUT is a video or an image sequence (``--fps``)."""
    g = _Recorded(parser.add_argument_group("video", "used when INPUT is a video file, or an image sequence with "
                                            "--fps; refused with an image or a folder of images"))
    g.add_argument("--codec", choices=CODECS, default=None,
                   help=f"encoder (default by output: {DEFAULT_CODEC_WORDS}, a folder png); ffv1 is lossless; "
                   "x265 and ffv1 keep >8-bit sources at 10/16 bits")
    g.add_argument("--crf", type=float, default=None, metavar="Q", help="x264/x265 quality (default 18/20)")
    g.add_argument("--preset", default=None, metavar="NAME", help="x264/x265 speed preset (default medium)")
    g.add_argument("--encoder-opt", dest="encoder_opts", action="append", default=[], metavar="KEY=VALUE",
                   help="option passed to the video encoder, repeatable (e.g. tune=grain, profile=4 for ProRes 4444); "
                   "one the encoder does not have is refused")
    g.add_argument("--segment-frames", type=int_arg("--segment-frames"), default=500, metavar="N",
                   help="frames per segment: the unit of resume (default 500)")
    g.add_argument("--resume", action="store_true",
                   help="continue an interrupted run at its first unfinished segment (starts afresh if none); only "
                   "the segments this run recorded count, never a file already at the output path")
    g.add_argument("--start", default=None, metavar="T", help="restore from time T (seconds or [HH:]MM:SS)")
    g.add_argument("--duration", default=None, metavar="D", help="restore only D (seconds or [HH:]MM:SS)")
    g.add_argument("--deinterlace", action="store_true", help="deinterlace with bwdif before restoring")
    g.add_argument("--ivtc", action="store_true", help="inverse telecine (3:2 pulldown) before restoring")
    g.add_argument("--fps", default=None, metavar="RATE",
                   help="frame rate of an image-sequence INPUT (24, 23.976, 24000/1001)")
    g.add_argument("--work-dir", default=None, metavar="DIR",
                   help="where segments are kept while the job runs (default ARCHIVIST_HOME/jobs)")
    g.add_argument("--batch", type=int_arg("--batch"), default=1, metavar="N", help="frames per model call (default 1)")
    g.add_argument("--no-space-check", action="store_true", help="skip the free-space estimate before starting")
    g.add_argument("--audio", choices=AUDIO_CHOICES, default=None,
                   help="audio streams: copy as they are, convert all to aac/opus/flac, or drop (default by "
                   "output: .mkv copies all it holds, converting the rest to flac; .mp4/.mov copy aac, mp3, ac3, "
                   "eac3, alac and convert the rest to aac)")
    g.add_argument("--pad-even", action="store_true",
                   help="for x264/x265 (4:2:0) and ProRes 4:2:2 at an odd frame size: add one edge row/column and "
                   "keep the usual chroma, instead of writing 4:4:4 at the exact size (which many players refuse)")
    g.add_argument("--plan", action="store_true",
                   help="print the stream plan (each input stream copied, converted or dropped, and why) and "
                   "stop: nothing is restored or written")
    # --fps is what makes a folder or a pattern a video input: every other flag here is video-only.
    parser.set_defaults(video_only=tuple((a.dest, a.option_strings[-1], a.default) for a in g.actions
                                         if a.dest != "fps"))


class _Recorded:
    """An argument group that remembers the actions added to it (the video-only flags)."""

    def __init__(self, group):
        self.group, self.actions = group, []

    def add_argument(self, *names, **kwargs):
        action = self.group.add_argument(*names, **kwargs)
        self.actions.append(action)
        return action


# A printf frame-number pattern: %d, %06d.
_PATTERN = re.compile(r"%0?\d*d")


def check_video_only(args: argparse.Namespace) -> None:
    """Refuse what would be silently ignored: an image sequence given without ``--fps`` (a ``%06d``
    pattern, or a folder of images into a video file), and video-only flags with an image input."""
    from engine.errors import ArchivistError

    if not args.fps:
        path = Path(args.input)
        pattern = _PATTERN.search(path.name) and not path.exists()
        if pattern or (path.is_dir() and is_video(args.output)):
            what = "a %d pattern" if pattern else "a folder of images into a video file"
            raise ArchivistError(f"{args.input}: an image sequence ({what}) needs --fps RATE "
                                 "(24, 23.976, 24000/1001), as in: restore 'frames/%06d.png' --fps 24 -o out.mkv -m MODEL")
    if is_video_job(args):
        return
    given = [flag for dest, flag, default in args.video_only if getattr(args, dest) != default]
    if given:
        words = given[0] if len(given) == 1 else ", ".join(given[:-1]) + " and " + given[-1]
        verb = "applies" if len(given) == 1 else "apply"
        raise ArchivistError(f"{args.input}: {words} {verb} to a video input (or an image sequence with --fps), "
                             "not to an image or a folder of images: leave them out")


def is_video_job(args: argparse.Namespace) -> bool:
    """A video file input, or an image sequence given with --fps."""
    if getattr(args, "fps", None):
        return True
    path = Path(args.input)
    if path.is_dir():
        return False
    if is_video(path):
        return True
    from engine.inference.imageio import is_image

    return path.is_file() and not is_image(path)


def video_options_from_args(args: argparse.Namespace):
    """A :class:`engine.video.options.VideoOptions` from the parsed command line."""
    from engine.video.encode import parse_encoder_opts
    from engine.video.options import VideoOptions, parse_fps, parse_time

    return VideoOptions(
        codec=args.codec,
        crf=args.crf,
        preset=args.preset,
        encoder_opts=parse_encoder_opts(args.encoder_opts),
        segment_frames=args.segment_frames,
        resume=args.resume,
        start=parse_time(args.start, "start") if args.start else 0.0,
        duration=parse_time(args.duration, "duration") if args.duration else None,
        deinterlace=args.deinterlace,
        ivtc=args.ivtc,
        fps=parse_fps(args.fps) if args.fps else None,
        work_dir=Path(args.work_dir) if args.work_dir else None,
        batch=args.batch,
        check_space=not args.no_space_check,
        audio=args.audio,
        tone=getattr(args, "tone", "auto"),
        pad_even=args.pad_even,
        overwrite=getattr(args, "overwrite", False),
    )


def video_options_for(args: argparse.Namespace):
    """:func:`video_options_from_args`, with ``--format`` naming the codec of an image-sequence output."""
    from engine.video.plan import is_image_sequence_output

    options = video_options_from_args(args)
    if args.format is not None and options.codec is None and is_image_sequence_output(args.output):
        options.codec = args.format
    return options


def print_plan(plan, as_json: bool, file=None) -> None:
    """The stream plan: one line per input stream, or the plan as one JSON object."""
    if as_json:
        print(json.dumps(plan.to_dict(), indent=1), file=file)
        return
    for line in plan.streams.lines():
        print(line, file=file, flush=True)


def run_video_restore(args: argparse.Namespace) -> int:
    """Restore a video through the chain given with -m; prints the output path, the plan and segments on stderr."""
    from archivist_tui.output import Progress
    from engine.video.plan import plan_restore
    from engine.video.restore import restore_video

    options = video_options_for(args)
    if args.plan:
        # No model is loaded and nothing is written: the encoder is tried at the source's size.
        print_plan(plan_restore(args.input, args.output, options), args.json)
        return 0
    from engine.inference.chain import Chain, parse_stage
    from engine.video.plan import check_output

    check_output(args.input, args.output, options)  # before the model is loaded
    stages = [parse_stage(m) for m in args.model]
    chain = Chain.load(stages, device=args.device, precision=args.precision, tile=args.tile,
                       tile_overlap=args.tile_overlap, backend=args.backend)
    planned = []

    def on_plan(plan) -> None:
        planned.append(plan)
        if not args.json:
            print_plan(plan, False, file=sys.stderr)

    def on_segment(done: int, total: int) -> None:
        if progress.enabled:  # the bar shares the line: wipe it first
            sys.stderr.write("\r\x1b[2K")
        print(f"segment {done}/{total} done", file=sys.stderr, flush=True)

    with Progress("restore", "frames") as progress:
        result = restore_video(args.input, args.output, chain, options, progress=progress, on_segment=on_segment,
                               on_plan=on_plan, cluster=args.cluster)
    if args.json:
        doc = {"status": result.status, "output": str(result.output), "frames": result.frames,
               "segments": result.segments_done, "seconds": round(result.seconds, 3),
               "streams": planned[0].streams.to_list() if planned else []}
        print(json.dumps(doc, indent=1))
    else:
        print(result.output)
    return 0
