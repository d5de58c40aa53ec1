"""The job queue: an SQLite store, a daemon that runs one worker process per job, job kinds, a client API.

Public API::

    from engine.queue import QueueClient
    with QueueClient() as q:
        job_id = q.submit("restore", {"input": "reel1/", "output": "out/", "models": ["medium"]},
                          priority=5, device="any", after=None)
        q.pause(job_id); q.resume(job_id); q.cancel(job_id); q.retry(job_id)

    from engine.queue.daemon import start_daemon, stop_daemon, daemon_status, run_daemon

The store (:mod:`engine.queue.store`) is the single source of truth; clients never need the daemon.
"""

from engine.queue.client import QueueClient, check_device_request
from engine.queue.store import FINAL_STATUSES, STATUSES, Job, Store

__all__ = ["FINAL_STATUSES", "STATUSES", "Job", "QueueClient", "Store", "check_device_request"]
