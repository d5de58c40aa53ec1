"""Training checkpoints: every state a bit-exact resume needs, written whole or not at all.

A checkpoint (``runs/<run>/checkpoints/iter_NNNNNNNNN.pt``, named by :func:`runs.checkpoint_path`)
is one ``torch.save`` dictionary: the format tag, the iteration, the network's hyper-parameters,
the state of every network, optimiser, scheduler and grad scaler of the run, the states of the
three random generators (Python, NumPy, torch, and CUDA where present) and the trainer's own
counters. Batches are a pure function of (seed, rank, iteration), so the iteration is also the
data position.

Only files of this module's format are resumed; weights holding NaN or infinity are never written
nor resumed. The trainer keeps the last ``train.keep_checkpoints`` files.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import ArchivistError
from engine.train import runs

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "archivist-train-checkpoint-1"
# The entries that hold network weights: checked for NaN/infinity before writing and before resuming.
WEIGHT_KEYS = ("g", "g_ema", "d")


class NonFiniteWeights(ArchivistError):
    """A network holds NaN or infinity: no checkpoint is written (the caller adds what to do)."""


# -- random generators -----------------------------------------------------------------------------

def seed_rngs(seed: int) -> None:
    """Seed the three generators a run draws from (Python's, NumPy's global one, torch's)."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def rng_state() -> dict[str, Any]:
    """The state of every random generator, in a form ``torch.load(weights_only=True)`` reads back.

    NumPy's Mersenne Twister key is kept as an int64 tensor (a plain ndarray would need pickle);
    Python's is kept as a list for the same reason.
    """
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Put every random generator back in the state :func:`rng_state` captured.

    CUDA states are restored only where CUDA is available (a run checkpointed on a GPU may resume on
    another machine; its CPU-side draws are still exact).
    """
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- writing -------------------------------------------------------------------------------------

def save_checkpoint(rdir: Path, iteration: int, network: dict[str, Any], parts: dict[str, Any],
                    counters: dict[str, int] | None = None) -> Path:
    """Write the checkpoint of ``iteration`` into the run folder ``rdir`` atomically; returns its path.

    Args:
        rdir: the run folder.
        iteration: the iteration just finished (the file's name and the data position).
        network: the hyper-parameters (``num_feat``, ``num_conv``, ``scale``, ``act``) that
            :func:`engine.train.runs.promote` builds the network from.
        parts: name → object with ``state_dict()`` (networks, optimisers, schedulers, scaler), in
            the order they are stored; the entries named in :data:`WEIGHT_KEYS` are networks.
        counters: the trainer's own integers (``d_skipped``), stored beside the states.

    Raises :class:`NonFiniteWeights`, before anything is written, when a network holds NaN or
    infinity: the last checkpoint stays the one to resume from. Any write error leaves no file.
    """
    from engine.atomic import atomic_write
    from engine.models.files import find_nonfinite, save_torch

    for label in WEIGHT_KEYS:
        if label in parts:
            bad = find_nonfinite(parts[label].state_dict())
            if bad is not None:
                raise NonFiniteWeights(f"iteration {iteration}: {label} weight {bad[0]} holds non-finite values "
                                       "(NaN or infinity); no checkpoint written")
    ckpt: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "iteration": iteration,
        "data_position": iteration,  # batches are a pure function of (seed, rank, iteration)
        "network": dict(network),
    }
    ckpt.update({name: part.state_dict() for name, part in parts.items()})
    ckpt["rng"] = rng_state()
    ckpt.update(counters or {})
    path = runs.checkpoint_path(rdir, iteration)
    atomic_write(path, lambda tmp: save_torch(ckpt, tmp))
    log.info("checkpoint %s", path)
    return path


def prune_checkpoints(rdir: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` checkpoints of the run folder ``rdir``; returns what went."""
    removed = []
    for _, old in runs.list_checkpoints(rdir)[:-keep]:
        old.unlink(missing_ok=True)
        removed.append(old)
    return removed


def remove_stale_partials(rdir: Path) -> list[Path]:
    """Remove the partial files a run killed while writing (SIGKILL, power loss) left in its folders.

    ``.iter_*.part`` and the like in the run folder, ``checkpoints/`` and ``previews/`` are this
    run's own; their writer is gone (a live writer's are kept) and nothing else would remove them.
    """
    from engine.models.files import remove_stale_temp_files

    removed = []
    for folder in (rdir, rdir / "checkpoints", rdir / "previews"):
        removed += remove_stale_temp_files(folder)
    return removed


# -- reading -------------------------------------------------------------------------------------

def load_latest(rdir: Path) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint of the run folder ``rdir``, read and checked: ``(path, contents)``.

    Refused with one line naming the file: unreadable, not this module's format, or weights that
    hold NaN or infinity (remove that file to resume from an earlier one). The caller makes sure a
    checkpoint exists.
    """
    from engine.models.files import find_nonfinite

    _, path = runs.list_checkpoints(rdir)[-1]
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ArchivistError(f"{path}: unreadable checkpoint ({str(exc).splitlines()[0][:160]})") from None
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ArchivistError(f"{path}: not an Archivist training checkpoint")
    for key in WEIGHT_KEYS:
        bad = find_nonfinite(ckpt[key]) if isinstance(ckpt.get(key), dict) else None
        if bad is not None:
            raise ArchivistError(f"{path}: {key} weight {bad[0]} holds non-finite values (NaN or infinity): "
                                 "this checkpoint cannot be resumed; remove it to resume from an earlier one")
    return path, ckpt


def restore(ckpt: dict[str, Any], parts: dict[str, Any]) -> None:
    """Load every part's state from a checkpoint :func:`load_latest` read, then the random generators.

    ``parts`` is name → object with ``load_state_dict`` (as given to :func:`save_checkpoint`); the
    generators come last so that nothing drawn while loading moves them.
    """
    for name, part in parts.items():
        part.load_state_dict(ckpt[name])
    set_rng_state(ckpt["rng"])
