"""The queue daemon: claims jobs, runs each in its own worker process, takes back orphaned jobs.

``start_daemon()`` detaches a daemon process (``setsid``, stdin closed, output to
``ARCHIVIST_HOME/daemon.log``); ``run_daemon()`` is the daemon itself (``--foreground`` for systemd).
A lock on the state directory itself (:mod:`engine.daemonlock`: held for the daemon's life, released
by the kernel even after ``kill -9``, and nothing a user or a tmp cleaner deletes) makes a second
daemon refuse to start; ``daemon.pid`` only tells people the pid, and the daemon rewrites it if it
goes. Every path the daemon gets from its environment is made absolute before it detaches to ``/``.

The daemon keeps no state of its own: everything is in the store, so a daemon killed at any moment
and started again carries on. On every loop it

1. reaps its workers and takes back every ``running`` job whose worker is gone (queued again,
   not counted as a failed attempt; paused or cancelled if that was requested);
2. kills workers that ignore a pause/cancel request for longer than ``stop_grace``;
3. fails jobs that can never run (no such device slot, a failed dependency);
4. claims queued jobs for free slots and starts their workers;
5. runs the end-of-job hook for jobs that ended.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.daemonlock import PID_FILE, DaemonLock, daemon_holder
from engine.errors import ArchivistError
from engine.paths import archivist_home
from engine.queue.config import QueueConfig, load_config
from engine.queue.kinds import get_kind, kinds
from engine.queue.store import FINAL_STATUSES, Job, Store, StoreError, private_dirs

log = logging.getLogger("archivist.daemon")

CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE}
LOG_FILE = "daemon.log"
READY_FD_ENV = "ARCHIVIST_DAEMON_READY_FD"  # the descriptor a started daemon writes "ready" to
ORPHAN_GRACE = 2.0  # seconds (at least 5 polls) a claimed job may go without a worker pid before it is orphaned


def pid_file_path() -> Path:
    return archivist_home() / PID_FILE


def daemon_log_path() -> Path:
    return archivist_home() / LOG_FILE


def _source_root_env(env: dict[str, str]) -> dict[str, str]:
    """Make ``python -m engine...`` importable in a child even from a source checkout."""
    root = str(Path(__file__).resolve().parents[2])
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in parts:
        env["PYTHONPATH"] = os.pathsep.join([root, *parts])
    return env


def pinned_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` with every path in it made absolute, as seen from the current folder.

    The daemon runs in ``/`` and each worker in its job's folder, so a relative ``ARCHIVIST_HOME``
    (or ``XDG_DATA_HOME``, ``PYTHONPATH`` or ``PATH`` entry) would name another place there than
    where the command was typed. ``ARCHIVIST_HOME`` is set to the state directory this process
    uses, so the daemon can never lock, read or write another one.
    """
    env = dict(env)
    env["ARCHIVIST_HOME"] = str(archivist_home())
    if env.get("XDG_DATA_HOME"):
        env["XDG_DATA_HOME"] = os.path.abspath(env["XDG_DATA_HOME"])
    for key in ("PYTHONPATH", "PATH"):
        if env.get(key):
            # An empty PATH entry means the current folder (as "." does).
            env[key] = os.pathsep.join(os.path.abspath(p or ".") for p in env[key].split(os.pathsep))
    return _source_root_env(env)


def worker_alive(pid: int | None, started: float | None) -> bool:
    """True while process ``pid`` runs and is the one that started at ``started`` (pid reuse)."""
    if not pid:
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > 1.0:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


@dataclass
class DaemonStatus:
    """``archivist daemon status``: is it running, where its files are, what the queue holds."""

    running: bool
    pid: int | None
    pid_file: str
    pid_file_present: bool
    log: str
    database: str
    slots: list[str] = field(default_factory=list)
    jobs: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def daemon_pid() -> int | None:
    """The running daemon's pid (-1 while it runs with its pid unknown), or None.

    Decided by the lock on the state directory, not by ``daemon.pid``, which anyone can delete.
    """
    return daemon_holder(archivist_home())


