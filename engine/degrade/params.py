"""How an effect declares its parameters: bounds, defaults and documentation, in one place.

Each effect has a frozen dataclass of *drawn* values (one float, int, bool or string per
parameter). Its fields are declared with :func:`value_range`, :func:`chance` or :func:`choice`,
which store a :class:`ParamSpec` in the field metadata. The profile schema reads those specs to
validate documents, to draw values and to write the profile reference.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ParamSpec:
    """What a profile may say about one parameter.

    ``kind`` is ``range`` (a number or ``[low, high]`` within ``bounds``; ``integer`` draws whole
    numbers), ``chance`` (a probability in [0, 1]; the drawn value is a bool) or ``choice`` (one of
    ``options`` or a list of them; one is drawn uniformly).
    """

    kind: str
    doc: str
    default: Any
    bounds: tuple[float, float] = (0.0, 1.0)
    integer: bool = False
    options: tuple[str, ...] = ()
    unit: str = ""

    @property
    def step(self) -> float:
        """How far one arrow-key press moves a value in a form (see :func:`fitting_step`)."""
        if self.kind == "chance":
            return fitting_step(0.0, 1.0)
        return fitting_step(*self.bounds, integer=self.integer)

    def draw(self, value: Any, rng: np.random.Generator) -> Any:
        """Draw one concrete value from a validated profile value (always consumes one draw)."""
        u = float(rng.random())
        if self.kind == "range":
            low, high = value
            if self.integer:
                return int(min(int(low) + int(u * (int(high) - int(low) + 1)), int(high)))
            return float(low + u * (high - low))
        if self.kind == "chance":
            return bool(u < float(value))
        options = list(value)
        return options[min(int(u * len(options)), len(options) - 1)]


def fitting_step(low: float, high: float, integer: bool = False) -> float:
    """A step for nudging a value within ``[low, high]``: the power of ten that divides the span
    into 100 to 1000 steps (0.01 for 0 … 1, 0.1 for 0 … 60, 10 for 0 … 3000), at least 1 for whole
    numbers. Coarse enough that a few presses show in the preview, fine enough to reach any
    value a profile would hold."""
    span = float(high) - float(low)
    if not math.isfinite(span) or span <= 0:
        return 1.0 if integer else 0.01
    step = 10.0 ** math.floor(math.log10(span / 100.0))
    return max(1.0, step) if integer else step


def value_range(low: float, high: float, default: tuple[float, float] | float, doc: str, *,
                integer: bool = False, unit: str = ""):
    """A numeric parameter within ``[low, high]``; the profile gives a value or ``[lo, hi]``."""
    if not isinstance(default, (tuple, list)):
        default = (default, default)
    spec = ParamSpec("range", doc, tuple(default), (low, high), integer, (), unit)
    return field(default=(int if integer else float)(default[0]), metadata={"spec": spec})


def chance(default: float, doc: str):
    """A yes/no parameter; the profile gives the probability of yes."""
    return field(default=False, metadata={"spec": ParamSpec("chance", doc, float(default))})


def choice(options: tuple[str, ...], default: tuple[str, ...], doc: str):
    """One of ``options``; the profile gives one option or a list to draw from uniformly."""
    spec = ParamSpec("choice", doc, tuple(default), options=tuple(options))
    return field(default=default[0], metadata={"spec": spec})


def param_specs(params_cls: type) -> dict[str, ParamSpec]:
    """The parameter specs of an effect's parameter dataclass, in declaration order."""
    return {f.name: f.metadata["spec"] for f in dataclasses.fields(params_cls)}
