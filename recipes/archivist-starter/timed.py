"""Train a config until a wall-clock budget is spent, then checkpoint and stop (for a lent GPU).

    python recipes/archivist-starter/timed.py CONFIG.yaml SECONDS

The iteration it stopped at is printed; ``archivist train CONFIG.yaml --stop-at N`` repeats it.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.train import run_training  # noqa: E402


def main() -> int:
    config, seconds = sys.argv[1], float(sys.argv[2])
    deadline = time.monotonic() + seconds
    result = run_training(config, should_stop=lambda: "pause" if time.monotonic() > deadline else None)
    print(f"stopped at iteration {result.iteration} ({result.status}); checkpoint {result.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