def daemon_status() -> DaemonStatus:
    """Whether the daemon runs, plus slot and job counts (read from config and store)."""
    pid = daemon_pid()
    try:
        slots = load_config(detect_gpus=False).slots
    except ArchivistError as exc:
        log.warning("%s", exc)
        slots = []
    with Store(read_only_fallback=True) as store:  # a look only: works on a full disk too
        counts: dict[str, int] = {}
        for row in store._query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status"):
            counts[row["status"]] = row["n"]
        db = str(store.path)
    return DaemonStatus(running=pid is not None, pid=pid if pid != -1 else None, pid_file=str(pid_file_path()),
                        pid_file_present=pid_file_path().exists(), log=str(daemon_log_path()), database=db,
                        slots=slots, jobs=counts)


def start_daemon(timeout: float = 30.0) -> int:
    """Start a detached daemon (new session, no terminal); returns its pid once it holds its lock and
    has opened the queue database (or, should the disk have filled meanwhile, is up and retrying: a
    warning says why)."""
    running = daemon_pid()
    if running is not None:
        raise ArchivistError(f"the daemon is already running (pid {running if running > 0 else '?'}, "
                             f"state directory {archivist_home()})")
    env = pinned_environment(dict(os.environ))  # before anything reads a path: cwd is "/" over there
    if load_config(detect_gpus=False).gpus:  # a broken config.yaml is reported here, not only in the log,
        load_config()  # and so is a listed GPU the machine lacks (asking means importing torch: only then)
    Store().close()  # and so is a damaged queue.db
    kinds()  # and a module in ARCHIVIST_TEST_KINDS that cannot be imported
    log_path = daemon_log_path()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    start_offset = os.lseek(fd, 0, os.SEEK_END)
    # The daemon says "ready" on a pipe once its store is open: a pipe needs no disk space.
    ready_r, ready_w = os.pipe()
    env[READY_FD_ENV] = str(ready_w)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.queue.daemon"],
            stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, env=env, cwd="/",
            start_new_session=True, close_fds=True, pass_fds=(ready_w,),
        )
    except BaseException:
        os.close(ready_r)
        raise
    finally:
        os.close(fd)
        os.close(ready_w)
    try:
        said = _wait_ready(ready_r, timeout)
    finally:
        os.close(ready_r)
    if said:  # it says so only after taking its lock
        if said != "ready":
            log.warning("the daemon is up but %s", said)
        return proc.pid
    if said == "" or proc.poll() is not None:  # it exited (the pipe closed unsaid)
        proc.wait()
        with open(log_path, encoding="utf-8", errors="replace") as f:
            f.seek(start_offset)
            tail = [ln for ln in f.read().splitlines() if ln.strip()]
        reason = tail[-1] if tail else f"exit code {proc.returncode}"
        raise ArchivistError(f"the daemon did not start: {reason} (log: {log_path})")
    proc.kill()  # never leave behind a daemon that nobody was told about
    proc.wait()
    raise ArchivistError(f"the daemon did not report ready within {timeout:g} s and was stopped (log: {log_path})")


def _wait_ready(fd: int, timeout: float) -> str | None:
    """The daemon's first line on the ready pipe; "" when it closed the pipe without one (it exited),
    None when nothing came within ``timeout``."""
    import select

    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return ""
        data += chunk
    return data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def stop_daemon(timeout: float | None = None) -> int | None:
    """Ask the daemon to stop (SIGTERM): its workers stop at a safe boundary and their jobs are queued
    to resume. Waits until it has exited; returns its pid, or None when none was running."""
    pid = daemon_pid()
    if pid is None:
        return None
    if pid < 0:
        pid = _wait_for_pid()
        if pid is None:  # it stopped meanwhile
            return None
    if timeout is None:
        try:
            timeout = load_config(detect_gpus=False).stop_grace + 15.0
        except ArchivistError:
            timeout = 45.0
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon_pid() is None:
            return pid
        time.sleep(0.05)
    raise ArchivistError(f"the daemon (pid {pid}) did not stop within {timeout:g} s; kill it with: kill -9 {pid}")


