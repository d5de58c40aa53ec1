"""The job store: one SQLite database (WAL) at ``ARCHIVIST_HOME/queue.db``, the single source of truth.

Clients (CLI, TUI) read it directly and send commands through it; the daemon claims jobs from it;
workers write their progress, heartbeat and final status into it. Every change is one transaction;
a claim is a ``BEGIN IMMEDIATE`` transaction, so two daemons (or two threads) can never take the
same job.

The schema carries a version (table ``schema_version``) and migrates forward on open. A file that is
not an SQLite database, a database of another program, or one written by a newer Archivist is
reported with a clear error and never reset.

Nothing but SQLite ever opens the database file or its ``-wal``/``-shm`` companions: closing *any*
descriptor a process holds on the file drops every POSIX lock the process holds on it (SQLite's
"How to corrupt an SQLite database", 2.2), after which another process may checkpoint and delete
the WAL under a live connection, losing acknowledged writes. Errors are told apart: a full disk or
an I/O error is never reported as a damaged database, and no advice ever discards the queue. Where
only the write path fails (a full disk), :class:`Store` with ``read_only_fallback`` still reads.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

from engine.document import Conflict
from engine.errors import ArchivistError
from engine.fsnames import BYTES_TAG, from_column, from_document, readable, to_column, to_document
from engine.paths import archivist_home

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "paused", "done", "failed", "cancelled")
FINAL_STATUSES = ("done", "failed", "cancelled")
# What a running job shows while a client's request waits for its worker's next safe boundary.
REQUESTED_STATUS = {"pause": "pausing", "cancel": "cancelling"}
APPLICATION_ID = 0x41524356  # "ARCV": marks the file as an Archivist queue

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
    [
        # v3: scale. The queue's order as an index a claim walks and leaves at the first job that fits;
        # partial indexes for dependents and pending hooks; and a change counter, bumped by triggers
        # whenever something the scheduler cares about changes (never by heartbeats or progress), so
        # an idle daemon's pass reads one row instead of every queued job.
        "DROP INDEX IF EXISTS jobs_by_status",
        "CREATE INDEX jobs_in_order ON jobs(status, priority DESC, id)",
        "CREATE INDEX jobs_by_after ON jobs(after_id) WHERE after_id IS NOT NULL",
        "CREATE INDEX jobs_hook_pending ON jobs(id) WHERE hook_pending = 1",
        "CREATE TABLE queue_changes (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)",
        "INSERT INTO queue_changes VALUES (1, 0)",
        "CREATE TRIGGER jobs_added AFTER INSERT ON jobs BEGIN UPDATE queue_changes SET n = n + 1; END",
        "CREATE TRIGGER jobs_removed AFTER DELETE ON jobs BEGIN UPDATE queue_changes SET n = n + 1; END",
        "CREATE TRIGGER jobs_changed AFTER UPDATE OF status, priority, device, after_id, request, hook_pending"
        " ON jobs BEGIN UPDATE queue_changes SET n = n + 1; END",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
READABLE_FROM = 2  # a read-only store (no migration possible) reads databases from this version on


_INTERNAL_COLUMNS = frozenset({"token", "worker_started", "hook_pending"})
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

    @classmethod
    def from_values(cls, values: tuple) -> Job:
        """From a plain row of :data:`JOB_SELECT` (bulk reads: ``dict(sqlite3.Row)`` is the slow part)."""
        data = list(values)
        # File names are stored as their bytes (engine.fsnames): back to this process's strings.
        data[_SPEC_INDEX] = from_document(json.loads(data[_SPEC_INDEX]))
        for index in _PATH_INDEXES:
            data[index] = from_column(data[index])
        return cls(*data)

    def to_dict(self) -> dict:
        """JSON-able view (``archivist queue show --json``); internal columns left out."""
        # A shallow copy (asdict deep-copies every spec: 2.7 s for 10,000 jobs); the spec is this job's own.
        return {name: getattr(self, name) for name in _PUBLIC_FIELDS}


JOB_FIELDS = tuple(f.name for f in fields(Job))
JOB_SELECT = f"SELECT {', '.join(JOB_FIELDS)} FROM jobs"  # the columns in the dataclass's order
_SPEC_INDEX = JOB_FIELDS.index("spec")
_PATH_INDEXES = tuple(JOB_FIELDS.index(name) for name in PATH_COLUMNS)
_PUBLIC_FIELDS = tuple(name for name in JOB_FIELDS if name not in _INTERNAL_COLUMNS)


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


# -- errors ---------------------------------------------------------------------------------------
class StoreError(ArchivistError):
    """A failure of the queue database, and which kind of failure it is.

    ``kind`` is ``full`` (no space), ``io`` (an I/O error), ``cantopen``, ``readonly``, ``busy``
    (locked by another process past the timeout), ``damaged`` (SQLite found corruption, or not an
    SQLite file at all) or ``other``. The first five leave the database intact: the same action can
    succeed later (:attr:`transient`).
    """

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind

    @property
    def transient(self) -> bool:
        return self.kind in ("full", "io", "cantopen", "readonly", "busy")


# SQLite's primary result codes (the low byte of an extended code).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 10, 11, 13, 14, 26
LOW_SPACE = 1 << 20  # bytes: below this an I/O error on the queue is read as a full disk


def _no_space(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < LOW_SPACE


def store_error(path: Path, exc: BaseException) -> StoreError:
    """One clear line for an SQLite error on the queue database, never calling an intact file damaged.

    A full disk (SQLite says ``SQLITE_FULL``, or an I/O error on a file system with no space left)
    and other I/O, open, permission and lock errors say the queue is intact and what to do; only
    ``SQLITE_CORRUPT``/``SQLITE_NOTADB`` say damaged, and that advice keeps every file.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    detail = f"{exc} [{getattr(exc, 'sqlite_errorname', None) or type(exc).__name__}]"
    folder = path.parent
    if primary == _SQLITE_FULL or (primary in (_SQLITE_IOERR, _SQLITE_CANTOPEN) and _no_space(folder)):
        return StoreError(f"{folder}: no space left on the device holding the queue database ({detail}); "
                          "the queue is intact and nothing was changed: free some space, then run it again", "full")
    if primary == _SQLITE_IOERR:
        return StoreError(f"{path}: I/O error on the queue database ({detail}); the file was left untouched: "
                          "check the disk (free space, mount, kernel log), then run it again", "io")
    if primary == _SQLITE_CANTOPEN:
        return StoreError(f"{path}: cannot open the queue database ({detail}); the file was left untouched: "
                          f"check that {folder} exists, is writable and has free space", "cantopen")
    if primary in (_SQLITE_READONLY, _SQLITE_PERM):
        return StoreError(f"{path}: the queue database cannot be written here ({detail}): check the permissions "
                          f"of {path.name} and {folder}, and whether the file system is mounted read-only", "readonly")
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreError(f"{path}: the queue database stayed locked by another process ({detail}); nothing was "
                          "changed: run it again", "busy")
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StoreError(f"{path}: the queue database is damaged ({detail}); it was left untouched: before "
                          f"anything else copy {path.name} together with {path.name}-wal and {path.name}-shm "
                          "(if present) to a safe place, then see 'A damaged queue database' in docs/daemon.md",
                          "damaged")
    return StoreError(f"{path}: queue database error ({detail}); the file was left untouched", "other")


