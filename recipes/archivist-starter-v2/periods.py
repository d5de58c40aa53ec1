"""Train a config for one period of wall-clock time, resuming its run if it exists, and log the period.

    python recipes/archivist-starter-v2/periods.py CONFIG.yaml SECONDS

Starts the run (or resumes it from its latest checkpoint: bit-exact, the batches are a pure
function of the iteration), trains until SECONDS have passed, checkpoints and stops. Each period
appends one JSON line to ``periods.jsonl`` next to the config: iterations from and to, seconds,
iterations per second, the device and the machine, so the note on the training can give
iterations per period, the hardware and the times. Run it again for the next period.
"""

import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.train import load_config, run_training  # noqa: E402
from engine.train.runs import list_checkpoints, read_state, run_dir  # noqa: E402


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    config, seconds = Path(sys.argv[1]), float(sys.argv[2])
    name = load_config(config).name
    checkpoints = list_checkpoints(run_dir(name, must_exist=False))
    resume = bool(checkpoints)
    # A resumed run starts from its latest checkpoint, which a killed period may have left behind the
    # iteration its state last reported.
    start_iter = checkpoints[-1][0] if resume else 0
    started, t0 = time.time(), time.monotonic()
    deadline = t0 + seconds
    result = run_training(config, resume=resume,
                          should_stop=lambda: "pause" if time.monotonic() > deadline else None)
    elapsed = time.monotonic() - t0
    state = read_state(run_dir(name))
    record = {
        "run": name, "from": start_iter, "to": result.iteration, "status": result.status,
        "seconds": round(elapsed, 1), "it_per_s": round((result.iteration - start_iter) / max(elapsed, 1e-9), 3),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "device": state.get("device"), "precision": state.get("precision"),
        "cpu": _cpu(), "cores": os.cpu_count(), "load": round(os.getloadavg()[0], 2),
    }
    with open(config.resolve().parent / "periods.jsonl", "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    print(f"{name}: iterations {start_iter} -> {result.iteration} ({result.status}) in {elapsed:.0f} s, "
          f"{record['it_per_s']} it/s; checkpoint {result.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
