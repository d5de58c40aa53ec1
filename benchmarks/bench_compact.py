"""Time the project's Compact 48nf16nc inference against a plain eager reference, in one run.

    python benchmarks/bench_compact.py [--size 512] [--reps 3] [--device cpu|cuda]

Prints seconds per frame, GFLOP/s and the ratio to the reference for each variant tried
(channels_last, thread counts, inference_mode, and on CUDA fp16/bf16 at 1080p).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.models import compact  # noqa: E402

MACS_PER_PIXEL = None  # computed from the network


def macs_per_pixel(nf: int, nc: int, cin: int = 3, cout: int = 3, scale: int = 1) -> int:
    return 9 * (cin * nf + nc * nf * nf + nf * cout * scale * scale)


def timed(fn, reps: int) -> float:
    fn()  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    spec = compact.spec_for(48, 16, 1)
    net = compact.build(spec).eval().to(dev)
    flop = 2 * macs_per_pixel(48, 16)
    print(f"Compact 48nf16nc, {sum(p.numel() for p in net.parameters())} parameters, "
          f"{flop / 1e6:.2f} MFLOP/pixel, device {dev}, torch {torch.__version__}")

    def report(label: str, seconds: float, pixels: int, ref: float | None) -> None:
        gflops = flop * pixels / seconds / 1e9
        ratio = f"  ×{ref / seconds:.2f} vs reference" if ref else ""
        print(f"{label:44} {seconds * 1000:9.1f} ms/frame  {1 / seconds:7.2f} fps  {gflops:7.1f} GFLOP/s{ratio}")

    side = args.size
    x = torch.rand(1, 3, side, side, device=dev)

    # Plain eager reference: what a straightforward script does (no_grad, NCHW, fp32).
    def reference():
        with torch.no_grad():
            net(x)

    ref = timed(reference, args.reps)
    report(f"reference eager fp32 {side}²", ref, side * side, None)

    def inference_mode():
        with torch.inference_mode():
            net(x)

    report("inference_mode", timed(inference_mode, args.reps), side * side, ref)

    net_cl = net.to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)

    def channels_last():
        with torch.inference_mode():
            net_cl(x_cl)

    report("inference_mode + channels_last", timed(channels_last, args.reps), side * side, ref)
    net.to(memory_format=torch.contiguous_format)

    if dev.type == "cpu":
        threads = torch.get_num_threads()
        for n in sorted({1, threads}):
            torch.set_num_threads(n)
            report(f"inference_mode, {n} thread(s)", timed(inference_mode, args.reps), side * side, ref)
        torch.set_num_threads(threads)
        import tempfile
        from pathlib import Path

        from engine.inference.chain import Chain, Stage
        from engine.models.files import save_safetensors

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "bench.safetensors"
            save_safetensors(path, net.state_dict(), spec)
            chain = Chain.load([Stage(str(path))], device="cpu")
            img = np.random.default_rng(0).random((side, side, 3), dtype=np.float32)
            report("project Chain.run (numpy in/out)", timed(lambda: chain.run(img), args.reps), side * side, ref)
    else:
        h, w = 1080, 1920
        xb = torch.rand(1, 3, h, w, device=dev)
        for dtype, name in ((torch.float32, "fp32"), (torch.float16, "fp16"), (torch.bfloat16, "bf16")):
            n = compact.build(spec).eval().to(dev, dtype).to(memory_format=torch.channels_last)
            inp = xb.to(dtype).contiguous(memory_format=torch.channels_last)

            def run_1080(n=n, inp=inp):
                with torch.inference_mode():
                    n(inp)

            report(f"1080p {name} channels_last", timed(run_1080, max(args.reps, 10)), h * w, None)
            for batch in (4,):
                inp_b = inp.repeat(batch, 1, 1, 1)

                def run_b(n=n, inp_b=inp_b):
                    with torch.inference_mode():
                        n(inp_b)

                sec = timed(run_b, max(args.reps, 5)) / batch
                report(f"1080p {name} channels_last batch {batch} (per frame)", sec, h * w, None)


if __name__ == "__main__":
    main()
