"""The job queue: an SQLite store, a daemon that runs one worker process per job, job kinds, a client API.

Public API::

    from engine.queue import QueueClient
    with QueueClient() as q:
        job_id = q.submit("restore", {"input": "reel1/", "output": "out/", "models": ["medium"]},
                          priority=5, device="any", after=None)
        q.pause(job_id); q.resume(job_id); q.cancel(job_id); q.retry(job_id)

    from engine.queue.daemon import start_daemon, stop_daemon, daemon_status, run_daemon

The store (:mod:`engine.queue.store`) is the single source of truth; clients never need the daemon.
The names here are imported on first use, so a reader of the store alone (the TUI's poll) does not
pay for the client and the job kinds.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"QueueClient": "engine.queue.client", "check_device_request": "engine.queue.client",
            "FINAL_STATUSES": "engine.queue.store", "STATUSES": "engine.queue.store",
            "Job": "engine.queue.store", "Store": "engine.queue.store"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine.queue' has no attribute {name!r}")
