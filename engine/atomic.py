"""Writing a file whole or not at all: a temporary file beside it, then one rename (torch-free)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from engine.errors import ArchivistError, os_error_line


class WriteFailed(ArchivistError):
    """An atomic write that did not happen (nothing was left behind); ``errno`` says why where the
    operating system did (``ENOSPC`` for a full disk, also when a writer reported it in its own words)."""

    def __init__(self, message: str, errno_: int | None = None):
        super().__init__(message)
        self.errno = errno_

    def __reduce__(self):  # keeps errno when a worker process sends it back
        return type(self), (str(self), self.errno)


def atomic_write(path: Path, write: Callable[[Path], object], *, temp: Path | None = None, fsync: bool = False,
                 parents: bool = True) -> None:
    """Write through ``write(tmp_path)`` to a temporary file beside ``path``, then rename into place.

    Nothing is left behind on failure. An operating-system error (a full disk, a name too long, a
    folder that cannot be written) becomes one :class:`WriteFailed` (an :class:`ArchivistError`)
    naming ``path``.

    Args:
        path: the file to write (replaced by the rename if it exists).
        write: writes the whole content to the path it is given (any name: choose the format
            yourself, not by the name's suffix).
        temp: the temporary name to write under, for writers whose partial files carry a name
            others look for (a job's tagged ``.NAME.archivist-TAG.part``, see
            :mod:`engine.ownership`); it must lie beside ``path``. Default: a fresh
            ``.NAME.PID.RANDOM.part`` (:func:`engine.models.files.remove_stale_temp_files` clears
            those of dead writers).
        fsync: flush the file to the disk before the rename, for state that must survive a power
            cut (a run's ``run.json``); not for bulk output, where it costs a multiple of the write.
        parents: create missing parent folders; callers that record every folder they make (a
            job's ledger) make their own and pass False.
    """
    path = Path(path)
    if temp is not None and Path(temp).parent != path.parent:
        raise ValueError(f"atomic_write: the temporary name {temp} must lie beside {path} (one rename, one folder)")
    tmp = None
    try:
        if parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        tmp = str(temp) if temp is not None else _temp_beside(path)
        write(Path(tmp))
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                Path(tmp).unlink(missing_ok=True)
            except OSError:  # a folder by that name, say: the first error is the news
                pass
        if isinstance(exc, OSError):
            named = exc.filename is None or (isinstance(exc.filename, (str, os.PathLike))
                                             and os.fspath(exc.filename) == tmp)
            raise WriteFailed(os_error_line(exc, path if named else exc.filename), exc.errno) from None
        if isinstance(exc, Exception) and not isinstance(exc, ArchivistError) and _disk_full(path.parent):
            # Some writers (safetensors', torch's C++ one) report a full disk in their own words.
            raise WriteFailed(os_error_line(OSError(errno.ENOSPC, "No space left on device"), path),
                              errno.ENOSPC) from None
        raise


def _fsync_file(name: str) -> None:
    fd = os.open(name, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_beside(path: Path) -> str:
    """Create an empty hidden file beside ``path``: ``.NAME.PID.RANDOM.part``.

    Made with mode 0666 less the umask, so the finished file has the permissions any file the user
    creates has (the state directory, 0700, keeps its own files private). The writer's process id
    in the name lets a later run tell a partial file whose writer died from one still being
    written. The name is kept short: a name near the file system's limit still gets one.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.name[:64]}.{os.getpid()}.{os.urandom(4).hex()}.part"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        except OSError as exc:  # named after the file the caller asked for: the hidden name means nothing to a user
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        return str(tmp)
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def _disk_full(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024
