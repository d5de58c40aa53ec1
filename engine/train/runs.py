"""Run directories (``ARCHIVIST_HOME/runs/<run>/``): listing, control file, checkpoints, promote.

A run directory holds ``config.yaml`` (the validated config), ``run.json`` (state: status,
iteration, data identity), ``metrics.jsonl``, ``checkpoints/iter_NNNNNNNNN.pt``, ``previews/`` and,
while someone asks the trainer to pause or stop, a ``control`` file.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.document import Key
from engine.errors import ArchivistError
from engine.paths import state_subdir

RUN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CHECKPOINT_RE = re.compile(r"^iter_(\d{9})\.pt$")
CONTROL_ACTIONS = ("pause", "stop")

log = logging.getLogger(__name__)

def check_new_run(name: str) -> None:
    """Refuse to start run ``name`` afresh where it exists already: the same words for a command
    and a queued job (at submit, so a queued job never takes over an earlier run). Named by the
    keys ``resume`` and ``name`` (a train job's spec); the command line shows its flags."""
    from engine.document import Conflict

    rdir = run_dir(name, must_exist=False)
    if (rdir / "config.yaml").exists():
        if not list_checkpoints(rdir) and run_status(read_state(rdir)) != "running":  # nothing to continue
            raise Conflict(("name",), f"run {name!r} exists already ({rdir}) but stopped before its first "
                                      f"checkpoint: archivist runs remove {name} and start it again, or choose "
                                      "another {0}")
        raise Conflict(("resume", "name"), f"run {name!r} exists already ({rdir}): continue it with "
                                           "{0}, choose another {1}, or archivist runs remove it")


# The one rule for where a run may stop: ``--stop-at``, a train job's ``stop_at``, run_training's.
STOP_AT = Key("integer", "stop (resumably) at this iteration", lo=1, unit="iterations")


def check_run_name(name: str) -> str:
    """A run name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."""
    if not isinstance(name, str) or not RUN_NAME_RE.match(name):
        raise ArchivistError(f"invalid run name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def runs_dir() -> Path:
    return state_subdir("runs")


def run_dir(name: str, must_exist: bool = True) -> Path:
    """The directory of a run; a clear error listing the runs when it does not exist."""
    path = runs_dir() / check_run_name(name)
    if must_exist and not (path / "config.yaml").is_file():
        known = ", ".join(sorted(p.name for p in runs_dir().iterdir() if (p / "config.yaml").is_file()))
        raise ArchivistError(f"no run named {name!r}; runs: {known or 'none yet'}")
    return path


def checkpoint_path(rdir: Path, iteration: int) -> Path:
    return rdir / "checkpoints" / f"iter_{iteration:09d}.pt"


def list_checkpoints(rdir: Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every complete checkpoint, oldest first."""
    folder = rdir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_RE.match(p.name))]
    return sorted(found)


def read_state(rdir: Path) -> dict[str, Any]:
    """``run.json`` as stored (``{}`` when missing or unreadable); :func:`run_status` says what it means."""
    try:
        state = json.loads((rdir / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(rdir: Path, state: dict[str, Any]) -> None:
    """Replace ``run.json`` atomically (synced to disk); on a full disk, overwrite it in place (see below)."""
    from engine.atomic import WriteFailed, atomic_write

    text = json.dumps(state, indent=2, default=str)
    path = rdir / "run.json"
    try:
        atomic_write(path, lambda tmp: tmp.write_text(text), fsync=True, parents=False)
    except WriteFailed as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not _overwrite_in_place(path, state):
            raise


def _overwrite_in_place(path: Path, state: dict[str, Any]) -> bool:
    """Write ``state`` over the old bytes of ``path`` without allocating: False if it does not fit.

    A full disk refuses the temporary file of an atomic write, but a run's last word (``failed``,
    ``paused``) must still land, or ``run.json`` says ``running`` with nobody running. The blocks of
    the old file are already allocated; the new text goes over them in JSON's compact form (well
    shorter than the indented file), padded with spaces (JSON ignores trailing white space), and
    the file is never shortened, so nothing is freed and taken again. Not atomic, which is why it
    is only the fallback.
    """
    try:
        with open(path, "r+b") as fh:
            size = os.fstat(fh.fileno()).st_size
            data = json.dumps(state, separators=(",", ":"), default=str).encode()
            if len(data) > size:
                return False
            fh.write(data + b" " * (size - len(data)))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        log.warning("%s: cannot record the run's state even in place: %s", path, exc)
        return False
    log.warning("%s: disk full; the run's state was written over the old file in place", path)
    return True


# -- the state of a run: one rule for every face ----------------------------------------------------
def process_identity() -> dict[str, Any]:
    """What ``run.json`` records of the training process: ``pid``, its start time ``started`` and ``host``.

    The start time tells a live run from another process that was given the same pid later; the
    host, a run on this machine from one on another that shares the folder.
    """
    import socket

    import psutil

    return {"pid": os.getpid(), "started": psutil.Process().create_time(), "host": socket.gethostname()}


def process_alive(pid: Any, started: Any = None) -> bool:
    """Whether the process ``pid`` still runs (not a zombie), and is the one started at ``started``."""
    import psutil

    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped by its parent
            return False
        if isinstance(started, (int, float)) and abs(proc.create_time() - started) > 1.0:
            return False  # the pid was given to another process since
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # AccessDenied: it exists, owned by someone else
        return True
    return True


def run_status(state: dict[str, Any]) -> str:
    """The status of a run from its ``run.json``; the command line and the TUI both show this.

    The trainer writes ``running`` when it starts and its outcome when it ends (``done``,
    ``stop_at``, ``paused``, ``stopped``, ``interrupted``, ``failed``). A process killed with
    SIGKILL (or by the OOM killer, or a reboot) writes nothing, so a ``running`` whose process is
    gone reads ``interrupted``: resume it from its last checkpoint. A run recorded by another host
    reads as recorded (its processes cannot be checked from here). Missing or damaged: ``unknown``.
    """
    import socket

    status = state.get("status")
    if not isinstance(status, str):
        return "unknown"
    if state.get("host") not in (None, socket.gethostname()):
        return status  # trained on another machine (a shared folder): its processes cannot be seen from here
    if status == "running" and not process_alive(state.get("pid"), state.get("started")):
        return "interrupted"
    return status


def total_iters(rdir: Path) -> int | None:
    """``train.total_iters`` of a run's ``config.yaml``, or None when missing or unreadable."""
    import yaml

    try:
        doc = yaml.safe_load((rdir / "config.yaml").read_text(encoding="utf-8")) or {}
        value = (doc.get("train") or {}).get("total_iters")
        return int(value) if value is not None else None
    except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError):
        return None


