"""Start-up time of the TUI to its first screen, and its idle CPU with the queue open.

    python benchmarks/bench_tui_startup.py [--runs 5] [--idle 10]

Runs ``archivist`` in a private tmux server (120×40) against a temporary ARCHIVIST_HOME and
polls ``capture-pane`` every 10 ms until the Queue screen shows its table: that is start-up to
first screen (goal < 1.5 s). Then, with a job store holding one running job whose progress row is
updated twice a second (as a worker does), it measures the TUI process's CPU over ``--idle``
seconds with psutil (goal < 2 % of a core).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True).stdout


def start(socket: str, home: Path) -> tuple[float, float]:
    """Wall seconds to the first screen, and the CPU seconds the TUI process spent to get there."""
    t0 = time.perf_counter()
    tmux(socket, "new-session", "-d", "-s", "tui", "-x", "120", "-y", "40", "-e", f"ARCHIVIST_HOME={home}",
         "-e", f"PYTHONPATH={ROOT}", f"exec {sys.executable} -m archivist_tui.cli")
    while time.perf_counter() - t0 < 30:
        screen = tmux(socket, "capture-pane", "-p", "-t", "tui")
        if "1 Queue" in screen and "KIND" in screen and "PROGRESS" in screen:
            wall = time.perf_counter() - t0
            pid = int(tmux(socket, "list-panes", "-t", "tui", "-F", "#{pane_pid}").split()[0])
            cpu = psutil.Process(pid).cpu_times()
            return wall, cpu.user + cpu.system
        time.sleep(0.01)
    raise SystemExit("the Queue screen never appeared")


def make_store(home: Path) -> None:
    """One restore job running at 0 of 10,000 frames, in a store made by the engine."""
    from engine.queue.store import Store

    with Store(home / "queue.db") as store:
        job = store.insert_job("restore", {"input": "reel.mkv", "output": "out.mkv", "models": ["medium"]})
        store.update(job, status="running", slot="cpu", done=0, total=10000, rate=40, eta=250)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--idle", type=float, default=10.0)
    args = p.parse_args()
    socket = f"archivist-bench-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        times, cpus = [], []
        try:
            for _ in range(args.runs):
                wall, cpu = start(socket, home)
                times.append(wall)
                cpus.append(cpu)
                tmux(socket, "kill-server")
                time.sleep(0.3)
            print(f"start-up to first screen: median {statistics.median(times):.2f} s "
                  f"(min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs; goal < 1.5 s); "
                  f"CPU time to get there: median {statistics.median(cpus):.2f} s")
            print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

            make_store(home)
            start(socket, home)
            pid = int(tmux(socket, "list-panes", "-t", "tui", "-F", "#{pane_pid}").split()[0])
            proc = psutil.Process(pid)
            time.sleep(2.0)  # let the first polls settle
            from engine.queue.store import Store

            store = Store(home / "queue.db")
            proc.cpu_percent()
            t0 = time.perf_counter()
            done = 0
            while time.perf_counter() - t0 < args.idle:
                done += 20
                store.execute("UPDATE jobs SET done = ?, eta = ? WHERE id = 1", (done, (10000 - done) / 40))
                time.sleep(0.5)
            cpu = proc.cpu_percent()
            store.close()
            print(f"idle CPU with the queue open and one job running: {cpu:.1f} % of a core "
                  f"over {args.idle:.0f} s (goal < 2 %)")
        finally:
            tmux(socket, "kill-server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