def _waits_for(conn: sqlite3.Connection, after_id: int | None) -> set[int]:
    """The jobs a job queued ``--after after_id`` waits for: that one and, through it, the ones it waits for."""
    chain: set[int] = set()
    while after_id is not None and after_id not in chain:
        chain.add(after_id)
        row = conn.execute("SELECT after_id FROM jobs WHERE id = ?", (after_id,)).fetchone()
        after_id = row[0] if row else None
    return chain


def check_one_writer(conn: sqlite3.Connection, output: str, after_id: int | None, job_id: int | None = None) -> None:
    """Refuse a job (new, or ``job_id`` retried) whose output (file, folder or run) is, holds or lies in
    the output of a job that has not ended, unless one of the two waits for the other (``after``,
    directly or through the jobs it waits for): two jobs writing one place at once would take each
    other's files, or fail each other halfway."""
    def parts(path: str) -> tuple[str, ...]:
        return tuple(p for p in os.path.normpath(path).split(os.sep) if p)

    def overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:  # the same place, or one inside the other
        n = min(len(a), len(b))
        return a[:n] == b[:n]

    target = parts(output)
    placeholders = ", ".join("?" * len(FINAL_STATUSES))
    rows = conn.execute(f"SELECT id, status, output, after_id FROM jobs WHERE output IS NOT NULL AND id IS NOT ? "
                        f"AND status NOT IN ({placeholders}) ORDER BY id", (job_id, *FINAL_STATUSES)).fetchall()
    writers = [(row[0], row[1], from_column(row[2]), row[3]) for row in rows
               if overlap(parts(from_column(row[2])), target)]
    if not writers:
        return
    waits_for = _waits_for(conn, after_id)
    for other, status, where, other_after in writers:
        if other in waits_for or (job_id is not None and job_id in _waits_for(conn, other_after)):
            continue
        place = ("writes there already" if parts(where) == target else
                 f"writes {where}, which holds it" if len(parts(where)) < len(target) else f"writes {where} inside it")
        if job_id is not None:  # a retry cannot be queued after anything: the other job must end first
            raise ArchivistError(f"{output}: job #{other} ({status}) {place}; retry this one once #{other} "
                                 f"has ended, or cancel #{other}")
        raise Conflict(("after",), f"{output}: job #{other} ({status}) {place}; write somewhere else, cancel "
                                   f"#{other}, or queue this one to run once it has ended ({{0}} {other})")