@dataclass
class RunSnapshot:
    """One run as a face that watches it reads it: its status by :func:`run_status`, its metrics so
    far, previews and checkpoint files.

    ``train`` rows hold ``iteration``, ``l_pix``, ``l_percep``, ``l_g_gan``, ``l_d``, ``p_d_real``,
    ``p_d_fake``, ``lr_g``, ``it_per_s``, ``data_wait``, ``cpu_mem_mb``, ``gpu_mem_mb``; ``val`` rows
    ``iteration``, ``psnr``, ``ssim``. ``total_iters`` comes from ``config.yaml``.
    """

    name: str
    path: Path
    state: str
    train: list[dict[str, Any]] = field(default_factory=list)
    val: list[dict[str, Any]] = field(default_factory=list)
    total_iters: int | None = None
    previews: list[Path] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)

    @property
    def last(self) -> dict[str, Any]:
        return self.train[-1] if self.train else {}

    @property
    def iteration(self) -> int:
        its = [r.get("iteration", 0) for r in (self.train[-1:] + self.val[-1:])]
        return int(max(its)) if its else 0


class RunsWatch:
    """Every run folder, read again on each poll at the cost of what was appended (torch-free).

    Each run's ``metrics.jsonl`` is followed by a :class:`engine.train.metrics.MetricsTail`, so a
    poll reads only new lines; the status is :func:`run_status`, the rule ``archivist runs`` shows.
    """

    def __init__(self) -> None:
        self._tails: dict[Path, Any] = {}

    def read(self) -> list[RunSnapshot]:
        """Every run folder under ``ARCHIVIST_HOME/runs``, newest first."""
        from engine.paths import archivist_home
        from engine.train.metrics import MetricsTail

        root = archivist_home() / "runs"
        if not root.is_dir():
            return []
        folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        out = []
        for d in sorted(folders, key=lambda p: p.stat().st_mtime, reverse=True):
            path = d / "metrics.jsonl"
            rows = self._tails.setdefault(path, MetricsTail(path)).read()
            train = [r for r in rows if r.get("kind", "train") == "train"]
            val = [r for r in rows if r.get("kind") == "val"]
            previews = sorted((d / "previews").glob("*.png")) if (d / "previews").is_dir() else []
            ckpts = [p for _, p in list_checkpoints(d)]
            out.append(RunSnapshot(d.name, d, run_status(read_state(d)), train, val, total_iters(d), previews, ckpts))
        return out