def _wait_for_pid(timeout: float = 10.0) -> int | None:
    """The pid of a daemon that runs without a readable pid (no lock table here, pid file deleted):
    it writes ``daemon.pid`` again on its next poll."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = daemon_pid()
        if pid is None or pid > 0:
            return pid
        time.sleep(0.05)
    raise ArchivistError(f"the daemon runs but its pid is unknown ({pid_file_path()} is missing); "
                         f"find it with: pgrep -f engine.queue.daemon")


# -- the daemon itself ----------------------------------------------------------------------------
@dataclass
class _Worker:
    job_id: int
    token: str
    slot: str
    proc: subprocess.Popen


class Daemon:
    """The scheduling loop. Create, then :meth:`run` (blocks until SIGTERM/SIGINT)."""

    store: Store  # opened by run() (retried while the disk is full) unless one is given

    def __init__(self, config: QueueConfig, store: Store | None = None, lock: DaemonLock | None = None,
                 ready_fd: int | None = None):
        self.config = config
        if store is not None:
            self.store = store
        self.lock = lock
        self.ready_fd = ready_fd  # told "ready" once the store is open (``start_daemon`` waits for it)  # its pid file is written again when someone deletes it
        self.workers: dict[int, _Worker] = {}
        self.hooks: list[tuple[subprocess.Popen, float, int]] = []
        self.stopping = False
        # The store's change counter when the queued jobs were last looked at, and the free slots a
        # claim then found nothing for: while neither moves, nothing queued can start or fail, and an
        # idle pass reads one row instead of every queued job (10,000 queued jobs cost 27 % of a core).
        self._seen_changes: int | None = None
        self._idle_free: list[str] | None = None

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if not self._open_store():
            return  # stopped before the store could ever be opened: nothing to hand back
        try:
            self.store.add_event(None, "daemon", f"daemon {os.getpid()} started; slots {', '.join(self.config.slots)}")
        except ArchivistError as exc:  # the disk filled since the open: the loop says so each poll
            log.error("%s", exc)
        log.info("daemon %d started: slots %s, poll %.2f s, db %s", os.getpid(), ", ".join(self.config.slots),
                 self.config.poll_interval, self.store.path)
        self._tell_ready()
        while not self.stopping:
            try:
                self.tick()
            except ArchivistError as exc:
                log.error("%s", exc)
            except Exception:  # a busy disk or a locked database must not end the daemon
                log.exception("daemon loop")
            if self.lock is not None:
                self.lock.heal()
            deadline = time.monotonic() + self.config.poll_interval
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(min(0.05, self.config.poll_interval))
        self.shutdown()

    def _open_store(self) -> bool:
        """Open the store, retrying each poll while the disk is full or failing (logged each time).

        A daemon started just before the disk filled stays up and carries on once space is free,
        as one that was already running does. Damage (or any other lasting error) still ends it.
        False when a stop was asked before the store could be opened.
        """
        if hasattr(self, "store"):
            return True
        while not self.stopping:
            try:
                self.store = Store()
                return True
            except StoreError as exc:
                if not exc.transient:
                    raise
                log.error("%s", exc)
                self._tell_ready(f"waiting: {exc}")  # up and retrying: the starter need not wait 30 s
            deadline = time.monotonic() + self.config.poll_interval
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(min(0.05, self.config.poll_interval))
        return False

    def _tell_ready(self, message: str = "ready") -> None:
        """Tell ``start_daemon`` once that the store is open, or why it is not yet and retried (through
        a pipe, which works on a full disk too)."""
        if self.ready_fd is None:
            return
        try:
            os.write(self.ready_fd, (message.replace("\n", " ") + "\n").encode("utf-8", "replace"))
        except OSError:  # the starter has gone (killed, timed out): nobody to tell
            pass
        finally:
            os.close(self.ready_fd)
            self.ready_fd = None

    def tick(self) -> None:
        """One pass of the loop (public so tests can drive a daemon step by step)."""
        self.reap()
        self.take_back()
        self.enforce_requests()
        changes = self.store.changes()
        if changes != self._seen_changes:
            self._idle_free = None
            self.fail_impossible()  # a job it fails moves the counter: the next pass looks once more
        self.dispatch()
        if self._idle_free is not None:
            self._seen_changes = changes
        self.run_hooks()

    # -- workers ------------------------------------------------------------------------------
    def reap(self) -> None:
        for job_id, w in list(self.workers.items()):
            if w.proc.poll() is None:
                continue
            del self.workers[job_id]
            code = w.proc.returncode
            if code == 0:
                continue
            log.warning("worker of job %d exited with %s", job_id, code)
            if -code in CRASH_SIGNALS:
                self._crashed(job_id, w.token, signal.Signals(-code).name)

    def _crashed(self, job_id: int, token: str, signame: str) -> None:
        """A worker that crashed by itself (SIGSEGV, SIGABRT...) counts as a failed attempt, unlike a
        worker killed from outside (SIGKILL: OOM killer, kill -9, reboot), which is simply taken back."""
        job = self.store.find(job_id)
        if job is None or job.status != "running" or job.token != token:
            return
        attempts = job.attempts + 1
        error = f"worker crashed ({signame})"
        final = attempts >= self.config.max_attempts
        common = dict(worker_pid=None, worker_started=None, slot=None, request=None, request_at=None,
                      attempts=attempts, error=error, token=None)
        if job.request == "cancel":
            self._take_back(job)
        elif final:
            self.store.update(job_id, token, status="failed", finished_at=time.time(), hook_pending=1,
                              event=f"failed (attempt {attempts} of {self.config.max_attempts}): {error}", **common)
        else:
            self.store.update(job_id, token, status="paused" if job.request == "pause" else "queued",
                              event=f"attempt {attempts} of {self.config.max_attempts} failed: {error}", **common)

    def take_back(self) -> None:
        """Every running job whose worker is gone is resumed (or paused/cancelled as requested)."""
        now = time.time()
        for job in self.store.jobs("running"):
            if job.id in self.workers:
                continue
            if job.worker_pid is None:
                if now - (job.heartbeat or job.updated_at) < max(ORPHAN_GRACE, 5 * self.config.poll_interval):
                    continue
            elif worker_alive(job.worker_pid, job.worker_started):
                continue  # an orphan of an earlier daemon still working: it writes its own end
            self._take_back(job)

    def _take_back(self, job: Job) -> None:
        # A new (empty) token: whatever the old worker might still try to write is refused.
        common = dict(worker_pid=None, worker_started=None, request=None, request_at=None, slot=None,
                      rate=None, eta=None, token=None)
        if job.request == "cancel":
            self._cleanup(job)
            self.store.update(job.id, job.token, status="cancelled", finished_at=time.time(), hook_pending=1,
                              event="worker gone; cancelled and partial output removed", **common)
        elif job.request == "pause":
            self.store.update(job.id, job.token, status="paused", event="worker gone; paused", **common)
        else:
            self.store.update(job.id, job.token, status="queued",
                              event="worker gone; taken back to resume (not a failed attempt)", **common)
        log.info("job %d: worker gone, taken back", job.id)

    def _cleanup(self, job: Job) -> None:
        try:
            get_kind(job.kind).cleanup(job.spec, Path(job.log_path).parent)
        except Exception as exc:  # cleanup must not take the daemon down
            log.error("job %d: cleanup failed: %s", job.id, exc)

    def enforce_requests(self) -> None:
        """A worker that ignores pause/cancel for ``stop_grace`` seconds is killed (then taken back)."""
        now = time.time()
        for job in self.store.jobs("running"):
            if job.request in ("pause", "cancel") and job.request_at and now - job.request_at > self.config.stop_grace:
                pid = self.workers[job.id].proc.pid if job.id in self.workers else job.worker_pid
                if pid and (job.id in self.workers or worker_alive(job.worker_pid, job.worker_started)):
                    log.warning("job %d: worker %d ignored %s for %.0f s; killing it", job.id, pid, job.request,
                                self.config.stop_grace)
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    if job.id in self.workers:
                        self.workers.pop(job.id).proc.wait()
                    self._take_back(job)

    def fail_impossible(self) -> None:
        """Queued jobs that can never start: a device with no slot here, a dependency that ended badly."""
        slots = self.config.slots
        for job in self.store.jobs("queued"):
            reason = None
            if job.device not in ("any", "cpu") and job.device not in slots:
                reason = f"device {job.device}: no such slot on this daemon (slots: {', '.join(slots)})"
            elif job.device == "cpu" and not any(s.startswith("cpu") for s in slots):
                reason = "device cpu: this daemon has no CPU slot (set queue.cpu_slots in config.yaml)"
            elif job.after_id is not None:
                dep = self.store.find(job.after_id)
                if dep is None:
                    reason = f"dependency #{job.after_id} was removed"
                elif dep.status in ("failed", "cancelled"):
                    reason = f"dependency #{job.after_id} ended {dep.status}"
            if reason:
                self.store.execute(
                    "UPDATE jobs SET status = 'failed', error = ?, finished_at = ?, updated_at = ?, hook_pending = 1"
                    " WHERE id = ? AND status = 'queued'", (reason, time.time(), time.time(), job.id))
                self.store.add_event(job.id, "daemon", f"failed: {reason}")

    def dispatch(self) -> None:
        """Claim queued jobs for the free slots. Skipped while the queue has not changed since a claim
        found nothing for the same free slots (``_idle_free``)."""
        busy = {j.slot for j in self.store.jobs("running") if j.slot}
        free = [s for s in self.config.slots if s not in busy]
        if free == self._idle_free and self.store.changes() == self._seen_changes:
            return
        self._idle_free = None
        while free and not self.stopping:
            job = self.store.claim(free)
            if job is None:
                break
            free.remove(job.slot)
            self._spawn(job)
        if not self.stopping:
            self._idle_free = list(free)

    def _spawn(self, job: Job) -> None:
        log_path = Path(job.log_path)
        private_dirs(log_path.parent)
        env = _source_root_env(dict(os.environ))
        if job.slot.startswith("cuda:"):
            env["CUDA_VISIBLE_DEVICES"] = job.slot.split(":", 1)[1]
            device = "cuda:0"
        else:
            env["CUDA_VISIBLE_DEVICES"] = ""
            device = "cpu"
            if "OMP_NUM_THREADS" not in env:  # CPU slots share the cores instead of fighting over them
                env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, self.config.cpu_slots)))
        cmd = [sys.executable, "-m", "engine.queue.worker", str(job.id), job.token, "--device", device,
               "--max-attempts", str(self.config.max_attempts), "--poll", str(self.config.poll_interval)]
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, env=env,
                                    cwd=str(log_path.parent), close_fds=True)
        except OSError as exc:
            self.store.update(job.id, job.token, status="queued", slot=None,
                              event=f"cannot start a worker: {exc}")
            log.error("job %d: cannot start a worker: %s", job.id, exc)
            return
        finally:
            os.close(fd)
        import psutil

        try:
            started = psutil.Process(proc.pid).create_time()
        except psutil.NoSuchProcess:
            started = None
        self.store.execute(  # unless the worker was quicker (it writes the same, or has already ended)
            "UPDATE jobs SET worker_pid = ?, worker_started = ? WHERE id = ? AND token = ? AND status = 'running'"
            " AND worker_pid IS NULL", (proc.pid, started, job.id, job.token))
        self.workers[job.id] = _Worker(job.id, job.token, job.slot, proc)
        log.info("job %d (%s) started on %s: worker %d", job.id, job.kind, job.slot, proc.pid)

    # -- the end-of-job hook ------------------------------------------------------------------
    def run_hooks(self) -> None:
        for proc, started, job_id in list(self.hooks):
            if proc.poll() is not None:
                self.hooks.remove((proc, started, job_id))
                if proc.returncode != 0:
                    self.store.add_event(job_id, "daemon", f"hook exited with {proc.returncode}")
            elif time.monotonic() - started > self.config.hook_timeout:
                proc.kill()
                proc.wait()
                self.hooks.remove((proc, started, job_id))
                self.store.add_event(job_id, "daemon", f"hook killed after {self.config.hook_timeout:g} s")
        placeholders = ", ".join("?" for _ in FINAL_STATUSES)
        rows = self.store._query(f"SELECT * FROM jobs WHERE hook_pending = 1 AND status IN ({placeholders})",
                                 FINAL_STATUSES)
        for row in rows:
            job = Job.from_row(row)
            if self.store.execute("UPDATE jobs SET hook_pending = 0 WHERE id = ? AND hook_pending = 1",
                                  (job.id,)) == 0:
                continue
            if self.config.hook:
                self._start_hook(job)

    def _start_hook(self, job: Job) -> None:
        env = dict(os.environ)
        output = None
        try:
            output = get_kind(job.kind).output(job.spec)
        except ArchivistError:
            pass
        env.update(ARCHIVIST_JOB_ID=str(job.id), ARCHIVIST_JOB_KIND=job.kind, ARCHIVIST_JOB_STATUS=job.status,
                   ARCHIVIST_JOB_OUTPUT=output or "", ARCHIVIST_JOB_ERROR=job.error or "",
                   ARCHIVIST_JOB_LOG=job.log_path or "")
        try:
            proc = subprocess.Popen(self.config.hook, stdin=subprocess.DEVNULL, env=env, close_fds=True)
        except OSError as exc:
            self.store.add_event(job.id, "daemon", f"hook {self.config.hook[0]} could not run: {exc}")
            log.error("hook %s could not run: %s", self.config.hook[0], exc)
            return
        self.hooks.append((proc, time.monotonic(), job.id))

    # -- stopping -----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Ask every worker to stop at a safe boundary, wait ``stop_grace``, kill the rest, queue them."""
        log.info("daemon stopping: %d worker(s) asked to stop", len(self.workers))
        for w in self.workers.values():
            try:
                w.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        orphans = [j for j in self.store.jobs("running")
                   if j.id not in self.workers and worker_alive(j.worker_pid, j.worker_started)]
        for job in orphans:  # workers left by an earlier daemon stop too
            try:
                os.kill(job.worker_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.config.stop_grace
        while time.monotonic() < deadline:
            self.reap()
            orphans = [j for j in orphans if worker_alive(j.worker_pid, j.worker_started)]
            if not self.workers and not orphans:
                break
            time.sleep(0.05)
        for job in orphans:
            try:
                os.kill(job.worker_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for w in list(self.workers.values()):
            log.warning("job %d: worker %d did not stop in time; killed", w.job_id, w.proc.pid)
            w.proc.kill()
            w.proc.wait()
        self.workers.clear()
        try:
            self.take_back()
            self.run_hooks()
            self.store.add_event(None, "daemon", f"daemon {os.getpid()} stopped")
        except ArchivistError as exc:  # a full disk: the next daemon takes these jobs back instead
            log.error("%s", exc)
        log.info("daemon stopped")


def _take_ready_fd() -> int | None:
    """The pipe ``start_daemon`` waits on, taken out of the environment so no worker inherits it."""
    value = os.environ.pop(READY_FD_ENV, None)
    if not value:
        return None
    try:
        fd = int(value)
        os.fstat(fd)
    except (ValueError, OSError):
        return None
    return fd


def run_daemon() -> int:
    """The daemon process: take the lock, then loop until SIGTERM/SIGINT. Used by ``--foreground`` too."""
    # Workers run in their job's folder and the hook wherever it likes: they inherit absolute paths
    # (a --foreground daemon under systemd may have been given a relative ARCHIVIST_HOME).
    os.environ.update(pinned_environment(dict(os.environ)))
    ready_fd = _take_ready_fd()
    lock = DaemonLock(archivist_home())
    lock.acquire()
    try:
        config = load_config()
        kinds()  # the extra kinds of ARCHIVIST_TEST_KINDS are imported once, before any job needs them
        Daemon(config, lock=lock, ready_fd=ready_fd).run()
    finally:
        lock.release()
    return 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s daemon[%(process)d] %(levelname)s: %(message)s")
    try:
        return run_daemon()
    except ArchivistError as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
