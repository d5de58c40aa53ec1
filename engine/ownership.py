"""What a job owns: the files it created, recorded as it creates them, and the only ones it deletes.

The rules (``docs/security.md`` states them for users):

- An output is written under a hidden temporary name beside it, ``.NAME.archivist-TAG.part``
  (``TAG`` names the writer: ``job12`` for queued job 12, ``p4711`` for process 4711 running a
  command directly), and takes its final name by one rename when it is complete.
- A file that exists is never replaced, except by that final rename under ``--overwrite``. The
  rename is exclusive without it (a hard link, which fails when the name exists), so a file that
  appeared while the job ran is never lost either.
- A job keeps a ledger, ``owned.jsonl`` in its job folder: a line before it creates a partial file
  or a folder, a line after each final rename. Cancelling removes what the ledger lists and
  nothing else: partial files, finished files that replaced nothing, folders it made that are
  empty again. A file that existed before the job is never in it.
- The output is never the input: paths are compared by device and inode where they exist, so a
  symbolic link, a hard link or another spelling of the same path is seen through.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from engine.document import Conflict
from engine.errors import ArchivistError

log = logging.getLogger(__name__)

LEDGER_FILE = "owned.jsonl"
_PARTIAL_RE = re.compile(r"^\.(?P<name>.+)\.archivist-(?P<tag>[A-Za-z0-9]+)\.part$")


def process_tag() -> str:
    """The tag of a command run directly (not queued): ``p`` and this process's id."""
    return f"p{os.getpid()}"


def job_tag(job_id: int) -> str:
    """The tag of queued job ``job_id``: the same in every attempt, so a resumed job finds its files."""
    return f"job{int(job_id)}"


def partial_path(final: Path, tag: str) -> Path:
    """The hidden name ``final`` is written under until it is complete."""
    final = Path(final)
    return final.with_name(f".{final.name}.archivist-{tag}.part")


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists (a partial file of a live writer is never touched)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def stale_partials(final: Path) -> list[Path]:
    """Partial files of ``final`` left by a command run directly whose process has died."""
    final = Path(final)
    folder = final.parent if str(final.parent) else Path(".")
    found = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        m = _PARTIAL_RE.match(name)
        if m and m["name"] == final.name and m["tag"].startswith("p") and m["tag"][1:].isdigit():
            if not pid_alive(int(m["tag"][1:])):
                found.append(folder / name)
    return found


# -- comparing paths ------------------------------------------------------------------------------
def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """``a`` and ``b`` are one file (or folder): by device and inode where both exist, else by their
    resolved paths (symbolic links and ``..`` followed)."""
    a, b = Path(a), Path(b)
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def is_within(child: str | os.PathLike, parent: str | os.PathLike) -> bool:
    """``child`` is ``parent`` or lies somewhere below it (compared by inode along the way)."""
    child, parent = Path(child).resolve(), Path(parent)
    for folder in (child, *child.parents):
        if same_file(folder, parent):
            return True
    return False


def check_not_input(output: str | os.PathLike, inputs: Iterable[str | os.PathLike], what: str = "output") -> None:
    """Refuse an output that is one of the inputs (any spelling of the same file)."""
    for source in inputs:
        if Path(output).exists() and same_file(output, source):
            shown = f"{output}" if str(output) == str(source) else f"{output} (the same file as {source})"
            raise ArchivistError(f"{shown}: the {what} is the input; choose another {what} path "
                                 "(the source is never written over)")


def check_absent(path: str | os.PathLike, overwrite: bool, mine: Iterable[str] = (), what: str = "output") -> None:
    """Refuse an existing ``path`` unless ``overwrite`` or this job made it itself (``mine``)."""
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not overwrite and str(path.absolute()) not in set(mine):
        # Named by the key (``overwrite``): the command line shows it as its flag (``--overwrite``).
        raise Conflict(("overwrite",), f"{path}: {what} exists; choose another path, or {{0}} to replace it "
                                       "(the old file stays until the new one is complete)")


