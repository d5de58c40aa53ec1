"""The job store: one SQLite database (WAL) at ``ARCHIVIST_HOME/queue.db``, the single source of truth.

Clients (CLI, TUI) read it directly and send commands through it; the daemon claims jobs from it;
workers write their progress, heartbeat and final status into it. Every change is one transaction;
a claim is a ``BEGIN IMMEDIATE`` transaction, so two daemons (or two threads) can never take the
same job.

The schema carries a version (table ``schema_version``) and migrates forward on open. A file that is
not an SQLite database, a database of another program, or one written by a newer Archivist is
reported with a clear error and never reset.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.errors import ArchivistError
from engine.fsnames import from_column, from_document, readable, to_column, to_document
from engine.paths import archivist_home

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "paused", "done", "failed", "cancelled")
FINAL_STATUSES = ("done", "failed", "cancelled")
# What a running job shows while a client's request waits for its worker's next safe boundary.
REQUESTED_STATUS = {"pause": "pausing", "cancel": "cancelling"}
APPLICATION_ID = 0x41524356  # "ARCV": marks the file as an Archivist queue
SQLITE_MAGIC = b"SQLite format 3\x00"

# Each entry migrates from version i to i + 1 (index 0 creates version 1).
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            spec TEXT NOT NULL,
            status TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0,
            device TEXT NOT NULL DEFAULT 'any',
            slot TEXT,
            done REAL,
            total REAL,
            rate REAL,
            eta REAL,
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            updated_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            log_path TEXT,
            after_id INTEGER,
            heartbeat REAL,
            worker_pid INTEGER
        )""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id INTEGER,
            time REAL NOT NULL,
            source TEXT NOT NULL,
            message TEXT NOT NULL
        )""",
        "CREATE INDEX jobs_by_status ON jobs(status, priority, id)",
    ],
    [
        # v2: pending client commands, claim tokens (a stale worker can never write over a takeover),
        # the worker's start time (pid reuse), and a flag for the end-of-job hook.
        "ALTER TABLE jobs ADD COLUMN request TEXT",
        "ALTER TABLE jobs ADD COLUMN request_at REAL",
        "ALTER TABLE jobs ADD COLUMN token TEXT",
        "ALTER TABLE jobs ADD COLUMN worker_started REAL",
        "ALTER TABLE jobs ADD COLUMN hook_pending INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN output TEXT",
        "CREATE INDEX events_by_job ON events(job_id, id)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
# Columns holding a file name: stored as its bytes (UTF-8 text, or a BLOB when they are not UTF-8).
PATH_COLUMNS = ("output", "log_path")


@dataclass
class Job:
    """One row of the queue, as clients see it."""

    id: int
    kind: str
    spec: dict
    status: str
    priority: int
    device: str
    slot: str | None
    done: float | None
    total: float | None
    rate: float | None
    eta: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float
    attempts: int
    error: str | None
    log_path: str | None
    after_id: int | None
    heartbeat: float | None
    worker_pid: int | None
    request: str | None
    request_at: float | None
    token: str | None
    worker_started: float | None
    hook_pending: int
    output: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        data = dict(row)
        # File names are stored as their bytes (engine.fsnames): back to this process's strings.
        data["spec"] = from_document(json.loads(data["spec"]))
        for key in PATH_COLUMNS:
            data[key] = from_column(data[key])
        return cls(**data)

    @property
    def shown_status(self) -> str:
        """The status as faces show it: ``pausing``/``cancelling`` while a request is pending."""
        return shown_status(self.status, self.request)

    def to_dict(self) -> dict:
        """JSON-able view (``archivist queue show --json``); internal columns left out."""
        data = asdict(self)
        for key in ("token", "worker_started", "hook_pending"):
            data.pop(key)
        return data


@dataclass
class Event:
    id: int
    job_id: int | None
    time: float
    source: str
    message: str


def queue_db_path() -> Path:
    """``ARCHIVIST_HOME/queue.db``."""
    return archivist_home() / "queue.db"


class Store:
    """An open queue database. One instance per process and thread (sqlite3 connections are not shared)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else queue_db_path()
        self._conn = _open(self.path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction; ``immediate`` takes the write lock at once (no lost updates)."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) from None
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                conn.execute("ROLLBACK")
                raise _damaged(self.path, exc) from None

    def _query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) from None

    # -- reading ------------------------------------------------------------------------------
    def get(self, job_id: int) -> Job:
        """The job with this id, or an error naming it."""
        rows = self._query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise ArchivistError(f"no job #{job_id} in the queue ({self.path})")
        return Job.from_row(rows[0])

    def find(self, job_id: int) -> Job | None:
        rows = self._query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    def jobs(self, status: str | None = None) -> list[Job]:
        """Every job (or those with ``status``), in id order."""
        if status is not None:
            check_status(status)
            rows = self._query("SELECT * FROM jobs WHERE status = ? ORDER BY id", (status,))
        else:
            rows = self._query("SELECT * FROM jobs ORDER BY id")
        return [Job.from_row(r) for r in rows]

    def events(self, job_id: int | None = None, limit: int = 1000) -> list[Event]:
        """The newest ``limit`` events (of one job, or all), oldest first."""
        if job_id is None:
            rows = self._query("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._query("SELECT * FROM events WHERE job_id = ? ORDER BY id DESC LIMIT ?",
                               (job_id, limit))
        return [Event(**dict(r)) for r in reversed(rows)]

    # -- writing ------------------------------------------------------------------------------
    def insert_job(self, kind: str, spec: dict, priority: int = 0, device: str = "any",
                   after_id: int | None = None, output: str | None = None, status: str = "queued") -> int:
        """Add a job; returns its id. The log path is ``jobs/<id>/log`` beside the database."""
        now = time.time()
        # Any file name, in any locale, as its exact bytes; ASCII JSON, so every SQLite tool reads it.
        document = json.dumps(to_document(spec), sort_keys=True, ensure_ascii=True)
        with self.transaction() as conn:
            if after_id is not None:
                if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (after_id,)).fetchone() is None:
                    raise ArchivistError(f"--after {after_id}: no job #{after_id} in the queue")
            cur = conn.execute(
                "INSERT INTO jobs (kind, spec, status, priority, device, created_at, updated_at, after_id, output)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, document, status, priority, device, now, now, after_id, to_column(output)),
            )
            job_id = int(cur.lastrowid)
            log_path = to_column(str(self.path.parent / "jobs" / str(job_id) / "log"))
            conn.execute("UPDATE jobs SET log_path = ? WHERE id = ?", (log_path, job_id))
            _event(conn, job_id, "client", f"submitted {kind} job (priority {priority}, device {device})")
        return job_id

    def add_event(self, job_id: int | None, source: str, message: str) -> None:
        with self.transaction() as conn:
            _event(conn, job_id, source, message)

    def claim(self, slots: list[str]) -> Job | None:
        """Atomically take the best queued job that one of ``slots`` can run; it becomes ``running``.

        Best is highest priority, then oldest. A job waits while its ``after`` job is not done.
        The claimed job gets a fresh token and the chosen slot; returns None when nothing fits.
        """
        now = time.time()
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT j.* FROM jobs j LEFT JOIN jobs a ON a.id = j.after_id"
                " WHERE j.status = 'queued' AND (j.after_id IS NULL OR a.status = 'done')"
                " ORDER BY j.priority DESC, j.id ASC"
            ).fetchall()
            for row in rows:
                slot = pick_slot(row["device"], slots)
                if slot is None:
                    continue
                token = uuid.uuid4().hex
                conn.execute(
                    "UPDATE jobs SET status = 'running', slot = ?, token = ?, worker_pid = NULL,"
                    " worker_started = NULL, heartbeat = ?, started_at = COALESCE(started_at, ?),"
                    " updated_at = ?, request = NULL, request_at = NULL WHERE id = ? AND status = 'queued'",
                    (slot, token, now, now, now, row["id"]),
                )
                _event(conn, row["id"], "daemon", f"claimed on slot {slot}")
                job = Job.from_row(conn.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone())
                return job
        return None

    def update(self, job_id: int, where_token: str | None = None, event: str | None = None,
               source: str = "daemon", **fields) -> bool:
        """Set columns of one job (only while its claim token is ``where_token``, when given); False if not."""
        fields["updated_at"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        sql = f"UPDATE jobs SET {cols} WHERE id = ?"
        params: list = [to_column(v) if k in PATH_COLUMNS else _text(v) for k, v in fields.items()] + [job_id]
        if where_token is not None:
            sql += " AND token = ?"
            params.append(where_token)
        with self.transaction() as conn:
            changed = conn.execute(sql, params).rowcount > 0
            if changed and event:
                _event(conn, job_id, source, event)
        return changed

    def execute(self, sql: str, params: tuple = ()) -> int:
        """Run one write statement in its own transaction; returns the changed row count."""
        with self.transaction() as conn:
            return conn.execute(sql, tuple(_text(p) for p in params)).rowcount


def _text(value):
    """A message for a text column: a file name's undecodable bytes read ``\xff`` (SQLite takes UTF-8 only)."""
    return readable(value) if isinstance(value, str) else value


def shown_status(status: str, request: str | None) -> str:
    """``running`` with a pending ``pause`` request reads ``pausing`` (``cancel``: ``cancelling``).

    The request takes effect at the worker's next safe boundary; until then the job still runs, and
    saying "paused" would be a lie while saying "running" hides that the click was heard.
    """
    if status == "running" and request:
        return REQUESTED_STATUS.get(request, status)
    return status


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise ArchivistError(f"invalid status {status!r}: allowed are {', '.join(STATUSES)}")
    return status


def pick_slot(device: str, slots: list[str]) -> str | None:
    """The first free slot that can run a job asking for ``device`` (any, cpu or cuda:N).

    ``any`` prefers a GPU slot; slot names are ``cuda:N`` and ``cpu:K``.
    """
    if device == "any":
        gpu = [s for s in slots if s.startswith("cuda:")]
        cpu = [s for s in slots if s.startswith("cpu")]
        return (gpu + cpu)[0] if gpu or cpu else None
    if device == "cpu":
        return next((s for s in slots if s.startswith("cpu")), None)
    return device if device in slots else None


def _event(conn: sqlite3.Connection, job_id: int | None, source: str, message: str) -> None:
    conn.execute("INSERT INTO events (job_id, time, source, message) VALUES (?, ?, ?, ?)",
                 (job_id, time.time(), source, readable(message)))


def _damaged(path: Path, exc: Exception) -> ArchivistError:
    return ArchivistError(
        f"{path}: queue database is damaged or unreadable ({exc}); it was left untouched — "
        "move it aside to start an empty queue"
    )


def private_dirs(folder: Path) -> None:
    """Create ``folder`` and any missing parents owner-only (``mkdir(parents=True)`` would not)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)


def _open(path: Path) -> sqlite3.Connection:
    """Open (creating with mode 0600 when missing) and check or migrate the database."""
    try:
        private_dirs(path.parent)
    except OSError as exc:
        raise ArchivistError(f"{path.parent}: cannot create state folder: {exc.strerror}") from None
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ArchivistError(f"{path}: cannot create queue database: {exc.strerror}") from None
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise ArchivistError(f"{path}: cannot read queue database: {exc.strerror}") from None
    if header and header != SQLITE_MAGIC:
        raise ArchivistError(
            f"{path}: not an SQLite database (corrupted or a foreign file); it was left untouched — "
            "move it aside to start an empty queue"
        )
    try:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        _check_identity(conn, path)  # before anything writes: a foreign file stays byte-for-byte as it was
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            log.warning("%s: journal mode %s (WAL unavailable on this filesystem?)", path, mode)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = OFF")
        _check_and_migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, exc) from None
    return conn


def _tables(conn: sqlite3.Connection) -> set[str]:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    tables.discard("sqlite_sequence")
    return tables


def _check_identity(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database that holds tables but is not ours (read-only checks)."""
    tables = _tables(conn)
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if tables and (app_id != APPLICATION_ID or "schema_version" not in tables):
        raise ArchivistError(
            f"{path}: not an Archivist queue database (tables: {', '.join(sorted(tables))}); "
            "it was left untouched — move it aside or point ARCHIVIST_HOME elsewhere"
        )


def _check_and_migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _tables(conn):
            version = 0
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version VALUES (0)")
        else:
            _check_identity(conn, path)
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                raise ArchivistError(f"{path}: queue database has no schema version row (damaged)")
            version = int(row[0])
        if version > SCHEMA_VERSION:
            raise ArchivistError(
                f"{path}: queue database has schema version {version}, this Archivist knows up to "
                f"{SCHEMA_VERSION}: upgrade Archivist"
            )
        for v in range(version, SCHEMA_VERSION):
            for sql in MIGRATIONS[v]:
                conn.execute(sql)
            conn.execute("UPDATE schema_version SET version = ?", (v + 1,))
            if version > 0:
                log.info("%s: queue schema migrated to version %d", path, v + 1)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
