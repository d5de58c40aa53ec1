"""How long a pause of a queued video restore takes, and how many restored frames it keeps.

    python benchmarks/bench_pause.py [--size 256x144] [--nf 48 --nc 16] [--segment-frames 100]
                                     [--pause-at 60] [--frames 150]

In a temporary ARCHIVIST_HOME with the daemon's default settings (poll_interval 1 s, stop_grace
30 s, one CPU slot), it queues a restore of a generated clip through a fresh Compact (FFV1, the
given segment length), starts the daemon, asks for a pause once the job has restored
``--pause-at`` frames (in the middle of a segment), and prints:

  seconds      from the pause request to the job being `paused`;
  restored     frames the job had reported when the pause was asked;
  kept         frames in the segments state.json records (what a resume does not redo);
  how          the job's last event (paused by the worker itself, or killed after stop_grace).

Run against another checkout with ``PYTHONPATH=/that/checkout python /copy/of/bench_pause.py``
(the script then puts no tree of its own first on the path).
"""

from __future__ import annotations

import argparse
import json
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
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--nf", type=int, default=48)
    ap.add_argument("--nc", type=int, default=16)
    ap.add_argument("--segment-frames", type=int, default=100)
    ap.add_argument("--pause-at", type=int, default=60, help="frames restored when the pause is asked")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    import torch

    from archivist_tui.cli import main as cli
    from engine.models import compact
    from engine.models.files import save_safetensors
    from engine.queue import QueueClient, Store
    from engine.queue.daemon import start_daemon, stop_daemon
    from engine.video.synthetic import write_test_clip

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        home = tmp / "home"
        home.mkdir()
        os.environ["ARCHIVIST_HOME"] = str(home)
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        (home / "config.yaml").write_text("queue:\n  gpus: []\n  cpu_slots: 1\n")
        torch.manual_seed(0)
        spec = compact.spec_for(args.nf, args.nc, 1)
        save_safetensors(tmp / "m.safetensors", compact.build(spec).state_dict(), spec, role="custom")
        src = write_test_clip(tmp / "clip.mkv", frames=args.frames, width=width, height=height,
                              options={"preset": "veryfast"})
        out = tmp / "out.mkv"
        if cli(["restore", str(src), "-o", str(out), "-m", str(tmp / "m.safetensors"), "--queue", "--device", "cpu",
                "--segment-frames", str(args.segment_frames), "--codec", "ffv1"]) != 0:
            return 1
        jid = Store().jobs()[-1].id
        start_daemon()
        try:
            deadline = time.monotonic() + args.timeout
            started = None
            while time.monotonic() < deadline:
                job = Store().get(jid)
                if started is None and (job.done or 0) > 0:
                    started = (time.monotonic(), job.done)
                if (job.done or 0) >= args.pause_at or job.status not in ("running", "queued"):
                    break
                time.sleep(0.05)
            restored = Store().get(jid).done or 0
            with QueueClient() as q:
                q.pause(jid)
            asked = time.monotonic()
            while time.monotonic() < deadline and Store().get(jid).status == "running":
                time.sleep(0.05)
            seconds = time.monotonic() - asked
            job = Store().get(jid)
            with Store() as s:
                last = [e.message for e in s.events(jid)][-1]
            kept = 0
            for state in (home / "jobs" / str(jid) / "video").glob("*/state.json"):
                kept = sum(seg["frames"] for seg in json.loads(state.read_text())["segments"])
        finally:
            stop_daemon(timeout=60)
    fps = (restored - started[1]) / (asked - started[0]) if started and asked > started[0] else 0.0
    print(f"clip {width}x{height}, Compact {args.nf}nf{args.nc}nc on the CPU ({fps:.2f} fps), FFV1, "
          f"segments of {args.segment_frames}, pause asked at frame {restored}")
    print(f"seconds {seconds:.1f}  restored {restored}  kept {kept}  status {job.status}  progress {job.done:g}  "
          f"how: {last}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
