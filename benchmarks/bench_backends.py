"""Frames per second of a Compact 48nf16nc through each ``--backend``, model-only, in one run (issue 24).

    python benchmarks/bench_backends.py                      # on a CUDA GPU: the whole table, < 6 min
    python benchmarks/bench_backends.py --only fp16 --budget 120
    python benchmarks/bench_backends.py --device cpu --size 96x64 --big 128x96 --nf 8 --nc 2 --no-pipeline

Model-only means what ``Chain.run_tensor`` does with frames already on the device (the chain's
casts, channels_last, the network through its backend, the clamp), timed with the device
synchronised, each backend built before the clock starts (its build time is its own column). Rows:

- at ``--size`` (1920x1080): fp32 eager batch 1 as the reference, then fp16 and bf16 each through
  eager, eager + CUDA graphs, compile, compile + CUDA graphs, at batch 1 and 4, and TensorRT only
  where it is importable (otherwise a row that says "not measured" and why);
- at ``--big`` (3840x2160): fp16 eager and fp16 compile + CUDA graphs, batch 1;
- the host transfers a real run adds (uint8 frames in, uint8 frames out), per frame;
- the video pipeline (``restore_video``: decode, restore, encode) with the fastest fp16 backend at
  ``--size``, against decoding and encoding alone in the same run (``--no-pipeline`` skips it).

Each row is printed (a Markdown table row, for docs/video.md) as soon as it is measured. Rows not
reached in time (``--budget`` seconds, less about a minute kept for the pipeline) are printed as
"not measured: time budget spent"; a build (torch.compile's autotuning, TensorRT's) is never cut
short, so keep a minute in hand under any hard limit. The
last column is the largest difference from fp32 eager on the same first frame, in 8-bit levels.
Weights are random (speed does not depend on them); parity with real weights is in
tests/inference/test_backends.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass(frozen=True)
class Row:
    size: tuple[int, int]  # width, height
    precision: str
    backend: str
    graphs: bool
    batch: int

    @property
    def step(self) -> str:
        return self.backend + ("+cudagraphs" if self.graphs else "")

    def cells(self) -> list[str]:
        return [f"{self.size[0]}×{self.size[1]}", self.precision, self.step, str(self.batch)]


# Seconds of --budget kept for the pipeline rows (a 1080p clip made, then four restore_video runs).
PIPELINE_RESERVE = 70.0


def plan_rows(size: tuple[int, int], big: tuple[int, int]) -> list[Row]:
    """The table's rows, most important first, so a spent budget cuts the least useful ones."""
    rows = [Row(size, "fp32", "eager", False, 1)]
    for precision in ("fp16", "bf16"):
        for backend, graphs in (("eager", False), ("eager", True), ("compile", False), ("compile", True)):
            for batch in (1, 4):
                rows.append(Row(size, precision, backend, graphs, batch))
        for batch in (1, 4):
            rows.append(Row(size, precision, "tensorrt", False, batch))
    rows += [Row(big, "fp16", "eager", False, 1), Row(big, "fp16", "compile", True, 1)]
    return rows