class Store:
    """An open queue database. One instance per process and thread (sqlite3 connections are not shared).

    ``read_only_fallback``: when the database cannot be opened for writing because the disk is full,
    an I/O error, permissions or a lock (never for damage), open it for reading only; every write
    then raises the reason (:attr:`read_only`). The read-only commands use it; the daemon and the
    workers do not (they wait for the write path to come back).
    """

    def __init__(self, path: str | os.PathLike | None = None, read_only_fallback: bool = False):
        self.path = Path(path) if path is not None else queue_db_path()
        self.read_only: StoreError | None = None
        # One connection may be used from several threads of a worker (progress from the encoder thread,
        # events from the main one): a transaction must never interleave with another's statements.
        self._lock = threading.RLock()
        try:
            self._conn = _open(self.path)
        except StoreError as exc:
            if not (read_only_fallback and exc.transient):
                raise
            self._conn = _open_read_only(self.path, exc)
            self.read_only = exc
            log.warning("the queue is read but cannot be written now: %s", exc)

    @classmethod
    def for_reading(cls, path: str | os.PathLike | None = None) -> Store:
        """The database opened read-only, as a face that only looks at the queue opens it.

        Never created, migrated or written (every write raises); only SQLite opens the file. On a
        full disk, where even SQLite's read-only mode cannot size its shared-memory file, a database
        whose write-ahead log holds nothing is read as immutable: the screen still shows the jobs.
        Raises :class:`StoreError` (``cantopen`` when there is no database yet) or an
        :class:`ArchivistError` for a file that is not an Archivist queue.
        """
        self = cls.__new__(cls)
        self.path = Path(path) if path is not None else queue_db_path()
        self._lock = threading.RLock()
        self.read_only = StoreError(f"{self.path}: opened for reading only", "readonly")
        if not self.path.exists():
            raise StoreError(f"{self.path}: no queue database yet", "cantopen")
        self._conn = _open_read_only(self.path, self.read_only)
        return self

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction; ``immediate`` takes the write lock at once (no lost updates).

        Any SQLite error inside it rolls it back and becomes one :class:`StoreError`.
        """
        if self.read_only is not None:
            raise StoreError(str(self.read_only), self.read_only.kind)
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            except sqlite3.Error as exc:
                raise store_error(self.path, exc) from None
            try:
                yield conn
            except sqlite3.Error as exc:
                self._rollback()
                raise store_error(self.path, exc) from None
            except BaseException:
                self._rollback()
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise store_error(self.path, exc) from None

    def _rollback(self) -> None:
        # SQLite may have rolled back by itself (SQLITE_FULL, SQLITE_IOERR): then there is nothing to undo.
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                log.warning("%s: rollback failed: %s", self.path, exc)

    def _query(self, sql: str, params: tuple = (), plain: bool = False) -> list:
        """Rows as :class:`sqlite3.Row`, or as plain tuples (``plain``: cheaper by far for many rows)."""
        with self._lock:
            try:
                cursor = self._conn.cursor()
                if plain:
                    cursor.row_factory = None
                return cursor.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                if self.read_only is not None:  # reading around a failing write path: say why, not "damaged"
                    raise StoreError(f"{self.read_only} (and reading failed too: {exc})", self.read_only.kind) from None
                raise store_error(self.path, exc) from None

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
            rows = self._query(f"{JOB_SELECT} WHERE status = ? ORDER BY id", (status,), plain=True)
        else:
            rows = self._query(f"{JOB_SELECT} ORDER BY id", plain=True)
        return [Job.from_values(r) for r in rows]

    def jobs_json(self, status: str | None = None) -> list[str]:
        """Each job (or those with ``status``) as one line of JSON, the same object as
        :meth:`Job.to_dict` with ``spec`` as its last key, in id order (``archivist queue list --json``).

        The spec goes out as the JSON text the store holds (written by ``json.dumps``), not parsed
        and encoded again: for 10,000 jobs that round trip was most of the command's time.
        """
        names = tuple(name for name in _PUBLIC_FIELDS if name != "spec")
        where, params = ("WHERE status = ?", (check_status(status),)) if status is not None else ("", ())
        rows = self._query(f"SELECT {', '.join(names)}, spec FROM jobs {where} ORDER BY id", params, plain=True)
        encode = json.JSONEncoder().encode  # ASCII: the same bytes in every locale
        lines = []
        for row in rows:
            head, spec = dict(zip(names, row[:-1])), row[-1]
            for key in PATH_COLUMNS:
                if isinstance(head.get(key), bytes):  # a name that is not UTF-8 (a BLOB): its escapes
                    head[key] = from_column(head[key])
            if BYTES_TAG in spec:  # the same: the tagged form is the store's, not the user's
                spec = encode(from_document(json.loads(spec)))
            lines.append(f'{encode(head)[:-1]}, "spec": {spec}}}')
        return lines

    def job_columns(self) -> tuple[list[str], list[tuple]]:
        """Every job's columns but its spec, as plain tuples in id order, and the columns' names.

        The first two columns are ``id`` and ``created_at`` (which key a job's spec: see
        :meth:`specs`). Path columns are as stored; :class:`JobsPoll` decodes them. This is the
        cheap half of a poll: the spec, the one large column, never changes after a job is queued.
        """
        columns = [c for c in JOB_FIELDS if c not in _INTERNAL_COLUMNS and c not in ("id", "created_at", "spec")]
        names = ["id", "created_at", *columns]
        return names, self._query(f"SELECT {', '.join(names)} FROM jobs ORDER BY id", plain=True)

    def specs(self, job_ids: list[int]) -> dict[tuple[int, float], dict]:
        """The specs of these jobs, keyed by (id, created_at); file names back as this process's strings."""
        found: dict[tuple[int, float], dict] = {}
        for i in range(0, len(job_ids), 500):  # SQLite's limit on bound parameters
            chunk = job_ids[i:i + 500]
            marks = ", ".join("?" for _ in chunk)
            for job_id, when, text in self._query(f"SELECT id, created_at, spec FROM jobs WHERE id IN ({marks})",
                                                  tuple(chunk), plain=True):
                try:
                    spec = from_document(json.loads(text or "{}"))
                except ValueError:
                    spec = {}
                found[(job_id, when)] = spec if isinstance(spec, dict) else {}
        return found

    def events(self, job_id: int | None = None, limit: int = 1000) -> list[Event]:
        """The newest ``limit`` events (of one job, or all), oldest first."""
        if job_id is None:
            rows = self._query("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._query("SELECT * FROM events WHERE job_id = ? ORDER BY id DESC LIMIT ?",
                               (job_id, limit))
        return [Event(**dict(r)) for r in reversed(rows)]

    def changes(self) -> int:
        """The change counter: moves whenever a job is added, removed, or changes status, priority,
        device, dependency, request or pending hook (not on heartbeats or progress)."""
        return int(self._query("SELECT n FROM queue_changes WHERE id = 1")[0][0])

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
                    raise Conflict(("after",), f"{{0}} {after_id}: no job #{after_id} in the queue")
            if output is not None and status not in FINAL_STATUSES:
                check_one_writer(conn, output, after_id)
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
        The query walks the queue's index in order and stops at the first job that fits, however
        many wait behind it.
        """
        devices = fitting_devices(slots)
        if not devices:
            return None
        marks = ", ".join("?" for _ in devices)
        now = time.time()
        with self.transaction() as conn:
            row = conn.execute(
                f"SELECT j.* FROM jobs j WHERE j.status = 'queued' AND j.device IN ({marks})"
                " AND (j.after_id IS NULL OR EXISTS (SELECT 1 FROM jobs a WHERE a.id = j.after_id AND a.status = 'done'))"
                " ORDER BY j.priority DESC, j.id ASC LIMIT 1", devices,
            ).fetchone()
            if row is None:
                return None
            slot = pick_slot(row["device"], slots)
            token = uuid.uuid4().hex
            conn.execute(
                "UPDATE jobs SET status = 'running', slot = ?, token = ?, worker_pid = NULL,"
                " worker_started = NULL, heartbeat = ?, started_at = COALESCE(started_at, ?),"
                " updated_at = ?, request = NULL, request_at = NULL WHERE id = ? AND status = 'queued'",
                (slot, token, now, now, now, row["id"]),
            )
            _event(conn, row["id"], "daemon", f"claimed on slot {slot}")
            return Job.from_row(conn.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone())

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


@dataclass(eq=False)
class PolledJob:
    """One job as a polling face reads it: its columns (``spec`` included, file names decoded) and
    the status to show. :meth:`JobsPoll.read` hands back the same object while the row is unchanged."""

    columns: dict
    status: str

    @property
    def id(self) -> int:
        return int(self.columns["id"])

    @property
    def spec(self) -> dict:
        return self.columns["spec"]


class JobsPoll:
    """The queue as a face that shows it every second reads it: the store opened read-only, each
    job's spec read and parsed once, and an unchanged row handed back as the same :class:`PolledJob`.

    With 10,000 queued jobs a poll reads the small columns, compares, and builds nothing; a face
    that caches what it made of a job by the :class:`PolledJob`'s identity rebuilds nothing either.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else queue_db_path()
        self._rows: dict[int, tuple[tuple, PolledJob]] = {}
        self._specs: dict[tuple, dict] = {}

    def read(self) -> list[PolledJob] | None:
        """Every job in id order; None when there is no queue database yet.

        Raises :class:`StoreError` (with its kind) or :class:`ArchivistError` when it cannot be read.
        """
        if not self.path.exists():
            return None
        with Store.for_reading(self.path) as store:
            names, rows = store.job_columns()
            missing = [r[0] for r in rows if r[:2] not in self._specs]
            if missing:
                self._specs.update(store.specs(missing))
        out = []
        seen = set()
        for row in rows:
            job_id = row[0]
            seen.add(job_id)
            cached = self._rows.get(job_id)
            if cached is not None and cached[0] == row:
                out.append(cached[1])
                continue
            columns = dict(zip(names, row))
            columns["spec"] = self._specs.get(row[:2], {})
            for key in PATH_COLUMNS:
                if isinstance(columns.get(key), (str, bytes)):
                    columns[key] = from_column(columns[key])
            job = PolledJob(columns, shown_status(str(columns.get("status") or "?"), columns.get("request")))
            self._rows[job_id] = (row, job)
            out.append(job)
        if len(self._rows) > len(seen) or len(self._specs) > len(seen):  # removed jobs, another database
            for job_id in set(self._rows) - seen:
                del self._rows[job_id]
            for key in [k for k in self._specs if k[0] not in seen or self._rows[k[0]][0][:2] != k]:
                del self._specs[key]
        return out

    def events(self, job_id: int, limit: int = 8) -> list[Event]:
        """The newest ``limit`` events of one job, oldest first ([] when there is no database yet)."""
        if not self.path.exists():
            return []
        with Store.for_reading(self.path) as store:
            return store.events(job_id, limit)


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


