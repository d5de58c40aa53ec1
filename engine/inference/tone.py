"""Tone: whether a picture is black and white, and the arithmetic that keeps it so.

A black-and-white picture goes through an RGB network as three equal channels; what comes back is
made gray again with the luma weights below (ITU-R BT.601, as OpenCV and Pillow convert RGB to
gray), so a network's faint colour cast never reaches the output. ``auto`` decides per input: a
file that stores one channel is gray, and so is an RGB picture (or a video's sampled frames)
whose colour differences stay within :data:`NEUTRAL_LEVELS`; ``color`` and ``gray`` force it.
"""

from __future__ import annotations

import numpy as np

from engine.errors import ArchivistError

TONES = ("auto", "color", "gray")
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# A neutral picture's channels (or a YUV picture's chroma) stay this close, in 8-bit levels: JPEG
# and 4:2:0 rounding of a gray picture moves them by one; a real colour cast is larger.
NEUTRAL_LEVELS = 2


def check_tone(tone: str) -> str:
    """``tone`` if it is one of :data:`TONES`; an error naming the allowed values otherwise."""
    if tone not in TONES:
        raise ArchivistError(f"tone {tone!r} invalid: allowed are {', '.join(TONES)}")
    return tone


def luma(rgb: np.ndarray) -> np.ndarray:
    """The gray of float RGB (…×3, any leading shape) as float32 (…), with :data:`LUMA_WEIGHTS`."""
    r, g, b = (np.float32(w) for w in LUMA_WEIGHTS)
    out = rgb[..., 0] * r
    out += rgb[..., 1] * g
    out += rgb[..., 2] * b
    return out.astype(np.float32, copy=False)


def replicate(gray: np.ndarray) -> np.ndarray:
    """A gray array (…) as three equal channels (…×3), contiguous: what an RGB network takes."""
    return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=-1))


def rgb_is_neutral(rgb: np.ndarray, peak: float) -> bool:
    """Whether every pixel's channels of ``rgb`` (values up to ``peak``) lie within the neutral tolerance."""
    tolerance = NEUTRAL_LEVELS * peak / 255.0
    a = rgb.astype(np.float32, copy=False)
    spread = np.maximum(np.abs(a[..., 0] - a[..., 1]), np.abs(a[..., 1] - a[..., 2]))
    return float(spread.max(initial=0.0)) <= tolerance + 1e-6 * peak
