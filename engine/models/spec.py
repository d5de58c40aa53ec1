"""What a caller needs to know about a network, detected from its weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from engine.errors import ArchivistError


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


HINT_FIELDS = ("act_type", "scale", "out_channels")
# How each answer is named in an error, by where it came from.
_LABELS = {
    "flag": {"act_type": "--act", "scale": "--scale", "out_channels": "--out-channels"},
    "metadata": {"act_type": "metadata act_type", "scale": "metadata scale", "out_channels": "metadata out_channels"},
    "config": {"act_type": "network.act", "scale": "network.scale", "out_channels": "the config's channels"},
}


@dataclass(frozen=True)
class Hints:
    """What a network's weights may not tell by themselves, and where each answer came from.

    A Compact's ReLU or LeakyReLU leaves no weights, and its last conv's filter count is
    ``out_channels × scale²``, which can fit more than one pair. Answers come from a file's
    metadata, from command-line flags (``--act``, ``--scale``, ``--out-channels``) or from a
    training config; ``origin`` maps each given field to ``flag``, ``metadata`` or ``config``.
    """

    act_type: str | None = None
    scale: int | None = None
    out_channels: int | None = None
    origin: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def given(cls, origin: str, **values: Any) -> Hints:
        """Hints from one origin; ``None`` values are left unknown."""
        values = {k: v for k, v in values.items() if v is not None}
        return cls(**values, origin={k: origin for k in values})

    def label(self, name: str) -> str:
        """How the answer for ``name`` is called in messages (``--scale``, ``metadata scale``)."""
        return _LABELS[self.origin.get(name, "flag")][name]

    def items(self) -> list[tuple[str, Any]]:
        """The fields that have an answer, in a fixed order."""
        return [(k, getattr(self, k)) for k in HINT_FIELDS if getattr(self, k) is not None]

    def combined(self, other: Hints, strict: bool) -> Hints:
        """These hints, with gaps filled from ``other``.

        ``strict``: a field both give differently raises ``ValueError`` naming both (a flag that
        contradicts a file's metadata); otherwise this side wins silently (a config's default).
        """
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for name in HINT_FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None and mine != theirs and strict:
                raise ValueError(f"{self.label(name)} {mine} contradicts {other.label(name)} {theirs}")
            if mine is not None:
                values[name], origin[name] = mine, self.origin.get(name, "flag")
            elif theirs is not None:
                values[name], origin[name] = theirs, other.origin.get(name, "flag")
        return Hints(**values, origin=origin)


class AmbiguousWeights(ArchivistError):
    """Weights that fit more than one network; ``flags`` are the options that pick one."""

    def __init__(self, readings: str, flags: str):
        super().__init__(f"{readings}; say which with {flags}")
        self.readings, self.flags = readings, flags
