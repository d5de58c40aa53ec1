"""Exceptions the faces turn into one clear line (``archivist: error: ...``) with no traceback."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class ArchivistError(Exception):
    """An expected failure: bad file, bad value, missing resource. Exit code 1."""

    exit_code = 1


class UsageError(ArchivistError):
    """The command line itself is wrong (unknown option, missing argument). Exit code 2."""

    exit_code = 2


def os_error_line(exc: OSError, path: str | os.PathLike | None = None, what: str = "a file") -> str:
    """One line for an operating-system error: the file it concerns and what happened, in plain words.

    ``path`` names the file when the error itself does not (a write that fills the disk carries
    no file name). ``what`` is what the file should have been (``a model file``).
    """
    shown = path if path is not None else exc.filename
    prefix = f"{shown}: " if shown is not None else ""
    if exc.errno == errno.ELOOP:
        return f"{prefix}a symbolic link loop (too many levels of symbolic links), not {what}"
    if exc.errno == errno.ENAMETOOLONG and shown is not None:
        longest = max((len(os.fsencode(part)) for part in Path(os.fsdecode(shown)).parts), default=0)
        return (f"{prefix}file name too long (a name of {longest} bytes in the path; "
                f"the file system allows {_name_max(shown)} per name)")
    if exc.errno == errno.ENOENT and shown is not None and os.path.islink(shown):
        return f"{prefix}a symbolic link to a missing file ({os.readlink(shown)})"
    if exc.errno == errno.ENOENT:
        return f"{prefix}no such file or folder"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{prefix}no space left on the device: free some space, then run it again"
    if exc.errno == errno.EFBIG:
        return f"{prefix}file too large for the file system or the process's file-size limit"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{prefix}permission denied"
    if exc.errno == errno.EROFS:
        return f"{prefix}read-only file system"
    return f"{prefix}{exc.strerror or exc}"


def not_a_file(path: str | os.PathLike, what: str = "file") -> str:
    """Why ``path``, which is not a regular file, cannot be read as one: missing, or the kind of thing
    it is (a folder, a FIFO, a device, a socket). A FIFO is never opened: reading one would wait
    for a writer that may never come."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return os_error_line(exc, path, f"a {what}") if exc.errno != errno.ENOENT else f"{path}: no such {what}"
    import stat

    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISBLK(mode) or stat.S_ISCHR(mode)
            else "not a regular file")
    return f"{path}: {kind}, not {'an' if what[:1] in 'aeiou' else 'a'} {what}"


def _name_max(path: str | os.PathLike) -> str:
    folder = Path(os.fsdecode(path)).parent
    while True:
        try:
            return f"{os.pathconf(folder, 'PC_NAME_MAX')} bytes"
        except OSError:
            if folder == folder.parent:
                return "fewer"
            folder = folder.parent
