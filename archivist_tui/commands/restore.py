"""``archivist restore``: run a chain of models over an image, a folder of images, a video or an image sequence."""

from __future__ import annotations

import argparse
import sys

from archivist_tui.commands._common import add_device_options, tiling_arg
from archivist_tui.commands._queue_opts import add_queue_options, submit_from_args
from archivist_tui.commands._video_opts import (
    add_video_options,
    check_video_only,
    is_video_job,
    print_plan,
    run_video_restore,
    video_options_for,
)
from engine.inference.backends import BACKENDS
from engine.video.codecs import CONTAINER_CODECS, CONTAINERS_WORDS, VIDEO_CODECS

# Which codecs each container holds, said next to the list of containers.
_CONTAINER_LIMITS = "holding " + ", ".join(
    f"{suffix} {'any' if set(codecs) == set(VIDEO_CODECS) else '/'.join(codecs)}"
    for suffix, codecs in CONTAINER_CODECS.items())


def register(sub) -> None:
    p = sub.add_parser(
        "restore",
        help="restore a video, an image or a folder of images with a chain of models",
        description="Restore INPUT through one or more models. Several -m form a chain; each stage is "
        "MODEL[:strength[:sigma]] (strength 0-1 blends with the stage's input, sigma 0-50 is DRUNet's "
        "noise level). MODEL is a library name or a model file.",
    )
    p.add_argument("input", metavar="INPUT",
                   help="an image file, a folder of images, a video file, or an image sequence (folder or "
                   "%%06d.png pattern) with --fps")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output image (or folder, for a folder input or a path ending in /); for a video: a "
                   f"{CONTAINERS_WORDS} file ({_CONTAINER_LIMITS}), or a folder ending in / or a %%06d.png pattern "
                   "for an image sequence")
    p.add_argument("-m", "--model", action="append", required=True, metavar="MODEL",
                   help="MODEL[:strength[:sigma]]; repeat to chain, e.g. -m archivist-medium -m drunet-color:0.5:5")
    p.add_argument("--tile", type=tiling_arg("--tile", "tile"), default=0, metavar="N",
                   help="process in N×N tiles to bound memory (0: whole frame; default 0)")
    p.add_argument("--tile-overlap", type=tiling_arg("--tile-overlap", "tile_overlap"), default=40, metavar="N",
                   help="context pixels shared by neighbouring tiles; the cross-fade sits in the middle (default 40)")
    p.add_argument("--format", choices=("png", "tiff"), default=None,
                   help="output image format for folders (default png; 16-bit input stays 16-bit)")
    tone = p.add_mutually_exclusive_group()
    tone.add_argument("--color", dest="tone", action="store_const", const="color", default="auto",
                      help="restore in colour even when the input looks black and white (by default a gray image, "
                      "or a video whose sampled frames have neutral chroma, is restored and written in black and "
                      "white)")
    tone.add_argument("--gray", dest="tone", action="store_const", const="gray",
                      help="restore in black and white whatever the input holds (a black-and-white film that a "
                      "colour transfer tinted)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an output that exists (by default it is refused before any work); the old file "
                   "is replaced only when the new one is complete. The output may never be the input")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object instead of text: the outputs; for a video the output, its frames "
                   "and the stream plan")
    add_device_options(p)
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="how the networks run: eager (plain PyTorch); compile (torch.compile, built once per "
                   "frame size, on a GPU replayed as CUDA graphs); tensorrt (a TensorRT engine per frame size, cached "
                   "in ARCHIVIST_HOME/cache/tensorrt; needs a GPU and the tensorrt package); auto: eager on the CPU, "
                   "on a GPU tensorrt where installed, else compile, for each frame size once it has come three "
                   "times. A backend that cannot be built falls back to the next with one warning (default auto)")
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="restore on a Ray cluster, one task per video segment or per batch of images, and write "
                   "the output here: auto (the cluster this machine belongs to), ray://HOST:PORT, HOST:PORT, or "
                   "local (one started on 127.0.0.1 for this run). Needs pip install \"archivist[cluster]\"; "
                   "'archivist docs cluster' explains it")
    add_video_options(p)
    add_queue_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_video_only(args)  # before --queue: a queued image job would drop them as well
    if args.cluster is not None:
        from engine.cluster import check_address

        check_address(args.cluster)  # before anything is loaded or queued: the one-line install hint
    if args.queue and not args.plan:
        return queue_restore(args)
    if is_video_job(args):
        return run_video_restore(args)
    from archivist_tui.output import Progress
    from engine.inference.chain import Chain, parse_stage
    from engine.inference.restore import check_outputs, plan_images, restore_images

    # Refused before the model is loaded: an output that is the input, or that exists.
    check_outputs(plan_images(args.input, args.output, args.format), args.overwrite)
    stages = [parse_stage(m) for m in args.model]
    chain = Chain.load(stages, device=args.device, precision=args.precision, tile=args.tile,
                       tile_overlap=args.tile_overlap, backend=args.backend)
    with Progress("restore", "images") as progress:
        result = restore_images(args.input, args.output, chain, fmt=args.format, progress=progress, tone=args.tone,
                                overwrite=args.overwrite, cluster=args.cluster)
    if args.json:
        import json

        print(json.dumps({"outputs": [str(p) for p in result.outputs]}, indent=1))
        return 0
    for path in result.outputs:
        print(path)
    return 0


def queue_restore(args: argparse.Namespace) -> int:
    """``--queue``: the same restore as a job spec (plain data) for the daemon; prints the job id."""
    spec = {"input": args.input, "output": args.output, "models": list(args.model), "tile": args.tile,
            "tile_overlap": args.tile_overlap, "precision": args.precision, "format": args.format}
    if args.overwrite:
        spec["overwrite"] = True
    if args.tone != "auto":
        spec["tone"] = args.tone
    if args.backend != "auto":
        spec["backend"] = args.backend
    plan = None
    if is_video_job(args):
        from engine.errors import ArchivistError
        from engine.video.encode import parse_encoder_opts
        from engine.video.options import parse_time

        if args.work_dir:
            raise ArchivistError("--work-dir does not apply with --queue: a queued job keeps its segments in "
                                 "ARCHIVIST_HOME/jobs/<id>/ (and always resumes)")
        from engine.video.plan import plan_restore

        # The stream plan is checked now, so a job that could not write its streams is never queued.
        plan = plan_restore(args.input, args.output, video_options_for(args))
        spec["video"] = {
            "codec": args.codec, "crf": args.crf, "preset": args.preset,
            "encoder_opts": parse_encoder_opts(args.encoder_opts), "segment_frames": args.segment_frames,
            "start": parse_time(args.start, "start") if args.start else 0.0,
            "duration": parse_time(args.duration, "duration") if args.duration else None,
            "deinterlace": args.deinterlace, "ivtc": args.ivtc, "fps": args.fps, "batch": args.batch,
            "check_space": not args.no_space_check,
        }
        if args.pad_even:
            spec["video"]["pad_even"] = True
        if args.audio is not None:
            spec["video"]["audio"] = args.audio
    if args.cluster is not None:
        spec["cluster"] = args.cluster
    code = submit_from_args(args, "restore", spec)
    if plan is not None:  # shown once the job is queued: a refused submission is its one error line
        print_plan(plan, False, file=sys.stderr)
    return code