def human_bytes(n: float) -> str:
    """A size in the unit that fits: ``512 B``, ``1.8 MB``, ``3.2 GB`` (powers of 1000, as disks are sold)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    raise AssertionError("unreachable")


# -- writing --------------------------------------------------------------------------------------
def write_new(path: Path, data) -> None:
    """Write ``data`` (bytes or a numpy buffer) to ``path``, created with the umask's permissions.

    Not synced to disk: a killed process loses nothing the kernel has, and an fsync per image made
    a folder of small images three times slower (as :func:`engine.atomic.atomic_write`, it
    guards against a killed writer, not against a power cut).
    """
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o666)
    try:
        view = memoryview(data).cast("B")
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)


def place(partial: Path, final: Path, overwrite: bool, ledger: Ledger | None = None) -> bool:
    """Give the complete file ``partial`` its final name; returns True when it replaced a file.

    Without ``overwrite`` the name is taken exclusively (a hard link, then the partial name is
    dropped): a file that appeared at ``final`` meanwhile is refused, never replaced. The ledger
    records the final name as this job's; one that replaced a file is recorded as such, so a
    cancel never removes it (the old file is gone, the new one is the only copy left).
    """
    partial, final = Path(partial), Path(final)
    try:
        os.link(partial, final)
    except FileExistsError:
        if not overwrite:
            raise Conflict(("overwrite",), f"{final}: exists (it appeared while the job ran); choose another "
                                           "path, or {0} to replace it") from None
        return _replace(partial, final, ledger, replaced=True)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise ArchivistError(f"{final}: cannot write: {exc.strerror or exc}") from None
        # A file system without hard links (FAT, some network shares): check, then rename.
        exists = final.exists()
        if exists and not overwrite:
            raise Conflict(("overwrite",), f"{final}: exists (it appeared while the job ran); choose another "
                                           "path, or {0} to replace it") from None
        return _replace(partial, final, ledger, replaced=exists)
    if ledger is not None:
        ledger.record("final", final, replaced=False)
    partial.unlink()
    return False


def place_folder(partial: Path, final: Path, ledger: Ledger | None = None) -> None:
    """Give the complete folder ``partial`` its final name: ``final`` must not exist or be an empty
    folder (a rename replaces an empty folder and refuses any other, so nothing is ever lost)."""
    partial, final = Path(partial), Path(final)
    existed = final.exists()
    try:
        os.rename(partial, final)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise ArchivistError(f"{final}: output folder is not empty anymore (something was put there while "
                                 f"the job ran); the finished frames are in {partial}") from None
        raise ArchivistError(f"{final}: cannot write: {exc.strerror or exc}") from None
    if ledger is not None:
        ledger.record("final", final, replaced=existed)


def _replace(partial: Path, final: Path, ledger: Ledger | None, replaced: bool) -> bool:
    os.replace(partial, final)
    if ledger is not None:
        ledger.record("final", final, replaced=replaced)
    return replaced


# -- the ledger -----------------------------------------------------------------------------------
class Ledger:
    """What one job created, in the order it created it (``owned.jsonl`` in its job folder).

    Events: ``partial`` (a hidden file or folder about to be written), ``staged`` (a partial file
    now complete, waiting for its final rename), ``final`` (a final name given; ``replaced`` says
    whether a file was there), ``folder`` (a folder about to be created), ``file`` (a plain file
    about to be created, such as a dataset's settings), ``pair`` (a dataset pair written). With no
    folder the ledger lives in memory: a command run directly removes its own partial files when
    it fails, and nothing outlives the process.
    """

    def __init__(self, folder: Path | None, tag: str):
        self.folder = Path(folder) if folder is not None else None
        self.tag = tag
        self._memory: list[dict] = []

    @property
    def path(self) -> Path | None:
        return self.folder / LEDGER_FILE if self.folder is not None else None

    def partial_path(self, final: Path) -> Path:
        return partial_path(final, self.tag)

    def record(self, event: str, path: str | os.PathLike, **extra) -> None:
        """Append one line, written before the file it announces is created (one ``write`` to a file
        opened for appending: a process killed at any point leaves whole lines, at most one torn)."""
        entry = {"event": event, "path": str(Path(path).absolute()), **extra}
        if self.path is None:
            self._memory.append(entry)
            return
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def entries(self) -> list[dict]:
        if self.path is None:
            return list(self._memory)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for line in raw.split(b"\n"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn last line: its file was never created
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                out.append(entry)
        return out

    def paths(self, event: str) -> list[str]:
        """The paths recorded with ``event``, first record first, each once."""
        return list(dict.fromkeys(e["path"] for e in self.entries() if e["event"] == event))

    def finals(self) -> dict[str, bool]:
        """Final names this job gave → whether each replaced a file that was there."""
        return {e["path"]: bool(e.get("replaced")) for e in self.entries() if e["event"] == "final"}

    def discard_partials(self) -> list[Path]:
        """Remove every partial file or folder this job recorded (a fresh start, a cancel)."""
        removed = []
        for text in self.paths("partial"):
            path = Path(text)
            if _remove(path):
                removed.append(path)
        return removed

    def remove_created(self, keep_finals: bool = False) -> list[Path]:
        """Undo the job: its partial files, its final files that replaced nothing (unless
        ``keep_finals``), the plain files and the folders it created once they are empty. Then the
        ledger itself goes. Returns what was removed."""
        removed = self.discard_partials()
        if not keep_finals:
            for text, replaced in self.finals().items():
                if not replaced and _remove(Path(text)):
                    removed.append(Path(text))
        for text in self.paths("file"):
            if _remove(Path(text)):
                removed.append(Path(text))
        for text in sorted(self.paths("folder"), key=lambda p: -len(Path(p).parts)):
            try:
                os.rmdir(text)  # only when empty: a folder that holds anything else stays
                removed.append(Path(text))
            except OSError:
                pass
        self.forget()
        return removed

    def forget(self) -> None:
        """Drop the ledger (its files were removed, or they are the user's now)."""
        self._memory.clear()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def mkdirs(self, folder: Path) -> None:
        """Create ``folder`` and its missing parents, recording each before it is made."""
        missing = []
        folder = Path(folder)
        while not folder.exists():
            missing.append(folder)
            if folder.parent == folder:
                break
            folder = folder.parent
        for path in reversed(missing):
            self.record("folder", path)
            try:
                path.mkdir(exist_ok=True)
            except OSError as exc:
                raise ArchivistError(f"{path}: cannot create output folder: {exc.strerror or exc}") from None


def _remove(path: Path) -> bool:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("%s: could not be removed: %s", path, exc.strerror or exc)
        return False
    log.info("removed %s", path)
    return True