def last_metrics(rdir: Path, kind: str) -> dict[str, Any] | None:
    """The last line of ``metrics.jsonl`` of a kind (``train`` or ``val``)."""
    path = rdir / "metrics.jsonl"
    if not path.is_file():
        return None
    last = None
    with path.open() as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("kind") == kind:
                last = rec
    return last


def run_info(name: str) -> dict[str, Any]:
    """What ``runs show`` prints: state, config summary, checkpoints, last metrics."""
    import yaml

    rdir = run_dir(name)
    state = read_state(rdir)
    cfg = yaml.safe_load((rdir / "config.yaml").read_text()) or {}
    ckpts = list_checkpoints(rdir)
    return {
        "name": name,
        "path": str(rdir),
        "status": run_status(state),
        "iteration": ckpts[-1][0] if ckpts else 0,
        "total_iters": cfg.get("train", {}).get("total_iters"),
        "network": cfg.get("network"),
        "degradation": state.get("degradation"),
        "checkpoints": [i for i, _ in ckpts],
        "last_train": last_metrics(rdir, "train"),
        "last_val": last_metrics(rdir, "val"),
        "updated": state.get("updated"),
    }


def list_runs() -> list[dict[str, Any]]:
    """Every run, by name."""
    out = []
    for p in sorted(runs_dir().iterdir()):
        if (p / "config.yaml").is_file():
            info = run_info(p.name)
            val = info["last_val"] or {}
            out.append({k: info[k] for k in ("name", "status", "iteration", "total_iters", "path")}
                       | {"psnr": val.get("psnr"), "ssim": val.get("ssim")})
    return out


def request(name: str, action: str) -> Path:
    """Ask a running trainer to ``pause`` or ``stop`` (it checkpoints and exits at its next iteration)."""
    if action not in CONTROL_ACTIONS:
        raise ArchivistError(f"invalid action {action!r}: allowed are {', '.join(CONTROL_ACTIONS)}")
    rdir = run_dir(name)
    status = run_status(read_state(rdir))
    if status != "running":  # nobody would read the request: saying it was passed on would be a lie
        gone = f" (its process is gone; continue it with: archivist runs resume {name})"
        raise ArchivistError(f"run {name!r} is {status}, not running: nothing to {action}"
                             + (gone if status == "interrupted" else ""))
    from engine.atomic import atomic_write

    atomic_write(rdir / "control", lambda tmp: tmp.write_text(action + "\n"))
    return rdir / "control"


def read_control(rdir: Path) -> str | None:
    try:
        text = (rdir / "control").read_text().strip()
    except OSError:
        return None
    return text if text in CONTROL_ACTIONS else None


def remove_run(name: str) -> None:
    """Delete a run directory (refused while it is running)."""
    rdir = run_dir(name)
    if run_status(read_state(rdir)) == "running":
        raise ArchivistError(f"run {name!r} is running: stop it first (archivist runs stop {name})")
    shutil.rmtree(rdir)


def promote(name: str, model_name: str, iteration: int | None = None, role: str | None = None,
            force: bool = False):
    """Put the EMA generator of a checkpoint into the model library with the run's metadata."""
    import torch

    from engine.models import compact
    from engine.models.files import save_safetensors
    from engine.models.library import Library, check_name, check_role, entry_from_file

    rdir = run_dir(name)
    ckpts = dict(list_checkpoints(rdir))
    if not ckpts:
        raise ArchivistError(f"run {name!r} has no checkpoint yet")
    if iteration is None:
        iteration = max(ckpts)
    if iteration not in ckpts:
        raise ArchivistError(f"run {name!r} has no checkpoint at iteration {iteration}; "
                             f"checkpoints: {', '.join(map(str, sorted(ckpts)))}")
    check_name(model_name)
    role = check_role(role or "custom")
    ckpt = torch.load(str(ckpts[iteration]), map_location="cpu", weights_only=True)
    net = ckpt["network"]
    spec = compact.spec_for(net["num_feat"], net["num_conv"], net["scale"], net["act"])
    state = read_state(rdir)
    lib = Library()
    target = lib._target(model_name, force)
    save_safetensors(target, ckpt["g_ema"], spec, role=role, name=model_name, iterations=iteration,
                     run=name, source=f"run {name} iteration {iteration}",
                     profiles=state.get("degradation"), trained_on=state.get("data"),
                     **({"pretrained": state["pretrained"]} if state.get("pretrained") else {}))
    return entry_from_file(target)
