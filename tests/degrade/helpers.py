"""Small images and one-effect profiles for the degrader tests."""

from __future__ import annotations

import cv2
import numpy as np

from engine.degrade.schema import Profile, validate_profile


def only(effect: str, **values) -> Profile:
    """A profile with one effect on, always applied, with the given values."""
    return validate_profile({"name": f"only-{effect}", "effects": {effect: {"enabled": True, "probability": 1.0,
                                                                             **values}}}, "<test>")


def flat(value: float, size: int = 128) -> np.ndarray:
    """A flat float32 RGB image."""
    return np.full((size, size, 3), value, np.float32)


def cartoon(w: int = 128, h: int = 96, seed: int = 0) -> np.ndarray:
    """A small cel-like uint8 RGB frame: gradient background, flat ellipses, dark outlines."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    img[..., 0] = (40 + 150 * xx / w).astype(np.uint8)
    img[..., 1] = (60 + 120 * yy / h).astype(np.uint8)
    img[..., 2] = 140
    for _ in range(5):
        c = tuple(int(v) for v in rng.integers(20, 235, 3))
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(w // 10, w // 4)), int(rng.integers(h // 10, h // 4)))
        cv2.ellipse(img, center, axes, 0, 0, 360, c, -1, cv2.LINE_AA)
        cv2.ellipse(img, center, axes, 0, 0, 360, (15, 10, 10), 2, cv2.LINE_AA)
    return img
