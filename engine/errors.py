"""Exceptions the faces turn into one clear line (``archivist: error: ...``) with no traceback."""


class ArchivistError(Exception):
    """An expected failure: bad file, bad value, missing resource. Exit code 1."""

    exit_code = 1


class UsageError(ArchivistError):
    """The command line itself is wrong (unknown option, missing argument). Exit code 2."""

    exit_code = 2
