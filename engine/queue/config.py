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

Each key is declared once in :class:`QueueConfig` (engine.document); docs/daemon.md's key table is
made from those declarations.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import document
from engine.document import InvalidValue, integer, number, value
from engine.errors import ArchivistError
from engine.paths import archivist_home

log = logging.getLogger(__name__)

_GPU_INDEX = document.Key("integer", "", 0, None)


def _gpus(given: Any) -> str | list[int]:
    return given if given == "auto" else document.list_of(_GPU_INDEX, unique=True)(given)


def _hook(given: Any) -> list[str]:
    if isinstance(given, str):
        given = shlex.split(given)  # split like a shell would, but never run through one
    if not isinstance(given, list) or not given or not all(isinstance(h, str) and h for h in given):
        raise ValueError
    return list(given)


@dataclass
class QueueConfig:
    """The daemon's settings. :func:`load_config` returns them resolved: ``gpus`` a list of indices
    and ``cpu_slots`` a number; ``slots`` are the names the daemon schedules on."""

    gpus: str | list[int] = value("auto", "auto: one slot per CUDA GPU; or a list such as [0, 2]; [] for none",
                                  allowed=f"auto or {document.list_words(_GPU_INDEX, 'GPU indices', unique=True)}",
                                  convert=_gpus)
    cpu_slots: int | None = integer(None, 0, 64, "CPU slots; null: 1 when there is no GPU slot, else 0",
                                    optional=True)
    max_attempts: int = integer(3, 1, 100, "a job whose own work fails this many times is marked failed")
    poll_interval: float = number(1.0, 0.01, 60, "between the daemon's (and workers') looks at the database",
                                  unit="seconds")
    stop_grace: float = number(30.0, 0.1, 3600, "a worker gets this long to stop at a safe boundary before "
                               "it is killed", unit="seconds")
    hook: list[str] | None = value(None, "a command run once at the end of every job, without a shell",
                                   allowed="a command as a list of words or one string", convert=_hook,
                                   optional=True)
    hook_timeout: float = number(60.0, 0.1, 3600, "a hook that runs longer is killed", unit="seconds")

    @property
    def slots(self) -> list[str]:
        gpus = [] if self.gpus == "auto" else self.gpus
        cpu_slots = self.cpu_slots if self.cpu_slots is not None else (0 if gpus else 1)
        return [f"cuda:{g}" for g in gpus] + [f"cpu:{k}" for k in range(cpu_slots)]


def config_path() -> Path:
    return archivist_home() / "config.yaml"


def load_config(path: str | os.PathLike | None = None, detect_gpus: bool = True) -> QueueConfig:
    """Read and validate the ``queue`` section (a missing file or section means the defaults).

    ``gpus: auto`` counts CUDA devices with torch (only when ``detect_gpus``).
    """
    from engine.yamlfile import read_yaml

    path = Path(path) if path is not None else config_path()
    doc: dict = {}
    if path.exists():
        loaded = read_yaml(path, "config")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ArchivistError(f"{path}: expected a mapping at the top level")
        doc = loaded.get("queue") or {}
    cfg = document.build(QueueConfig, doc, source=str(path), prefix="queue")
    return _resolved(cfg, path, detect_gpus)


def _resolved(cfg: QueueConfig, path: Path, detect_gpus: bool) -> QueueConfig:
    """The rules between keys, and ``auto``/null turned into what the daemon runs with."""
    gpus = cfg.gpus
    if gpus == "auto":
        gpus = list(range(_count_cuda_devices())) if detect_gpus else []
    elif gpus and detect_gpus:  # a slot on a GPU the machine lacks would fail every job it took
        count = _count_cuda_devices()
        if max(gpus) >= count:
            allowed = (f"indices of this machine's CUDA GPUs, 0 to {count - 1}, or auto" if count else
                       "[] or auto: this machine has no CUDA GPU that PyTorch can use")
            raise InvalidValue("queue.gpus", cfg.gpus, allowed, str(path))
    cpu_slots = cfg.cpu_slots if cfg.cpu_slots is not None else (0 if gpus else 1)
    if not gpus and cpu_slots == 0:
        raise InvalidValue("queue.cpu_slots", 0, "an integer 1 to 64 when there is no GPU slot (else no job "
                           "would ever run)", str(path))
    hook = cfg.hook
    if hook is not None and os.sep in hook[0] and not os.path.isabs(hook[0]):
        # The daemon runs in "/": a relative program path is read from the config file's folder.
        hook = [os.path.abspath(os.path.join(path.parent, os.path.expanduser(hook[0]))), *hook[1:]]
    return dataclasses.replace(cfg, gpus=gpus, cpu_slots=cpu_slots, hook=hook)


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
