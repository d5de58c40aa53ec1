"""Film grain (dye clouds per layer) and the coarse luminance noise of scanners and telecine."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.degrade.context import FrameContext
from engine.degrade.ops import affine, luma, midtones, noise, rgb, smooth_field
from engine.degrade.params import chance, value_range


@dataclass(frozen=True)
class GrainParams:
    """Drawn values of ``grain``."""

    strength: float = value_range(0.0, 60.0, (4.0, 7.0), "grain std at mid-grey of the green layer", unit="0-255")
    size: float = value_range(0.5, 8.0, (1.0, 1.6), "flake size", unit="px")
    reference_height: int = value_range(
        0, 4320, 0, "when > 0, size is for this frame height and scales with the image height "
        "(0: size is in pixels of the image as given)", integer=True, unit="px")
    red_ratio: float = value_range(0.2, 3.0, (0.8, 1.0), "red-layer grain relative to green")
    blue_ratio: float = value_range(0.2, 4.0, (1.3, 1.7), "blue-layer grain relative to green (blue is the noisiest layer)")
    monochrome: bool = chance(0.3, "one grain field for all layers (black-and-white stock)")
    generations: int = value_range(1, 4, (1, 1), "copies of copies: each printing generation adds its own, larger grain", integer=True)


def apply_grain(img: np.ndarray, p: GrainParams, ctx: FrameContext) -> np.ndarray:
    """Add signal-dependent, per-layer film grain: vanishing toward black and white, blue strongest."""
    h, w = img.shape[:2]
    size = p.size * (ctx.frame_size(img)[0] / p.reference_height if p.reference_height > 0 else 1.0)
    channels = 1 if p.monochrome else 3
    total, total_gain = None, 1.0
    for gen in range(p.generations):
        gen_size = size * (1.0 + 0.7 * gen)
        if gen_size <= 1.05:
            field = noise(ctx.rng, (h, w) if channels == 1 else (h, w, 3))
            # A flake covers more than one pixel even at the finest size; 1.56 restores unit std.
            field = cv2.GaussianBlur(field, (3, 3), 0.5)
            gain = 1.56
        else:
            field = smooth_field(ctx.rng, h, w, gen_size, channels)
            # Bicubic upscaling loses variance; bring it back to about unit std.
            gain = min(gen_size, 3.0) ** 0.5
        # Gains are folded into one later pass instead of scaling every field.
        if total is None:
            total, total_gain = field, gain
        else:
            total = cv2.scaleAdd(field, gain * 0.75 ** gen / total_gain, total)
    if channels == 1:
        total = rgb(total)
    weights = (1.0, 1.0, 1.0) if p.monochrome else (p.red_ratio, 1.0, p.blue_ratio)
    # Each dye layer's grain follows that layer's own exposure: 4·x·(1−x), folded into the gains.
    scale = 4.0 * p.strength / 255.0 * total_gain
    total = affine(total, [scale * wt for wt in weights])
    return img + total * (img - img * img)


@dataclass(frozen=True)
class LuminanceGrainParams:
    """Drawn values of ``luminance_grain``."""

    strength: float = value_range(0.0, 40.0, (2.0, 5.0), "noise std", unit="0-255")
    size: float = value_range(1.0, 6.0, (1.5, 2.5), "noise feature size", unit="px")
    shadow_weight: float = value_range(0.0, 1.0, (0.5, 1.0), "how strong the noise stays in shadows (sensor noise does)")


def apply_luminance_grain(img: np.ndarray, p: LuminanceGrainParams, ctx: FrameContext) -> np.ndarray:
    """Add coarse, colourless noise, strongest in shadows and mid-tones (scanner/telecine noise)."""
    h, w = img.shape[:2]
    field = smooth_field(ctx.rng, h, w, p.size)
    field *= np.float32(min(p.size, 3.0) ** 0.5 * p.strength / 255.0)
    y = luma(img)
    amp = p.shadow_weight + (1.0 - p.shadow_weight) * midtones(y)
    amp *= np.clip((1.0 - y) * 8.0, 0.0, 1.0)  # clipped whites carry no noise
    return img + rgb(field * amp)
