"""Writing a file whole or not at all: a temporary file beside it, then one rename (torch-free)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from engine.errors import ArchivistError, os_error_line


def atomic_write(path: Path, write) -> None:
    """Write through ``write(tmp_path)`` to a temporary file beside ``path``, then rename into place.

    Nothing is left behind on failure. An operating-system error (a full disk, a name too long, a
    folder that cannot be written) becomes one :class:`ArchivistError` naming ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_beside(path)
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ArchivistError(os_error_line(exc, path if exc.filename in (None, tmp) else exc.filename)) from None
        if isinstance(exc, Exception) and not isinstance(exc, ArchivistError) and _disk_full(path.parent):
            # Some writers (safetensors', torch's C++ one) report a full disk in their own words.
            raise ArchivistError(os_error_line(OSError(errno.ENOSPC, "No space left on device"), path)) from None
        raise


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
        return str(tmp)
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def _disk_full(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024
