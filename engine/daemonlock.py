"""The daemon's lock: one daemon per state directory, on something nobody can delete under it.

The daemon holds an exclusive ``flock`` on the state directory itself (a descriptor of the folder,
not of a file in it). A folder cannot be unlinked while it holds ``queue.db``, a tmp cleaner that
removes old files does not touch it, and the kernel drops the lock the moment the daemon dies,
``kill -9`` included. ``daemon.pid`` is only a note for people: deleting it changes nothing, and the
daemon writes it again within one poll.

The daemon also keeps its old lock on ``daemon.pid``: a daemon of an earlier Archivist (which knows
only that one) and this one refuse each other, and on a file system that cannot lock a folder
(NFS emulates ``flock`` with byte-range locks, which a read-only folder descriptor cannot take) the
pid file's lock is what is left, with a warning in the log.

Finding the daemon takes no lock that could stand in its way: the lock table of the kernel
(``/proc/locks``) names the holder's pid; where it cannot be read, a shared lock is tried for an
instant (the daemon's own attempt retries for a second, so such a probe never makes it fail).

Kept free of the queue package's imports: the TUI asks "is the daemon up" every second.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from pathlib import Path

from engine.errors import ArchivistError

log = logging.getLogger(__name__)

PID_FILE = "daemon.pid"
ACQUIRE_PATIENCE = 1.0  # seconds the daemon retries a lock held by a client's momentary probe
# flock on a folder descriptor fails with these where the file system cannot lock folders (NFS).
_UNSUPPORTED = {errno.EBADF, errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP}


def _open_dir(home: Path) -> int:
    return os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _try_flock(fd: int, how: int, patience: float = 0.0) -> bool:
    """True when the lock was taken; False while someone else holds it (after ``patience`` seconds)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, how | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def _locks_table() -> list[tuple[str, str, int, str]] | None:
    """``/proc/locks`` as (type, mode, pid, dev:inode) rows, or None where it cannot be read."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    rows = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[1] != "->":  # "->" marks a waiter, not a holder
            try:
                rows.append((parts[1], parts[3], int(parts[4]), parts[5]))
            except ValueError:
                continue
    return rows


def _lock_key(st: os.stat_result) -> str:
    # The kernel writes "major:minor:inode", the device numbers in hex.
    return f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"


def _holder_pid(path: Path, table: list[tuple[str, str, int, str]]) -> int | None:
    """The pid holding an exclusive flock on ``path`` per the kernel's table: 0 when the holder lives
    in a pid namespace we cannot see, None when nobody holds one."""
    try:
        key = _lock_key(os.stat(path))
    except OSError:
        return None
    for kind, mode, pid, where in table:
        if kind == "FLOCK" and mode == "WRITE" and where == key:
            return max(pid, 0)
    return None


def read_pid_file(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
        return int(text) if text else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _locked(path: Path, directory: bool) -> bool:
    """True while someone holds an exclusive flock on ``path`` (a momentary shared lock tells)."""
    try:
        fd = _open_dir(path) if directory else os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        try:
            taken = _try_flock(fd, fcntl.LOCK_SH)
        except OSError:  # a folder on a file system that cannot lock folders: nobody holds it
            return False
        return not taken
    finally:
        os.close(fd)  # drops our shared lock, if we got it


def daemon_holder(home: Path) -> int | None:
    """The running daemon's pid for state directory ``home``; -1 when one runs but its pid is unknown
    (no lock table, no pid file); None when none runs."""
    pid_file = home / PID_FILE
    table = _locks_table()
    if table:
        for path in (home, pid_file):
            pid = _holder_pid(path, table)
            if pid:
                return pid
            if pid == 0:
                return read_pid_file(pid_file) or -1
    # No table, or nothing in it (a sandbox's kernel may keep it empty): the locks themselves tell.
    if _locked(home, True) or _locked(pid_file, False):
        return read_pid_file(pid_file) or -1
    return None


def daemon_state(home: Path) -> str:
    """``up`` while a daemon holds the lock on ``home`` (:func:`daemon_holder`), else ``down``, or
    ``none`` while there is no queue yet (no ``queue.db``): what the faces show as the daemon's state."""
    if daemon_holder(home) is not None:
        return "up"
    return "down" if (home / "queue.db").exists() else "none"


