"""What the TUI reads from ``ARCHIVIST_HOME``, without torch, and how it asks the engine to act.

Everything here runs in the TUI's thread workers. State is read through the engine's torch-free
read API (the queue's store opened read-only, the daemon's lock, a run's status and metrics
tail), and this module only formats it; anything that needs torch (import, export, preview,
speed test) runs as a separate ``archivist`` process so the TUI never loads it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.paths import archivist_home


# -- models ----------------------------------------------------------------------------------
def list_models() -> list[Any]:
    """The library's entries (``engine.models.library.ModelEntry``), read from file headers only (no torch)."""
    from engine.models.library import Library

    return Library().list()


def human_count(n: int | None) -> str:
    """43 k, 32.6 M: parameter counts and iterations at a glance."""
    if n is None:
        return "–"
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} M"
    if n >= 10_000:
        return f"{n / 1e3:.0f} k"
    if n >= 1000:
        return f"{n / 1e3:.1f} k"
    return str(n)


# -- engine commands in a separate process ---------------------------------------------------
@dataclass
class CommandResult:
    """What a child ``archivist`` process said."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def message(self) -> str:
        """The last line worth showing, in the TUI's words: the error on failure, the output on success.

        The child is the command line, whose errors end with pointers for a shell user
        (``(see 'archivist models export --help')``) and start with ``archivist: error:``; in the
        TUI neither means anything, so both are dropped.
        """
        text = (self.stderr if not self.ok else self.stdout).strip() or self.stderr.strip()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines:
            return "done" if self.ok else f"failed ({self.returncode})"
        return tui_words(lines[-1])


_SEE_HELP = re.compile(r"\s*\(see '[^']*--help'\)\s*$")
_ARGUMENT = re.compile(r"^argument (?:-{1,2})?([A-Za-z][\w-]*)(?:/-{1,2}[\w-]+)*: ")


def tui_words(line: str) -> str:
    """A command-line message as the TUI shows it.

    No ``archivist: error:`` prefix, no ``(see 'archivist ... --help')`` pointer, and argparse's
    ``argument --iter: invalid int value`` names the field (``iter: invalid int value``), not the flag.
    """
    line = line.strip()
    if line.startswith("archivist: error: "):
        line = line[len("archivist: error: "):]
    line = _SEE_HELP.sub("", line)
    line = _ARGUMENT.sub(lambda m: f"{m.group(1).lower()}: ", line)
    # The engine's "how to get a model" hints name commands; here the Models screen's f does it.
    line = re.sub(r"get it with 'archivist models fetch [\w.-]+'", "fetch it with f on 4 Models", line)
    return line.replace("(archivist models fetch NAME)", "(f on 4 Models fetches one)")


def archivist_argv() -> list[str]:
    """How to start the ``archivist`` command from here (the same interpreter, the same tree)."""
    return [sys.executable, "-m", "archivist_tui.cli"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


_running: dict[str, subprocess.Popen] = {}
_running_lock = threading.Lock()


def run_archivist(args: list[str], timeout: float = 600, slot: str | None = None) -> CommandResult:
    """Run ``archivist ARGS`` in a child process (the engine, torch included, lives there).

    Every action of the TUI that the engine does goes through this one door: the same commands a
    shell user types. With ``slot``, starting a command ends the one still running in the same
    slot: a preview made stale by a newer edit stops instead of taking the CPU from the one that
    matters (its result reads ``superseded``).
    """
    argv = archivist_argv() + args
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
                            stdin=subprocess.DEVNULL)
    if slot is not None:
        with _running_lock:
            old = _running.get(slot)
            _running[slot] = proc
        if old is not None and old.poll() is None:
            old.terminate()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return CommandResult(args, 124, "", f"archivist {' '.join(args)}: timed out after {timeout:.0f} s")
    finally:
        if slot is not None:
            with _running_lock:
                if _running.get(slot) is proc:
                    del _running[slot]
    if proc.returncode < 0 and slot is not None:
        return CommandResult(args, proc.returncode, out, "superseded")
    return CommandResult(args, proc.returncode, out, err)


def tui_cache_dir(create: bool = True) -> Path:
    """``ARCHIVIST_HOME/cache/tui``: previews rendered for the TUI (made unless ``create`` is false)."""
    path = archivist_home() / "cache" / "tui"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


# -- training runs ---------------------------------------------------------------------------
_runs_watch: Any = None


def list_runs() -> list[Any]:
    """Every run folder, newest first, with its metrics so far (:class:`engine.train.runs.RunsWatch`)."""
    global _runs_watch
    if _runs_watch is None:
        from engine.train.runs import RunsWatch

        _runs_watch = RunsWatch()
    return _runs_watch.read()


# -- the job queue ---------------------------------------------------------------------------
@dataclass
class JobRow:
    """One job as listed from the store."""

    id: int
    kind: str
    name: str
    status: str
    progress: float  # 0..1
    rate: str
    eta: str
    device: str
    detail: dict[str, Any] = field(default_factory=dict)
    name_tail: str = ""  # the end of ``name`` kept whole when it is shortened (a restore's chain)


def spec_fields(kind: str, spec: dict[str, Any]) -> list[tuple[str, str]]:
    """A job spec as ``(label, value)`` lines a person reads: input, output, chain, then the rest.

    Nested options (a restore's ``video`` settings) read ``video.codec  ffv1``; lists are joined,
    booleans say yes/no and unset values are left out, so the pane shows what the job will do.
    """
    rest = dict(spec)
    out: list[tuple[str, str]] = []
    for key in ("input", "config", "output", "name"):
        if rest.get(key) not in (None, ""):
            out.append((key, str(rest.pop(key))))
        rest.pop(key, None)
    models = rest.pop("models", None)
    if models:
        out.append(("chain", " › ".join(map(str, models))))

    def flat(prefix: str, value: Any) -> None:
        if value is None or value == {} or value == []:
            return
        if isinstance(value, dict):
            for k in sorted(value):
                flat(f"{prefix}.{k}" if prefix else str(k), value[k])
        elif isinstance(value, bool):
            out.append((prefix, "yes" if value else "no"))
        elif isinstance(value, (list, tuple)):
            out.append((prefix, ", ".join(map(str, value))))
        else:
            out.append((prefix, str(value)))

    flat("", rest)
    from archivist_tui.output import shown

    return [(shown(k), shown(v)) for k, v in out]  # one line each, whatever a name holds


def clock(seconds: Any) -> str:
    """``1:12:40`` (or ``–`` when unknown)."""
    if not isinstance(seconds, (int, float)) or seconds != seconds or seconds < 0:
        return "–"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def job_name(kind: str, spec: dict[str, Any]) -> str:
    """``reel_03.mkv → medium › drunet:0.5:5`` for a restore, the spec's name or output otherwise."""
    return "".join(job_name_parts(kind, spec))


def job_name_parts(kind: str, spec: dict[str, Any]) -> tuple[str, str]:
    """The job's name as (what gives way when it is shortened, what stays: a restore's `` → chain``).

    One printable line whatever the spec holds: control characters escaped (``\\n``), a file name's
    bytes that are not UTF-8 as ``\\xff``.
    """
    from archivist_tui.output import shown

    if spec.get("name"):
        return shown(spec["name"]), ""
    src = shown(Path(str(spec.get("input", ""))).name)
    if kind == "restore":
        models = " › ".join(shown(m) for m in spec.get("models") or [])
        return (src, f" → {models}") if models else (src, "")
    out = spec.get("output")
    return (src, f" → {shown(Path(str(out)).name)}") if out else (src, "")


# What the Queue screen made of each job, by the engine's PolledJob: the poll hands back the same
# object while a job's row is unchanged, so an unchanged job is neither parsed nor formatted again.
_poll: Any = None
_rows_cache: dict[int, tuple[Any, JobRow]] = {}


def _jobs_poll() -> Any:
    """The engine's cached reader of the queue, for this ``ARCHIVIST_HOME`` (tests change it)."""
    global _poll
    from engine.queue.store import JobsPoll, queue_db_path

    path = queue_db_path()
    if _poll is None or _poll.path != path:
        _poll = JobsPoll(path)
        _rows_cache.clear()
    return _poll


def list_jobs() -> list[JobRow] | None:
    """The jobs in ``ARCHIVIST_HOME/queue.db``, or None when there is no store yet.

    Read through the engine (:class:`engine.queue.store.JobsPoll`: the store opened read-only,
    specs parsed once, the engine's status rule); a store that cannot be read shows no jobs.
    Unchanged jobs are not formatted again (10,000 queued jobs: one poll rebuilds nothing).
    """
    from engine.errors import ArchivistError

    try:
        polled = _jobs_poll().read()
    except ArchivistError:
        return []
    if polled is None:
        return None
    out = []
    for job in polled:
        cached = _rows_cache.get(job.id)
        if cached is not None and cached[0] is job:
            out.append(cached[1])
            continue
        row = _job_row(job)
        _rows_cache[job.id] = (job, row)
        out.append(row)
    if len(_rows_cache) > len(out):  # removed jobs
        for job_id in set(_rows_cache) - {r.id for r in out}:
            del _rows_cache[job_id]
    return out


def _job_row(job: Any) -> JobRow:
    d = job.columns  # the engine's own dict: read, never changed here
    kind = str(d.get("kind", "?"))
    status = job.status
    done, total = d.get("done"), d.get("total")
    progress = (done or 0) / total if total else (1.0 if status == "done" else 0.0)
    rate = d.get("rate")
    unit = "it/s" if kind == "train" else ("pairs/s" if kind == "degrade" else "fps")
    running = d.get("status") == "running"
    rate_text = f"{rate:.1f} {unit}" if isinstance(rate, (int, float)) and running else "–"
    eta = clock(d.get("eta")) if running else "–"
    head, tail = job_name_parts(kind, job.spec)
    return JobRow(id=job.id, kind=kind, name=head + tail, status=status,
                  progress=float(progress), rate=rate_text, eta=eta,
                  device=str(d.get("slot") or d.get("device") or "any"), detail=d, name_tail=tail)


def job_events(job_id: int, limit: int = 8) -> list[tuple[float, str]]:
    """The newest events of one job (time, message), oldest first, read through the engine's store."""
    from archivist_tui.output import shown
    from engine.errors import ArchivistError

    try:
        events = _jobs_poll().events(job_id, limit)
    except ArchivistError:
        return []
    return [(float(e.time), shown(e.message)) for e in events]


def log_tail(path: str | None, lines: int = 6, max_bytes: int = 8192) -> list[str]:
    """The last lines of a job's log file (read from the end, never the whole file)."""
    if not path:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]


# -- daemon and devices ----------------------------------------------------------------------
def daemon_state() -> str:
    """'up', 'down' or 'none' (no queue yet), by the engine's lock check (:func:`engine.daemonlock.daemon_state`)."""
    from engine.daemonlock import daemon_state as state

    return state(archivist_home())


_nvml: Any = None


def device_summary() -> str:
    """GPUs at a glance from NVML (optional), else the CPU load: ``cuda:0 62% 7.1/24G``."""
    global _nvml
    if _nvml is None:
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            _nvml = pynvml
        except Exception:
            _nvml = False
    if _nvml:
        parts = []
        try:
            for i in range(_nvml.nvmlDeviceGetCount()):
                h = _nvml.nvmlDeviceGetHandleByIndex(i)
                util = _nvml.nvmlDeviceGetUtilizationRates(h).gpu
                mem = _nvml.nvmlDeviceGetMemoryInfo(h)
                parts.append(f"cuda:{i} {util}% {mem.used / 2**30:.1f}/{mem.total / 2**30:.0f}G")
        except Exception:
            parts = []
        if parts:
            return "  ".join(parts)
    import psutil

    return f"cpu {psutil.cpu_percent(interval=None):.0f}%"