def parse_size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def emit(*cells: str) -> None:
    print("| " + " | ".join(cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda where there is one)")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--big", default="3840x2160", help="the reference point at a larger size")
    ap.add_argument("--nf", type=int, default=48)
    ap.add_argument("--nc", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per row, after its warm-up")
    ap.add_argument("--budget", type=float, default=330.0,
                    help="seconds after which the remaining rows are not measured (default 330: under 6 min)")
    ap.add_argument("--only", default=None,
                    help="measure only rows whose size, precision, backend or batch contains this text")
    ap.add_argument("--compile-mode", default=None, help="torch.compile mode (default: the backend's own)")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the video pipeline rows")
    ap.add_argument("--pipeline-frames", type=int, default=480)
    ap.add_argument("--codec", default="x264", choices=("x264", "ffv1", "x265"))
    args = ap.parse_args(argv)
    started = time.monotonic()

    import torch

    from engine.inference import backends
    from engine.inference.chain import Chain, Stage
    from engine.models import compact
    from engine.models.files import save_safetensors

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    size, big = parse_size(args.size), parse_size(args.big)

    with tempfile.TemporaryDirectory(prefix="archivist-bench-") as tmp:
        tmp = Path(tmp)
        os.environ["ARCHIVIST_HOME"] = str(tmp / "home")  # TensorRT engines are built afresh: build time shown
        torch.manual_seed(0)
        spec = compact.spec_for(args.nf, args.nc, 1)
        model = tmp / "compact.safetensors"
        save_safetensors(model, compact.build(spec).state_dict(), spec, role="custom")
        gpu = torch.cuda.get_device_name(device) if cuda else "CPU"
        print(f"Compact {args.nf}nf{args.nc}nc, device {device} ({gpu}), torch {torch.__version__}, "
              f"tensorrt {'missing: ' + ', '.join(backends.tensorrt_missing()) if backends.tensorrt_missing() else 'importable'}, "
              f"{args.seconds:g} s a row, budget {args.budget:g} s", flush=True)
        print()
        emit("size", "precision", "backend", "batch", "fps (model only)", "ms/frame", "build s", "max Δ levels")
        emit(*["---"] * 8)

        inputs: dict[tuple[int, int], object] = {}
        reference: dict[tuple[int, int], object] = {}
        measured: dict[Row, float] = {}

        def frames_for(row: Row):
            if row.size not in inputs:
                gen = torch.Generator(device="cpu").manual_seed(1)
                inputs[row.size] = torch.rand(4, 3, row.size[1], row.size[0], generator=gen).to(device)
            return inputs[row.size][:row.batch]

        def sync() -> None:
            if cuda:
                torch.cuda.synchronize(device)

        def why_not(row: Row) -> str | None:
            if args.only and not any(args.only in c for c in row.cells()):
                return "skip"
            if (row.graphs or row.backend == "tensorrt" or row.precision == "fp16") and not cuda:
                return "not measured: needs a CUDA device"
            if row.backend == "tensorrt" and backends.tensorrt_missing():
                return f"not measured: {' and '.join(backends.tensorrt_missing())} not importable here"
            if row.precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
                return "not measured: this GPU has no bf16"
            if time.monotonic() - started > args.budget - (0 if args.no_pipeline else PIPELINE_RESERVE):
                return "not measured: time budget spent"
            return None

        for row in plan_rows(size, big):
            reason = why_not(row)
            if reason == "skip":
                continue
            if reason:
                emit(*row.cells(), reason, "", "", "")
                continue
            chain = None
            try:
                x = frames_for(row)
                chain = Chain.load([Stage(str(model))], device=device, precision=row.precision, backend=row.backend,
                                   cuda_graphs=row.graphs if cuda else None, compile_mode=args.compile_mode)
                t = time.perf_counter()
                out = chain.run_tensor(x)  # builds the backend for this shape
                sync()
                build = time.perf_counter() - t
                built = set(chain.stages[0].runner.built().values()) or {"eager"}
                if built != {row.step}:  # it fell back (the warning says why): not this row's figure
                    emit(*row.cells(), f"not measured: fell back to {', '.join(sorted(built))}", "",
                         f"{build:.1f}", "")
                    continue
                first = out[:1].float().clone()
                for _ in range(2):  # cuDNN's choice, the allocator's pool, the graph's first replay
                    chain.run_tensor(x)
                sync()
                frames, t = 0, time.perf_counter()
                while True:
                    for _ in range(5):  # a few launches between waits, as a video keeps the queue full
                        chain.run_tensor(x)
                    frames += 5 * row.batch
                    sync()
                    elapsed = time.perf_counter() - t
                    if elapsed >= args.seconds:
                        break
                fps = frames / elapsed
                measured[row] = fps
                if row.size not in reference and row.precision == "fp32":
                    reference[row.size] = first
                delta = (f"{(first - reference[row.size]).abs().max().item() * 255:.2f}"
                         if row.size in reference else "")
                emit(*row.cells(), f"{fps:.1f}", f"{1000 / fps:.2f}", f"{build:.1f}", delta)
            except Exception as exc:  # noqa: BLE001 - a row that cannot run says why; the others still run
                text = str(exc).strip().splitlines()
                emit(*row.cells(), f"failed: {type(exc).__name__}: {text[0][:120] if text else ''}", "", "", "")
            finally:
                del chain
                if cuda:
                    torch.cuda.empty_cache()

        # The pipeline runs the fastest fp16 row (on the CPU, where fp16 does not run, the fastest row).
        best = max((r for r in measured if r.size == size and (r.precision == "fp16" or not cuda)),
                   key=lambda r: measured[r], default=None)
        _transfers(device, size, best, measured, model, sync, args)
        if not args.no_pipeline:
            _pipeline(tmp, model, device, size, best, measured, args, started)
    print(f"\ntotal {time.monotonic() - started:.0f} s", flush=True)
    return 0


def _transfers(device, size, best, measured, model, sync, args) -> None:
    """What a real run adds to model-only: uint8 frames to the device and back, and run_batch end to end."""
    import numpy as np
    import torch

    from engine.inference.chain import Chain, Stage

    width, height = size
    host = np.random.default_rng(0).integers(0, 256, (4, height, width, 3), dtype=np.uint8)
    print()
    emit("host transfer (uint8, batch 4)", "ms/frame")
    emit("---", "---")

    def per_frame(fn) -> float:
        fn()
        sync()
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < min(args.seconds, 1.0) or n < 3:
            fn()
            n += 1
        sync()
        return (time.perf_counter() - t) / n / 4 * 1000

    if not device.startswith("cuda"):
        emit("not measured: the frames never leave the host on the CPU", "")
        return
    on_device = torch.from_numpy(host).to(device)
    emit("to the device", f"{per_frame(lambda: torch.from_numpy(host).to(device, non_blocking=True)):.2f}")
    emit("back to the host", f"{per_frame(lambda: on_device.cpu()):.2f}")
    if best is not None:
        chain = Chain.load([Stage(str(model))], device=device, precision=best.precision, backend=best.backend,
                           cuda_graphs=best.graphs if device.startswith("cuda") else None,
                           compile_mode=args.compile_mode)
        frames = host[:best.batch]
        ms = per_frame(lambda: chain.run_batch(frames)) * 4 / best.batch
        emit(f"run_batch end to end, {best.step} batch {best.batch} (model {1000 / measured[best]:.2f})",
             f"{ms:.2f} ({1000 / ms:.1f} fps)")


def _pipeline(tmp: Path, model: Path, device: str, size, best, measured, args, started: float) -> None:
    """restore_video with the fastest backend of the table against decoding and encoding alone, same clip and run."""
    print()
    emit("video pipeline", "fps", "ratio")
    emit("---", "---", "---")
    if best is None:
        emit("not measured: no row was measured at --size", "", "")
        return
    if time.monotonic() - started > args.budget:
        emit("not measured: time budget spent", "", "")
        return
    import numpy as np

    from engine.inference.chain import Chain, Stage
    from engine.video.options import VideoOptions
    from engine.video.restore import restore_video
    from engine.video.synthetic import write_test_clip

    width, height = size
    src = write_test_clip(tmp / "clip.mkv", frames=args.pipeline_frames, width=width, height=height,
                          options={"preset": "veryfast"})
    crf = None if args.codec == "ffv1" else 18
    preset = None if args.codec == "ffv1" else "veryfast"

    class PassThrough:
        """Decode and encode alone: restore_video's chain protocol with frames handed straight back."""

        scale = 1

        def run_batch(self, frames):
            return frames

        def identity(self):
            return [{"model": "pass-through"}]

    def timed(chain, name: str) -> float:
        options = VideoOptions(codec=args.codec, crf=crf, preset=preset, batch=best.batch, segment_frames=1000,
                               check_space=False)
        t = time.perf_counter()
        result = restore_video(src, tmp / f"{name}.mkv", chain, options)
        fps = result.frames / (time.perf_counter() - t)
        (tmp / f"{name}.mkv").unlink()
        return fps

    chain = Chain.load([Stage(str(model))], device=device, precision=best.precision, backend=best.backend,
                       cuda_graphs=best.graphs if device.startswith("cuda") else None, compile_mode=args.compile_mode)
    chain.run_batch(np.zeros((best.batch, height, width, 3), np.uint8))  # built before the clock starts
    # Two interleaved rounds, the best of each kept: the first run of either pays for warming up.
    io_fps = max(timed(PassThrough(), "io"), timed(PassThrough(), "io"))
    emit(f"decode + encode alone ({args.codec}, {args.pipeline_frames} frames, best of 2)", f"{io_fps:.1f}", "")
    fps = max(timed(chain, "restored"), timed(chain, "restored"))
    bound = min(measured[best], io_fps)
    emit(f"restore_video, {best.precision} {best.step} batch {best.batch}, best of 2", f"{fps:.1f}",
         f"{fps / bound:.2f}× of min(model only {measured[best]:.1f}, decode+encode {io_fps:.1f}) (goal ≥ 0.95)")


if __name__ == "__main__":
    sys.exit(main())