class DaemonLock:
    """What the daemon holds for its whole life: the folder's lock and the pid file's lock."""

    def __init__(self, home: Path):
        self.home = home
        self.pid_file = home / PID_FILE
        self.dir_fd: int | None = None
        self.pid_fd: int | None = None

    def acquire(self) -> None:
        """Take both locks, or raise naming the daemon that holds them."""
        try:
            dir_fd = _open_dir(self.home)
        except OSError as exc:
            raise ArchivistError(f"cannot open the state directory {self.home}: {exc.strerror}") from None
        try:
            taken = _try_flock(dir_fd, fcntl.LOCK_EX, ACQUIRE_PATIENCE)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                os.close(dir_fd)
                raise ArchivistError(f"cannot lock the state directory {self.home}: {exc.strerror}") from None
            log.warning("%s: this file system cannot lock a folder (%s); only %s guards against a second "
                        "daemon, and deleting it would let one start", self.home, exc.strerror, self.pid_file)
            os.close(dir_fd)
            dir_fd, taken = None, True
        if not taken:
            os.close(dir_fd)
            self._refuse()
        self.dir_fd = dir_fd
        try:
            if not self._lock_pid_file(ACQUIRE_PATIENCE):
                self._refuse()  # a daemon of an earlier Archivist, which locks only the pid file
        except BaseException:
            self.release()
            raise

    def _refuse(self):
        pid = daemon_holder(self.home)
        shown = pid if pid and pid > 0 else "?"
        raise ArchivistError(f"the daemon is already running (pid {shown}, state directory {self.home})")

    def _lock_pid_file(self, patience: float = 0.0) -> bool:
        fd = os.open(self.pid_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if not _try_flock(fd, fcntl.LOCK_EX, patience):
            os.close(fd)
            return False
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            os.fsync(fd)
        except OSError as exc:  # a full disk: the lock is what counts; heal() writes the pid once it can
            log.warning("%s: cannot write the pid now (%s); written once possible", self.pid_file, exc.strerror)
        if self.pid_fd is not None:
            os.close(self.pid_fd)
        self.pid_fd = fd
        return True

    def heal(self) -> None:
        """Write ``daemon.pid`` again when someone deleted or replaced it (called on every poll)."""
        if self.pid_fd is None:
            return
        try:
            current = os.stat(self.pid_file)
            mine = os.fstat(self.pid_fd)
            if (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                if os.pread(self.pid_fd, 32, 0) == f"{os.getpid()}\n".encode():
                    return
                os.ftruncate(self.pid_fd, 0)  # someone wrote into it: put our pid back
                os.pwrite(self.pid_fd, f"{os.getpid()}\n".encode(), 0)
                log.warning("%s was overwritten: pid %d written again", self.pid_file, os.getpid())
                return
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("%s: %s", self.pid_file, exc.strerror)
            return
        try:
            if self._lock_pid_file():
                log.warning("%s was deleted or replaced: written again (pid %d)", self.pid_file, os.getpid())
        except OSError as exc:
            log.warning("cannot write %s again: %s", self.pid_file, exc.strerror)

    def release(self) -> None:
        """Remove the pid file (only while it is ours) and let go of both locks."""
        if self.pid_fd is not None:
            try:
                current = os.stat(self.pid_file)
                mine = os.fstat(self.pid_fd)
                if (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                    os.unlink(self.pid_file)
            except OSError:
                pass
            os.close(self.pid_fd)
            self.pid_fd = None
        if self.dir_fd is not None:
            os.close(self.dir_fd)
            self.dir_fd = None
