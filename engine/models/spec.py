"""What a caller needs to know about a network, detected from its weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """An architecture and its hyper-parameters, plus the facts a caller plans with.

    ``hyper`` holds exactly the arguments the architecture's constructor takes.
    """

    arch: str
    hyper: dict[str, Any] = field(default_factory=dict)
    in_channels: int = 3
    out_channels: int = 3
    scale: int = 1
    size_multiple: int = 1
    supports_fp16: bool = True
    supports_bf16: bool = True
    takes_sigma: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def num_feat(self) -> int | None:
        return self.hyper.get("num_feat")

    @property
    def num_conv(self) -> int | None:
        return self.hyper.get("num_conv")

    def describe(self) -> str:
        """Short human form: ``compact 48/16×1`` or ``drunet 64…512/4×1``."""
        if self.arch == "compact":
            return f"compact {self.hyper['num_feat']}/{self.hyper['num_conv']}×{self.scale}"
        if self.arch == "drunet":
            nc = self.hyper["nc"]
            return f"drunet {nc[0]}…{nc[-1]}/{self.hyper['nb']}×1"
        return self.arch
