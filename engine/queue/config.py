"""The daemon's settings: the ``queue:`` section of ``ARCHIVIST_HOME/config.yaml``.

```yaml
queue:
  gpus: auto            # auto (every CUDA GPU), a list of indices such as [0, 2], or [] for none
  cpu_slots: 1          # default: 1 when there is no GPU slot, else 0
  max_attempts: 3       # a job whose own work fails this many times is marked failed
  poll_interval: 1.0    # seconds between the daemon's (and workers') looks at the store
  stop_grace: 30        # seconds a worker gets to stop at a safe boundary before SIGKILL
  hook: [/usr/local/bin/notify-job, --quiet]   # optional; run without a shell at job end
  hook_timeout: 60
```
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ArchivistError
from engine.paths import archivist_home

log = logging.getLogger(__name__)

KEYS = ("gpus", "cpu_slots", "max_attempts", "poll_interval", "stop_grace", "hook", "hook_timeout")


@dataclass
class QueueConfig:
    """Validated daemon settings; ``slots`` are the names the daemon schedules on."""

    gpus: list[int] = field(default_factory=list)
    cpu_slots: int = 1
    max_attempts: int = 3
    poll_interval: float = 1.0
    stop_grace: float = 30.0
    hook: list[str] | None = None
    hook_timeout: float = 60.0

    @property
    def slots(self) -> list[str]:
        return [f"cuda:{g}" for g in self.gpus] + [f"cpu:{k}" for k in range(self.cpu_slots)]


def config_path() -> Path:
    return archivist_home() / "config.yaml"


def load_config(path: str | os.PathLike | None = None, detect_gpus: bool = True) -> QueueConfig:
    """Read and validate the ``queue`` section (a missing file or section means the defaults).

    ``gpus: auto`` counts CUDA devices with torch (only when ``detect_gpus``).
    """
    import yaml

    path = Path(path) if path is not None else config_path()
    doc: dict = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ArchivistError(f"{path}: cannot read: {exc}") from None
        except yaml.YAMLError as exc:
            raise ArchivistError(f"{path}: invalid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ArchivistError(f"{path}: expected a mapping at the top level")
        doc = loaded.get("queue") or {}
        if not isinstance(doc, dict):
            raise ArchivistError(f"{path}: queue: expected a mapping")
    unknown = sorted(set(doc) - set(KEYS))
    if unknown:
        raise ArchivistError(f"{path}: queue.{unknown[0]}: unknown key; allowed are {', '.join(KEYS)}")

    def where(key: str) -> str:
        return f"{path}: queue.{key}"

    gpus_value = doc.get("gpus", "auto")
    if gpus_value == "auto":
        gpus = list(range(_count_cuda_devices())) if detect_gpus else []
    elif isinstance(gpus_value, list) and all(isinstance(g, int) and not isinstance(g, bool) and g >= 0
                                              for g in gpus_value):
        if len(set(gpus_value)) != len(gpus_value):
            raise ArchivistError(f"{where('gpus')}: {gpus_value} lists a GPU twice")
        gpus = list(gpus_value)
    else:
        raise ArchivistError(f"{where('gpus')}: {gpus_value!r} invalid: allowed are auto or a list of GPU indices")

    cpu_slots = doc.get("cpu_slots", 0 if gpus else 1)
    _check_int(where("cpu_slots"), cpu_slots, 0, 64)
    if not gpus and cpu_slots == 0:
        raise ArchivistError(f"{where('cpu_slots')}: 0 with no GPU slot would never run a job: allowed 1 to 64")
    max_attempts = doc.get("max_attempts", 3)
    _check_int(where("max_attempts"), max_attempts, 1, 100)
    poll = _check_number(where("poll_interval"), doc.get("poll_interval", 1.0), 0.01, 60)
    grace = _check_number(where("stop_grace"), doc.get("stop_grace", 30.0), 0.1, 3600)
    hook_timeout = _check_number(where("hook_timeout"), doc.get("hook_timeout", 60.0), 0.1, 3600)
    hook = doc.get("hook")
    if hook is not None:
        if isinstance(hook, str):
            hook = shlex.split(hook)  # split like a shell would, but never run through one
        if not isinstance(hook, list) or not hook or not all(isinstance(h, str) and h for h in hook):
            raise ArchivistError(f"{where('hook')}: expected a command as a list of strings (or one string)")
        if os.sep in hook[0] and not os.path.isabs(hook[0]):
            # The daemon runs in "/": a relative program path is read from the config file's folder.
            hook = [os.path.abspath(os.path.join(path.parent, os.path.expanduser(hook[0]))), *hook[1:]]
    return QueueConfig(gpus=gpus, cpu_slots=cpu_slots, max_attempts=max_attempts, poll_interval=poll,
                       stop_grace=grace, hook=hook, hook_timeout=hook_timeout)


def _check_int(where: str, value, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ArchivistError(f"{where}: {value!r} invalid: allowed an integer {lo} to {hi}")


def _check_number(where: str, value, lo: float, hi: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
        raise ArchivistError(f"{where}: {value!r} invalid: allowed a number {lo:g} to {hi:g}")
    return float(value)


def _count_cuda_devices() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception as exc:  # a broken CUDA install must not stop a CPU queue
        log.warning("cannot count CUDA devices (%s): no GPU slots", exc)
        return 0
