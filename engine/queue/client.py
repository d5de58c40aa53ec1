"""The client API over the store, used by the CLI and the TUI. The daemon need not be running.

Commands travel through the store: a queued or paused job changes at once; a running job gets a
request (``pause``/``cancel``) that its worker sees at its next safe boundary (the daemon kills a
worker that ignores it for ``stop_grace`` seconds).
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

from engine.document import InvalidValue
from engine.errors import ArchivistError
from engine.queue.kinds import get_kind
from engine.queue.store import FINAL_STATUSES, Job, Store, add_events, check_one_writer

log = logging.getLogger(__name__)

DEVICE_REQUESTS = "any, cpu or cuda:N"


def check_device_request(device: str) -> str:
    """Validate what a job asks for: ``any``, ``cpu`` or ``cuda:N`` (``cuda`` means ``cuda:0``)."""
    name = (device or "any").strip().lower()
    if name == "auto":
        name = "any"
    if name == "cuda":
        name = "cuda:0"
    if name in ("any", "cpu") or re.fullmatch(r"cuda:\d+", name):
        return name
    raise InvalidValue("device", device, DEVICE_REQUESTS)


class QueueClient:
    """Submit and steer jobs. Every method is one or two short transactions on ``queue.db``."""

    def __init__(self, store: Store | None = None):
        self.store = store or Store()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> QueueClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- adding and reading -------------------------------------------------------------------
    def submit(self, kind: str, spec: dict, priority: int = 0, device: str = "any", after: int | None = None) -> int:
        """Validate ``spec`` for ``kind`` and queue it; returns the new job id."""
        job_kind = get_kind(kind)
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise ArchivistError(f"invalid priority {priority!r}: allowed an integer")
        device = check_device_request(device)
        spec = job_kind.validate(spec)  # the spec last: it reads the input and the output's folder
        return self.store.insert_job(kind, spec, priority=priority, device=device, after_id=after,
                                     output=job_kind.output(spec))

    def list_jobs(self, status: str | None = None) -> list[Job]:
        """Jobs in id order, optionally only those with ``status``."""
        return self.store.jobs(status)

    def get(self, job_id: int) -> Job:
        return self.store.get(job_id)

    def events(self, job_id: int | None = None, limit: int = 100) -> list:
        """The newest events (of one job, or of the whole queue), oldest first."""
        return self.store.events(job_id, limit=limit)

    def log_path(self, job_id: int) -> Path:
        job = self.store.get(job_id)
        return Path(job.log_path)

    # -- steering -----------------------------------------------------------------------------
    def cancel(self, job_id: int) -> str:
        """Cancel a job: at once when queued/paused, else ask its worker. The kind removes what the job
        created (its ledger lists it; a job that never ran created nothing) and nothing else.

        Returns the status the job has now (``cancelled``, or ``running`` while the worker stops).
        """
        job = self.store.get(job_id)
        if job.status in FINAL_STATUSES:
            raise ArchivistError(f"job #{job_id} has already ended ({job.status})")
        now = time.time()
        if self.store.execute(
            "UPDATE jobs SET status = 'cancelled', finished_at = ?, updated_at = ?, hook_pending = 1, slot = NULL,"
            " request = NULL WHERE id = ? AND status IN ('queued', 'paused')", (now, now, job_id)
        ):
            self.store.add_event(job_id, "client", "cancelled")
            self._cleanup(job)
            return "cancelled"
        if self.store.execute("UPDATE jobs SET request = 'cancel', request_at = ?, updated_at = ?"
                              " WHERE id = ? AND status = 'running'", (now, now, job_id)):
            self.store.add_event(job_id, "client", "cancel requested")
            return "running"
        return self.cancel(job_id)  # it changed under us (finished or was claimed): look again

    def _cleanup(self, job: Job) -> None:
        try:
            get_kind(job.kind).cleanup(job.spec, Path(job.log_path).parent)
        except ArchivistError as exc:
            log.warning("job %d: %s", job.id, exc)

    def pause(self, job_id: int) -> str:
        """Pause a job: a queued one at once, a running one at its worker's next safe boundary."""
        job = self.store.get(job_id)
        if job.status in FINAL_STATUSES:
            raise ArchivistError(f"job #{job_id} has already ended ({job.status})")
        if job.status == "paused":
            return "paused"
        now = time.time()
        if self.store.execute("UPDATE jobs SET status = 'paused', updated_at = ? WHERE id = ? AND status = 'queued'",
                              (now, job_id)):
            self.store.add_event(job_id, "client", "paused")
            return "paused"
        if self.store.execute("UPDATE jobs SET request = 'pause', request_at = ?, updated_at = ?"
                              " WHERE id = ? AND status = 'running' AND request IS NULL", (now, now, job_id)):
            self.store.add_event(job_id, "client", "pause requested")
            return "running"
        job = self.store.get(job_id)
        if job.status == "running":  # a cancel is already pending: it wins
            return "running"
        return self.pause(job_id)

    def resume(self, job_id: int) -> str:
        """Queue a paused job again (a running job with a pending pause keeps running)."""
        job = self.store.get(job_id)
        if job.status in FINAL_STATUSES:
            raise ArchivistError(f"job #{job_id} has ended ({job.status}); use retry to run it again")
        now = time.time()
        if self.store.execute("UPDATE jobs SET status = 'queued', updated_at = ? WHERE id = ? AND status = 'paused'",
                              (now, job_id)):
            self.store.add_event(job_id, "client", "resumed")
            return "queued"
        if self.store.execute("UPDATE jobs SET request = NULL, request_at = NULL, updated_at = ?"
                              " WHERE id = ? AND status = 'running' AND request = 'pause'", (now, job_id)):
            self.store.add_event(job_id, "client", "pause withdrawn")
        return self.store.get(job_id).status

    def resume_run(self, name: str, config: str | None = None, priority: int = 0,
                   device: str = "any") -> tuple[int, str]:
        """Continue training run ``name`` through the queue, with one job per run.

        A paused train job of the run is queued again; a queued or running one is left as it is;
        only when the run has no live job is a new ``train`` job submitted (it resumes from the
        run's latest checkpoint). Returns ``(job id, what happened)`` with what happened one of
        ``resumed``, ``queued``, ``running`` (nothing to do) or ``submitted``.
        """
        from engine.train.runs import run_dir

        rdir = run_dir(name)  # a clear error listing the runs when there is no such run
        live = [j for j in self.store.jobs() if j.kind == "train" and j.spec.get("name") == name
                and j.status not in FINAL_STATUSES]
        waiting = [j for j in live if j.status in ("queued", "running")]
        if waiting:  # already on its way: a second job would train the same run twice
            return waiting[0].id, waiting[0].status
        if live:
            job = min(live, key=lambda j: j.id)
            self.resume(job.id)
            return job.id, "resumed"
        spec = {"config": config or str(rdir / "config.yaml"), "name": name, "resume": True}
        return self.submit("train", spec, priority=priority, device=device), "submitted"

    def pause_all(self) -> list[int]:
        """Pause every queued and running job, in one transaction; returns their ids.

        Queued jobs are paused at once, running ones get a pause request (a pending cancel wins); jobs
        that have ended meanwhile are simply not among them.
        """
        now = time.time()
        with self.store.transaction() as conn:
            queued = [r[0] for r in conn.execute(
                "UPDATE jobs SET status = 'paused', updated_at = ? WHERE status = 'queued' RETURNING id", (now,))]
            asked = [r[0] for r in conn.execute(
                "UPDATE jobs SET request = 'pause', request_at = ?, updated_at = ?"
                " WHERE status = 'running' AND request IS NULL RETURNING id", (now, now))]
            pending = [r[0] for r in conn.execute(
                "SELECT id FROM jobs WHERE status = 'running' AND request IS NOT NULL")]
            add_events(conn, queued, "client", "paused")
            add_events(conn, asked, "client", "pause requested")
        return sorted({*queued, *asked, *pending})

    def resume_all(self) -> list[int]:
        """Queue every paused job again and withdraw every pending pause (as :meth:`resume` does for
        one job), in one transaction; returns their ids.

        A job still ``pausing`` right after ``pause --all`` is part of "all": skipping it left it
        paused once its worker stopped.
        """
        now = time.time()
        with self.store.transaction() as conn:
            ids = [r[0] for r in conn.execute(
                "UPDATE jobs SET status = 'queued', updated_at = ? WHERE status = 'paused' RETURNING id", (now,))]
            withdrawn = [r[0] for r in conn.execute(
                "UPDATE jobs SET request = NULL, request_at = NULL, updated_at = ?"
                " WHERE status = 'running' AND request = 'pause' RETURNING id", (now,))]
            add_events(conn, ids, "client", "resumed")
            add_events(conn, withdrawn, "client", "pause withdrawn")
        return sorted({*ids, *withdrawn})

    def retry(self, job_id: int) -> None:
        """Queue a failed or cancelled job again with a fresh attempt count."""
        job = self.store.get(job_id)
        if job.status not in ("failed", "cancelled"):
            raise ArchivistError(f"job #{job_id} is {job.status}: only failed or cancelled jobs can be retried")
        # A cancel removed what the job made, so its progress is gone with it (a training run keeps
        # its checkpoints and says where it stands again as it resumes); a failed job keeps its
        # finished units, and its retry continues from them.
        progress = ", done = NULL, total = NULL" if job.status == "cancelled" else ""
        with self.store.transaction() as conn:
            if job.output is not None:  # a job queued for the same place meanwhile writes it first
                check_one_writer(conn, job.output, job.after_id, job_id)
            if not conn.execute(
                "UPDATE jobs SET status = 'queued', attempts = 0, error = NULL, finished_at = NULL, request = NULL,"
                f" request_at = NULL, hook_pending = 0, rate = NULL, eta = NULL{progress}, updated_at = ?"
                " WHERE id = ? AND status = ?", (time.time(), job_id, job.status)
            ).rowcount:
                raise ArchivistError(f"job #{job_id} changed while retrying it; look again")
        self.store.add_event(job_id, "client", "retried")

    def set_priority(self, job_id: int, priority: int) -> None:
        """Change the priority of a job that has not ended (higher runs first)."""
        job = self.store.get(job_id)
        if job.status in FINAL_STATUSES:
            raise ArchivistError(f"job #{job_id} has already ended ({job.status})")
        self.store.update(job_id, priority=int(priority), event=f"priority {priority}", source="client")

    def remove(self, job_id: int) -> None:
        """Delete a job that is not running, with its log and work folder."""
        job = self.store.get(job_id)
        if job.status == "running":
            raise ArchivistError(f"job #{job_id} is running: cancel it first")
        waiting = [j.id for j in self.store.jobs() if j.after_id == job_id and j.status not in FINAL_STATUSES]
        if waiting:
            # No flag named: the job was made to wait by ``--after`` or by a spec's ``after`` alike.
            raise ArchivistError(f"job #{job_id} cannot be removed: job #{waiting[0]} waits on it (it runs after it)")
        with self.store.transaction() as conn:
            if conn.execute("DELETE FROM jobs WHERE id = ? AND status != 'running'", (job_id,)).rowcount == 0:
                raise ArchivistError(f"job #{job_id} started running meanwhile: cancel it first")
            conn.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
        if job.log_path:
            from engine.ownership import Ledger, job_tag

            # Its hidden partial files (a paused or failed job's) would outlive the ledger that names
            # them; finished files, datasets and anything else stay.
            Ledger(Path(job.log_path).parent, job_tag(job.id)).discard_partials()
            shutil.rmtree(Path(job.log_path).parent, ignore_errors=True)

    def clear_done(self) -> list[int]:
        """Remove every done job no pending job waits on, in one transaction, then their logs; returns their ids."""
        placeholders = ", ".join("?" for _ in FINAL_STATUSES)
        with self.store.transaction() as conn:
            rows = conn.execute(
                "DELETE FROM jobs WHERE status = 'done' AND id NOT IN (SELECT after_id FROM jobs"
                f" WHERE after_id IS NOT NULL AND status NOT IN ({placeholders})) RETURNING id, log_path",
                FINAL_STATUSES).fetchall()
            conn.executemany("DELETE FROM events WHERE job_id = ?", [(r[0],) for r in rows])
        for row in rows:
            if row[1]:
                shutil.rmtree(Path(row[1]).parent, ignore_errors=True)
        return sorted(r[0] for r in rows)