def add_events(conn: sqlite3.Connection, job_ids: list[int], source: str, message: str) -> None:
    """The same event for several jobs, inside the caller's transaction (bulk actions)."""
    now = time.time()
    conn.executemany("INSERT INTO events (job_id, time, source, message) VALUES (?, ?, ?, ?)",
                     [(job_id, now, source, message) for job_id in job_ids])


def fitting_devices(slots: list[str]) -> list[str]:
    """The device requests (``any``, ``cpu``, ``cuda:N``) that one of the free ``slots`` can run."""
    devices = ["any"] if slots else []
    if any(s.startswith("cpu") for s in slots):
        devices.append("cpu")
    return devices + [s for s in slots if s.startswith("cuda:")]


def private_dirs(folder: Path) -> None:
    """Create ``folder`` and any missing parents owner-only (``mkdir(parents=True)`` would not)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)


def _open(path: Path) -> sqlite3.Connection:
    """Open (creating when missing, owner-only) and check or migrate the database.

    Only SQLite opens the file: a file that is not a database is recognised by SQLite's own
    ``SQLITE_NOTADB`` on the first read, before anything is written.
    """
    try:
        private_dirs(path.parent)
    except OSError as exc:
        raise StoreError(f"{path.parent}: cannot create state folder: {exc.strerror}", "cantopen") from None
    created = not path.exists()
    try:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise store_error(path, exc) from None
    try:
        if created:
            # SQLite gives its -wal and -shm files the database file's mode, so they are owner-only too.
            os.chmod(path, 0o600)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        _check_identity(conn, path)  # before anything writes: a foreign file stays byte-for-byte as it was
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() != "wal":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                log.warning("%s: journal mode %s (WAL unavailable on this filesystem?)", path, mode)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = OFF")
        _check_and_migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise store_error(path, exc) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _open_read_only(path: Path, why: StoreError) -> sqlite3.Connection:
    """The database for reading only, when the write path fails (``why``); raises ``why`` if that fails too.

    First SQLite's read-only mode. On a full disk that can fail as well (the shared-memory file of a
    WAL database cannot be sized); when no write-ahead log holds anything the database file alone is
    the whole queue, and is read as immutable.
    """
    if not path.exists():
        raise why
    uri = path.resolve().as_uri()
    tries = [f"{uri}?mode=ro"]
    try:
        wal_size = os.stat(f"{path}-wal").st_size
    except FileNotFoundError:
        wal_size = 0
    except OSError:
        wal_size = -1
    if wal_size == 0:
        tries.append(f"{uri}?mode=ro&immutable=1")
    for target in tries:
        conn = None
        try:
            conn = sqlite3.connect(target, uri=True, timeout=5.0, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA query_only = 1")
            _check_identity(conn, path)
            version = _schema_version(conn, path)
            if version > SCHEMA_VERSION:
                raise ArchivistError(f"{path}: queue database has schema version {version}, this Archivist knows "
                                     f"up to {SCHEMA_VERSION}: upgrade Archivist")
            if version < READABLE_FROM:
                raise why
            conn.execute("SELECT id FROM jobs LIMIT 1").fetchall()
            return conn
        except sqlite3.Error:
            if conn is not None:
                conn.close()
            continue
        except BaseException:
            if conn is not None:
                conn.close()
            raise
    raise why


def _tables(conn: sqlite3.Connection) -> set[str]:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    tables.discard("sqlite_sequence")
    return tables


def _check_identity(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file that is not SQLite, or a database that holds tables but is not ours (read-only checks)."""
    try:
        tables = _tables(conn)
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) == _SQLITE_NOTADB:
            raise StoreError(
                f"{path}: not an SQLite database (a damaged queue or another program's file); it was left "
                "untouched: keep it, and see 'A damaged queue database' in docs/daemon.md", "damaged") from None
        raise
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if tables and (app_id != APPLICATION_ID or "schema_version" not in tables):
        raise ArchivistError(
            f"{path}: not an Archivist queue database (tables: {', '.join(sorted(tables))}); "
            "it was left untouched: point ARCHIVIST_HOME elsewhere, or move the file aside"
        )


def _schema_version(conn: sqlite3.Connection, path: Path) -> int:
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    if row is None:
        raise StoreError(f"{path}: queue database has no schema version row (damaged); it was left untouched",
                         "damaged")
    return int(row[0])


def _check_and_migrate(conn: sqlite3.Connection, path: Path) -> None:
    # A database at the current version is only read: opening it writes nothing (a full disk still opens).
    tables = _tables(conn)
    if tables and _schema_version(conn, path) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _tables(conn):
            version = 0
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version VALUES (0)")
        else:
            _check_identity(conn, path)
            version = _schema_version(conn, path)
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
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
