"""What an effect gets besides the image and its drawn parameters: its random streams and the frame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class FrameContext:
    """The random streams of one effect for one frame.

    ``rng`` is fresh for every frame (grain, dust). ``persistent()`` returns a generator in the same
    state on every frame of a clip, for damage that stays on the film (long scratches, stains,
    creases, the weave path); on a still it is ``rng`` itself. ``index`` is the frame number (0 for
    a still) and ``clip`` says whether the frame belongs to a clip. Values an effect draws per
    frame beyond its parameters (a flicker gain, a weave offset) go into ``values`` and from there
    into the record.
    """

    rng: np.random.Generator
    persistent: Callable[[], np.random.Generator]
    index: int = 0
    clip: bool = False
    values: dict[str, Any] = field(default_factory=dict)
