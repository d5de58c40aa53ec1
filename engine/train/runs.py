"""Run directories (``ARCHIVIST_HOME/runs/<run>/``): listing, control file, checkpoints, promote.

A run directory holds ``config.yaml`` (the validated config), ``run.json`` (state: status,
iteration, data identity), ``metrics.jsonl``, ``checkpoints/iter_NNNNNNNNN.pt``, ``previews/`` and,
while someone asks the trainer to pause or stop, a ``control`` file.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from engine.errors import ArchivistError
from engine.paths import state_subdir

RUN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CHECKPOINT_RE = re.compile(r"^iter_(\d{9})\.pt$")
CONTROL_ACTIONS = ("pause", "stop")


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
    try:
        return json.loads((rdir / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def write_state(rdir: Path, state: dict[str, Any]) -> None:
    from engine.models.files import atomic_write

    atomic_write(rdir / "run.json", lambda tmp: tmp.write_text(json.dumps(state, indent=2, default=str)))


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
        "status": state.get("status", "unknown"),
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
    from engine.models.files import atomic_write

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
    if read_state(rdir).get("status") == "running" and _alive(read_state(rdir).get("pid")):
        raise ArchivistError(f"run {name!r} is running: stop it first (archivist runs stop {name})")
    shutil.rmtree(rdir)


def _alive(pid: Any) -> bool:
    import os

    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


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
