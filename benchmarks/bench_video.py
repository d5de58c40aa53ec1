"""Time the video pipeline against the model alone and a plain sequential loop, in one run.

    python benchmarks/bench_video.py [--size 640x360] [--frames 90] [--nf 8 --nc 2] [--codec x264]
                                     [--device cpu|cuda] [--threads 1] [--batch 1] [--backend eager]

On a generated clip (x264) with a fresh Compact it measures:
  model-only   the chain over frames already in memory (no decode, no encode);
  sequential   a plain loop: decode one frame, restore it, encode it;
  overlapped   engine.video.restore.restore_video (decode, restore, encode in three threads).
Each is run --rounds times, interleaved, and the best kept. It prints fps for each and the ratios overlapped/sequential and overlapped/model-only. On a CPU torch
runs on ``--threads`` threads (1 by default, as in docs/video.md); see ../shared/NOTES.md "Overlap".
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--nf", type=int, default=8)
    ap.add_argument("--nc", type=int, default=2)
    ap.add_argument("--codec", default="x264", choices=("x264", "ffv1", "x265"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (default 1)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each is kept")
    ap.add_argument("--precision", default="auto", help="auto: fp16 on CUDA, fp32 on the CPU")
    ap.add_argument("--backend", default="eager", choices=("auto", "eager", "compile", "tensorrt"),
                    help="how the network runs (default eager, as in the table of docs/video.md); "
                    "benchmarks/bench_backends.py compares them")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from engine.inference.chain import Chain, Stage
    from engine.models import compact
    from engine.models.files import save_safetensors
    from engine.video.encode import EncoderSettings, SegmentWriter, StreamLayout, plan_encoder
    from engine.video.frames import VideoSource
    from engine.video.options import VideoOptions
    from engine.video.pipeline import run_sequential
    from engine.video.probe import probe
    from engine.video.restore import restore_video
    from engine.video.synthetic import write_test_clip

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["ARCHIVIST_HOME"] = str(tmp / "home")
        torch.manual_seed(0)
        spec = compact.spec_for(args.nf, args.nc, 1)
        save_safetensors(tmp / "m.safetensors", compact.build(spec).state_dict(), spec, role="custom")
        chain = Chain.load([Stage(str(tmp / "m.safetensors"))], device=args.device, precision=args.precision,
                           backend=args.backend)
        src = write_test_clip(tmp / "clip.mkv", frames=args.frames, width=width, height=height,
                              options={"preset": "veryfast"})
        info = probe(src)
        frames = [f.rgb for f in VideoSource(info)]
        for _ in range(3):
            chain.run_batch(np.stack(frames[:args.batch]))  # warm-up
        crf = 18 if args.codec != "ffv1" else None
        preset = "veryfast" if args.codec != "ffv1" else None
        plan = plan_encoder(EncoderSettings(args.codec, crf, preset), False, 1, 1)
        layout = StreamLayout(width, height, info.time_base, info.rate, None, 2, 2)

        def model_only() -> float:
            t = time.perf_counter()
            for i in range(0, len(frames), args.batch):
                chain.run_batch(np.stack(frames[i:i + args.batch]))  # returns host arrays: synchronised
            return len(frames) / (time.perf_counter() - t)

        def sequential() -> float:
            writer = SegmentWriter(tmp / "seq.nut", plan, layout)
            t = time.perf_counter()
            run_sequential(VideoSource(info), chain.run_batch, lambda f: writer.write(f.rgb, f.pts))
            writer.close()
            return info.frame_count / (time.perf_counter() - t)

        def overlapped() -> float:
            # The real thing: segments, state and the final assembly included.
            options = VideoOptions(codec=args.codec, crf=crf, preset=preset, batch=args.batch, segment_frames=500)
            t = time.perf_counter()
            result = restore_video(src, tmp / "out.mkv", chain, options)
            fps = result.frames / (time.perf_counter() - t)
            (tmp / "out.mkv").unlink()
            return fps

        # Interleaved rounds, best of each: other processes on the machine only ever slow a round down.
        best = {"model": 0.0, "seq": 0.0, "ovl": 0.0}
        for _ in range(args.rounds):
            best["model"] = max(best["model"], model_only())
            best["seq"] = max(best["seq"], sequential())
            best["ovl"] = max(best["ovl"], overlapped())
        model_fps, seq_fps, ovl_fps = best["model"], best["seq"], best["ovl"]

    print(f"clip {width}x{height}, {info.frame_count} frames, Compact nf{args.nf} nc{args.nc}, "
          f"{args.codec}, device {chain.device}, backend {chain.backend}, torch threads {torch.get_num_threads()}, batch {args.batch}, "
          f"best of {args.rounds}")
    print(f"model-only  {model_fps:7.2f} fps")
    print(f"sequential  {seq_fps:7.2f} fps")
    print(f"overlapped  {ovl_fps:7.2f} fps")
    print(f"overlapped / sequential  {ovl_fps / seq_fps:5.2f}x   (goal on CPU >= 1.2)")
    print(f"overlapped / model-only  {ovl_fps / model_fps:5.2f}x   (goal on GPU >= 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
