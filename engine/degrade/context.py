"""What an effect gets besides the image and its drawn parameters: its random streams and the frame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np


@dataclass
class FrameContext:
    """The random streams of one effect for one frame, and where the image lies in that frame.

    ``rng`` is fresh for every frame (grain, dust). ``persistent()`` returns a generator in the same
    state on every frame of a clip, for damage that stays on the film (long scratches, stains,
    creases, the weave path); on a still it is ``rng`` itself. ``index`` is the frame number (0 for
    a still) and ``clip`` says whether the frame belongs to a clip. Values an effect draws per
    frame beyond its parameters (a flicker gain, a weave offset) go into ``values`` and from there
    into the record.

    ``frame`` is the (height, width) of the whole frame when the image is only a window of it (a
    training patch) and ``origin`` the window's (top, left) in it; ``frame`` None means the image
    is the whole frame. Effects whose look depends on the frame's size (vignetting, flicker's
    gradient, large stains, creases, long scratches) draw for the whole frame and render this
    window of it, so a window damaged alone equals the same window cut from the damaged frame.
    """

    rng: np.random.Generator
    persistent: Callable[[], np.random.Generator]
    index: int = 0
    clip: bool = False
    values: dict[str, Any] = field(default_factory=dict)
    frame: tuple[int, int] | None = None
    origin: tuple[int, int] = (0, 0)

    def frame_size(self, img: np.ndarray) -> tuple[int, int]:
        """(height, width) of the whole frame ``img`` belongs to."""
        return self.frame if self.frame is not None else (int(img.shape[0]), int(img.shape[1]))

    def frame_field(self, small: np.ndarray, height: int, width: int) -> np.ndarray:
        """A coarse frame-scale field (2-D or H×W×C) stretched over the whole frame, bilinearly, as
        ``cv2.resize`` does, and this image's ``height`` × ``width`` window of it."""
        if self.frame is None:
            return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        frame_h, frame_w = self.frame
        top, left = self.origin
        r0, r1, ry = _linear_taps(small.shape[0], frame_h, top, height)
        c0, c1, cx = _linear_taps(small.shape[1], frame_w, left, width)
        small = small.astype(np.float32, copy=False)
        if small.ndim == 3:
            ry, cx = ry[:, None, None], cx[:, None]
        else:
            ry = ry[:, None]
        rows = small[r0] * (1.0 - ry) + small[r1] * ry
        return np.ascontiguousarray(rows[:, c0] * (1.0 - cx) + rows[:, c1] * cx, dtype=np.float32)


def _linear_taps(src: int, dst: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For samples ``start .. start+count`` of ``src`` samples resized to ``dst`` the way OpenCV's
    INTER_LINEAR does (pixel centres aligned, edge samples repeated): the two source indices and
    the weight of the second."""
    pos = (np.arange(start, start + count, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    first = np.floor(pos)
    frac = pos - first
    first = first.astype(np.int64)
    frac[first < 0] = 0.0
    first = np.clip(first, 0, src - 1)
    second = np.minimum(first + 1, src - 1)
    return first, second, frac.astype(np.float32)
