"""One worker process runs one claimed job: ``python -m engine.queue.worker JOB_ID TOKEN ...``.

The daemon starts it without a shell, with stdout/stderr going to ``jobs/<id>/log`` and
``CUDA_VISIBLE_DEVICES`` naming only its GPU. The worker writes its pid, heartbeats and progress
into the store, watches for pause/cancel requests, and writes the job's next status itself:

- complete → ``done``;
- stopped at a safe boundary → ``paused`` (pause request), ``cancelled`` with partial output removed
  (cancel request), or back to ``queued`` (SIGTERM/SIGINT from a stopping daemon: resumed later);
- an exception → one failed attempt: ``queued`` again until ``max_attempts``, then ``failed``.

Every write carries the claim token, so a worker whose job was taken over can change nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from engine.errors import ArchivistError
from engine.queue.kinds import JobContext, get_kind
from engine.queue.store import Store, private_dirs

log = logging.getLogger("archivist.worker")

PROGRESS_INTERVAL = 0.5  # seconds between progress writes


class _Runner:
    def __init__(self, job_id: int, token: str, device: str, max_attempts: int, poll: float):
        self.job_id = job_id
        self.token = token
        self.device = device
        self.max_attempts = max_attempts
        self.poll = poll
        self.store = Store()
        self.stop = threading.Event()
        self.interrupted = False  # SIGTERM/SIGINT: the daemon is stopping
        self.lost = False  # the job was taken from us (token changed, job removed)
        self._run_start = time.monotonic()
        self._first_done: float | None = None
        self._last_write = 0.0
        self._last_reported: tuple[float, float | None] | None = None  # (done, total) last given to progress()

    # -- signals and heartbeat ---------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self.interrupted = True
        self.stop.set()

    def _heartbeat(self) -> None:
        store = Store(self.store.path)
        try:
            while True:
                try:
                    rows = store._query("SELECT token, request FROM jobs WHERE id = ?", (self.job_id,))
                    if not rows or rows[0]["token"] != self.token:
                        self.lost = True
                        self.stop.set()
                        return
                    if rows[0]["request"] in ("pause", "cancel"):
                        self.stop.set()
                    store.update(self.job_id, self.token, heartbeat=time.time())
                except ArchivistError as exc:
                    log.warning("heartbeat: %s", exc)
                if self._finished.wait(self.poll):
                    return
        finally:
            store.close()

    # -- progress ------------------------------------------------------------------------------
    def progress(self, done: float, total: float) -> None:
        now = time.monotonic()
        self._last_reported = (done, total)
        if self._first_done is None:
            self._first_done = done
            self._rate_start = now
        if now - self._last_write < PROGRESS_INTERVAL and done < total:
            return
        self._last_write = now
        elapsed = now - self._rate_start
        rate = (done - self._first_done) / elapsed if elapsed > 0 else None
        eta = (total - done) / rate if rate and total else None
        try:
            self.store.update(self.job_id, self.token, done=float(done), total=float(total), rate=rate, eta=eta,
                              heartbeat=time.time())
        except ArchivistError as exc:
            log.warning("progress: %s", exc)

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> int:
        job = self.store.find(self.job_id)
        if job is None or job.token != self.token or job.status != "running":
            log.warning("job %d is not mine to run (taken over or removed); exiting", self.job_id)
            return 0
        import psutil

        if not self.store.update(self.job_id, self.token, worker_pid=os.getpid(),
                                 worker_started=psutil.Process().create_time(),
                                 event=f"worker {os.getpid()} started on {job.slot} (device {self.device})",
                                 source="worker"):
            log.warning("job %d was taken back before this worker started; exiting", self.job_id)
            return 0
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._finished = threading.Event()
        beat = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        beat.start()
        work_dir = Path(job.log_path).parent if job.log_path else self.store.path.parent / "jobs" / str(job.id)
        private_dirs(work_dir)
        kind = None
        ctx = JobContext(job_id=job.id, device=self.device, work_dir=work_dir, progress=self.progress,
                         should_stop=self.stop.is_set,
                         event=lambda message: self.store.update(job.id, self.token, event=message, source="worker"))
        log.info("job %d (%s) attempt %d of %d, spec %s", job.id, job.kind, job.attempts + 1,
                 self.max_attempts, job.spec)
        try:
            kind = get_kind(job.kind)
            outcome = kind.run(job.spec, ctx)
            complete, error = outcome is True, None
        except Exception as exc:  # the job's own work failed: one attempt
            outcome = complete = False
            error = str(exc) if isinstance(exc, ArchivistError) else f"{type(exc).__name__}: {exc}"
            log.error("job %d failed: %s\n%s", job.id, error, traceback.format_exc())
        self._finished.set()
        beat.join(timeout=5)
        if self.lost:
            log.warning("job %d was taken from this worker; leaving its state alone", job.id)
            return 0
        asked = outcome if outcome in ("pause", "cancel") else None
        self._finish(job, kind, complete, error, work_dir, asked)
        return 0

    def _finish(self, job, kind, complete: bool, error: str | None, work_dir: Path, asked: str | None = None) -> None:
        now = time.time()
        current = self.store.find(job.id)
        request = current.request if current is not None else None
        request = asked or request  # the job itself stopped for a pause or a stop (e.g. `runs pause`)
        common = dict(worker_pid=None, worker_started=None, request=None, request_at=None, source="worker")
        if complete:
            if current is not None and current.total:
                common["done"] = current.total
            self.store.update(job.id, self.token, status="done", finished_at=now, error=None,
                              eta=0.0, hook_pending=1, event="done", **common)
            log.info("job %d done", job.id)
        elif request == "cancel":
            if kind is not None:
                kind.cleanup(job.spec, work_dir)
            self.store.update(job.id, self.token, status="cancelled", finished_at=now, slot=None,
                              hook_pending=1, event="cancelled; partial output removed" if asked is None
                              else "stopped by its run (archivist runs stop); checkpoints kept", **common)
            log.info("job %d cancelled", job.id)
        elif error is not None:
            attempts = job.attempts + 1
            if attempts >= self.max_attempts:
                self.store.update(job.id, self.token, status="failed", finished_at=now, slot=None, attempts=attempts,
                                  error=error, hook_pending=1,
                                  event=f"failed (attempt {attempts} of {self.max_attempts}): {error}", **common)
            else:
                status = "paused" if request == "pause" else "queued"
                self.store.update(job.id, self.token, status=status, slot=None, attempts=attempts, error=error,
                                  event=f"attempt {attempts} of {self.max_attempts} failed: {error}; {status} again",
                                  **common)
        elif request == "pause":
            self.store.update(job.id, self.token, status="paused", slot=None, rate=None, eta=None,
                              event="paused at a safe boundary", **self._kept_progress(), **common)
            log.info("job %d paused", job.id)
        else:
            self.store.update(job.id, self.token, status="queued", slot=None, rate=None, eta=None,
                              event="stopped by the daemon; queued to resume", **self._kept_progress(), **common)
            log.info("job %d stopped (daemon stopping); queued to resume", job.id)

    def _kept_progress(self) -> dict[str, float]:
        """The last progress the job reported (writes are throttled): a kind reports a unit once it is
        kept (a video frame in a segment a pause closes), so a stopped job shows all it kept."""
        if self._last_reported is None:
            return {}
        done, total = self._last_reported
        return {"done": float(done)} | ({"total": float(total)} if total else {})


def main(argv: list[str] | None = None) -> int:
    """Entry point of a worker process (started by the daemon, never by hand)."""
    parser = argparse.ArgumentParser(prog="archivist-worker")
    parser.add_argument("job_id", type=int)
    parser.add_argument("token")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument("--poll", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s worker[%(process)d] %(levelname)s %(name)s: %(message)s")
    try:
        return _Runner(args.job_id, args.token, args.device, args.max_attempts, args.poll).run()
    except ArchivistError as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
