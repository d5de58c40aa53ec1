"""Device and precision choice shared by every command (``--device``, ``--precision``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from engine.document import Conflict
from engine.errors import ArchivistError

if TYPE_CHECKING:  # pragma: no cover
    import torch

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def check_device_name(name: str) -> str:
    """Validate a device name without importing torch; returns it normalised."""
    name = name.strip().lower()
    if name in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", name):
        return name
    from engine.document import InvalidValue

    raise InvalidValue("device", name, DEVICE_CHOICES)  # a key of every document that has one, and --device


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N`` into a torch device, with a clear error when it is absent."""
    import torch

    name = check_device_name(name)
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        # Advice named by the key (``device``); the command line shows its flag (``--device cpu``).
        raise Conflict(("device",), f"device {name} requested but CUDA is not available here (use {{0}} cpu)")
    index = int(name.split(":")[1]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise ArchivistError(
            f"device {name} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return torch.device(f"cuda:{index}")


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``auto`` is bf16 (or fp16) on CUDA and fp32 on CPU; explicit choices are checked."""
    import torch

    if precision not in PRECISIONS:
        raise ArchivistError(f"invalid precision {precision!r}: allowed are {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return torch.float32
    if device.type != "cuda":
        if precision == "auto":
            return torch.float32
        if precision == "fp16":
            raise ArchivistError("precision fp16 needs a CUDA device; on CPU use fp32 (or bf16)")
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        if not torch.cuda.is_bf16_supported():
            raise Conflict(("precision",), f"{device} does not support bf16: use {{0}} fp16 or fp32")
        return torch.bfloat16
    return torch.float16
