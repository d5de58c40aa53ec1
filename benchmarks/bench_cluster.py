"""Per-segment overhead of a cluster restore against a local one, on the same clip.

    python benchmarks/bench_cluster.py [--size 256x144] [--frames 120] [--segment-frames 20]
                                       [--nf 8 --nc 2] [--repeat 2]

Needs the cluster extra (``pip install "archivist[cluster]"``). In a temporary ARCHIVIST_HOME it
generates an x264 clip, restores it through a fresh Compact into FFV1 once on this machine
(``restore_video``) and once on a local Ray cluster started here (``cluster="local"``: 127.0.0.1,
2 worker CPUs), best of ``--repeat`` each, checks that both files hold the same frames, and prints:

  start         seconds to start the local cluster (paid once per run of ``--cluster local``);
  local         seconds for the local run; cluster: for the cluster run, cluster already up;
  per segment   (cluster - local) / segments: what one segment costs more as a Ray task (the
                packet index, the object store both ways, the worker's model load, the writes);
  travels       bytes sent to the workers (packets from each segment's keyframe) and back
                (encoded segments), against the source's and the output's size.

On a machine of 2 CPUs the two paths share the same two cores: the figure is overhead, not the
speed-up a cluster of several servers gives.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="256x144")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--segment-frames", type=int, default=20)
    ap.add_argument("--nf", type=int, default=8)
    ap.add_argument("--nc", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["ARCHIVIST_HOME"] = str(tmp / "home")
        os.environ["HOME"] = str(tmp)  # Ray's token file (~/.ray/auth_token) stays in here
        import torch

        from engine.cluster import check_address, start_local
        from engine.inference.chain import Chain, Stage
        from engine.models import compact
        from engine.models.files import save_safetensors
        from engine.video.options import VideoOptions
        from engine.video.packets import build_index, plan_segments, read_bundle
        from engine.video.restore import restore_video
        from engine.video.synthetic import write_test_clip

        torch.manual_seed(0)
        spec = compact.spec_for(args.nf, args.nc, 1)
        model = tmp / "bench.safetensors"
        save_safetensors(model, compact.build(spec).eval().state_dict(), spec, role="custom")
        chain = Chain.load([Stage(str(model))], device="cpu", precision="fp32")
        src = write_test_clip(tmp / "clip.mp4", frames=args.frames, width=width, height=height,
                              options={"g": "48", "bf": "2"})
        options = VideoOptions(segment_frames=args.segment_frames)

        def best(cluster, name):
            times = []
            for i in range(args.repeat):
                out = tmp / f"{name}{i}.mkv"
                started = time.perf_counter()
                result = restore_video(src, out, chain, options, cluster=cluster)
                times.append(time.perf_counter() - started)
            return min(times), result, out

        local, result, local_out = best(None, "local")
        check_address("local")
        started = time.perf_counter()
        ray = start_local()
        start = time.perf_counter() - started
        try:
            cluster, _, cluster_out = best("local", "cluster")
        finally:
            ray.shutdown()

        import av
        import numpy as np

        def frames(path):
            with av.open(str(path)) as c:
                return [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]

        same = all(a[0] == b[0] and np.array_equal(a[1], b[1]) for a, b in zip(frames(local_out), frames(cluster_out)))
        index = build_index(src)
        sent = sum(len(p[0]) for seg in plan_segments(index, None, 0, args.segment_frames, 0)
                   for p in read_bundle(index, seg))
        segments = result.segments_done
        print(f"clip {width}x{height}, {args.frames} frames, {segments} segments of {args.segment_frames}, "
              f"Compact nf {args.nf} nc {args.nc}, torch threads {torch.get_num_threads()}")
        print(f"start         {start:.2f} s (local cluster, once)")
        print(f"local         {local:.2f} s   ({local / segments * 1000:.0f} ms per segment)")
        print(f"cluster       {cluster:.2f} s   ({cluster / segments * 1000:.0f} ms per segment)")
        print(f"per segment   {(cluster - local) / segments * 1000:+.0f} ms")
        print(f"travels       {sent / 1e3:.0f} kB of packets out (source {src.stat().st_size / 1e3:.0f} kB), "
              f"{local_out.stat().st_size / 1e3:.0f} kB of segments back")
        print(f"identical     {same}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
