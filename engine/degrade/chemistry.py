"""Chemistry of ageing prints: stains, emulsion breakdown, dye fading and colour casts."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.degrade.context import FrameContext
from engine.degrade.ops import affine, luma, midtones, noise, rgb, smooth_field
from engine.degrade.params import chance, choice, value_range

_CHANNEL = {"red": 0, "green": 1, "blue": 2}

# Tints of chemical stains: yellow-brown fixer stains, magenta and cyan dye blooms, grey-green mould.
_STAIN_TINTS = np.array([
    [0.10, 0.30, 0.90],
    [0.20, 0.80, 0.30],
    [0.80, 0.25, 0.15],
    [0.50, 0.35, 0.55],
], dtype=np.float32)


@dataclass(frozen=True)
class StainsParams:
    """Drawn values of ``stains``."""

    large: bool = chance(0.1, "large soft chemical stains on this sample")
    large_count: int = value_range(1, 12, (1, 3), "large stains", integer=True)
    large_size: float = value_range(0.02, 0.8, (0.1, 0.35), "large-stain radius as a fraction of the shorter side")
    large_strength: float = value_range(0.0, 1.0, (0.16, 0.27), "large-stain density")
    speckle: bool = chance(0.3, "fine coloured speckle stains on this sample")
    speckle_strength: float = value_range(0.0, 1.0, (0.2, 0.42), "speckle-stain density")
    speckle_size: float = value_range(1.0, 16.0, (2.0, 5.0), "speckle-stain grain", unit="px")


def apply_stains(img: np.ndarray, p: StainsParams, ctx: FrameContext) -> np.ndarray:
    """Large soft stains and fine coloured speckle stains that absorb light, strongest in mid-tones.

    Stains have no detail finer than a speckle, so their density and its mid-tone weighting are
    computed on a coarse grid and resized up once: speckles on a grid of their own size, large
    stains on one of about 128 cells across the frame's shorter side. Large stains are placed and
    sized on the whole frame; speckles are spread evenly, so a window of a frame draws its own.
    """
    h, w = img.shape[:2]
    prng = ctx.persistent()
    if not (p.large or p.speckle):
        return img
    density = None
    if p.large:
        frame_h, frame_w = ctx.frame_size(img)
        cell = max(1.0, min(frame_h, frame_w) / 128.0)
        density = _large_stains(prng, p, frame_h, frame_w, cell)
        density = _absorb(img, density, cell, ctx)
    if p.speckle:
        cell = p.speckle_size
        sh, sw = max(2, round(h / cell)), max(2, round(w / cell))
        # Speckles are the peaks of a coloured noise field (uniform noise tops out at 1.72).
        field = cv2.GaussianBlur(noise(prng, (sh, sw, 3)), (3, 3), 0.6) * np.float32(1.6)
        speckle = np.clip(field - 1.2, 0.0, None) * np.float32(p.speckle_strength * 2.0)
        speckle = _absorb(img, speckle, cell, None)
        if density is None:
            density = speckle
        else:
            _, density = cv2.threshold(density + speckle, 0.95, 0.95, cv2.THRESH_TRUNC)
    return img - img * density


def _large_stains(prng: np.random.Generator, p: StainsParams, frame_h: int, frame_w: int,
                  cell: float) -> np.ndarray:
    """The density of the large stains on a grid of ``cell``-pixel cells over the whole frame."""
    sh, sw = max(2, round(frame_h / cell)), max(2, round(frame_w / cell))
    density = np.zeros((sh, sw, 3), np.float32)
    for _ in range(p.large_count):
        canvas = np.zeros((sh, sw), np.float32)
        r = p.large_size * min(sh, sw) * (0.5 + prng.random())
        center = (int(prng.random() * sw), int(prng.random() * sh))
        axes = (max(1, int(r)), max(1, int(r * (0.4 + 0.6 * prng.random()))))
        cv2.ellipse(canvas, center, axes, prng.random() * 180, 0, 360, 1.0, -1)
        edge = smooth_field(prng, sh, sw, max(r / 3, 2.0))
        canvas = cv2.GaussianBlur(canvas, (0, 0), max(r / 4, 1.0)) * (0.7 + 0.3 * np.tanh(edge))
        tint = _STAIN_TINTS[int(prng.integers(0, len(_STAIN_TINTS)))]
        density += cv2.transform(canvas[..., None], (tint * p.large_strength)[:, None])
    return density


def _absorb(img: np.ndarray, density: np.ndarray, cell: float, ctx: FrameContext | None) -> np.ndarray:
    """A coarse stain density weighted by the picture's mid-tones (where stains absorb most
    visibly; a multiplicative density already spares the blacks), capped and brought to the
    image's size. ``ctx`` set: ``density`` covers the whole frame and only this image's window of
    it is returned."""
    h, w = img.shape[:2]
    sh, sw = max(2, round(h / cell)), max(2, round(w / cell))
    small_luma = luma(cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA))
    weight = rgb(0.15 + 0.85 * midtones(small_luma))
    if ctx is None or ctx.frame is None:
        density = density * weight
        _, density = cv2.threshold(density, 0.95, 0.95, cv2.THRESH_TRUNC)
        return cv2.resize(density, (w, h), interpolation=cv2.INTER_LINEAR)
    density = ctx.frame_field(density, h, w) * cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)
    _, density = cv2.threshold(density, 0.95, 0.95, cv2.THRESH_TRUNC)
    return density


@dataclass(frozen=True)
class EmulsionDegradationParams:
    """Drawn values of ``emulsion_degradation``."""

    strength: float = value_range(0.0, 160.0, (21.0, 45.0), "chemical-noise std", unit="0-255")
    mix: float = value_range(0.0, 1.0, (0.22, 0.36), "how much of the noise reaches the image")
    victim: str = choice(("red", "green", "blue"), ("red",), "the layer that breaks down first (red: the cyan dye layer)")
    others: float = value_range(0.0, 1.0, (0.15, 0.35), "noise in the other layers relative to the victim")
    size: float = value_range(1.0, 32.0, (2.0, 6.0), "blotch size", unit="px")


def apply_emulsion_degradation(img: np.ndarray, p: EmulsionDegradationParams, ctx: FrameContext) -> np.ndarray:
    """Blurred per-layer chemical noise where that layer's dye is dense, the victim layer strongest."""
    h, w = img.shape[:2]
    field = smooth_field(ctx.rng, h, w, p.size, 3)
    amount = p.strength / 255.0 * p.mix * min(p.size, 3.0) ** 0.5
    weights = [p.others * amount * 8.0] * 3
    weights[_CHANNEL[p.victim]] = amount * 8.0
    # A dye layer is dense where its channel is dark and it shows in mid-tones: (1−x)²·x, scaled
    # by 8 (folded into the gains) to peak near 1.
    dense = 1.0 - img
    vulnerable = dense * dense * img
    return img + affine(field, weights) * vulnerable


@dataclass(frozen=True)
class DyeFadingParams:
    """Drawn values of ``dye_fading``."""

    amount: float = value_range(0.0, 0.95, (0.1, 0.3), "share of the cyan dye density lost")
    yellow_ratio: float = value_range(0.0, 1.5, (0.7, 1.0), "yellow-dye fading relative to cyan")
    magenta_ratio: float = value_range(0.0, 1.0, (0.05, 0.25), "magenta-dye fading relative to cyan (magenta is the stable dye)")
    base_fog: float = value_range(0.0, 0.2, (0.0, 0.03), "stain of the film base lifting the blacks")


def apply_dye_fading(img: np.ndarray, p: DyeFadingParams, ctx: FrameContext) -> np.ndarray:
    """Fade dyes in density space: cyan and yellow lose density faster than magenta (pink cast)."""
    # Density D = -log10(T); keeping a fraction k of it is T**k, one power per channel.
    keep = (1.0 - p.amount, 1.0 - p.amount * p.magenta_ratio, 1.0 - min(p.amount * p.yellow_ratio, 0.95))
    out = cv2.exp(affine(cv2.log(cv2.max(img, 1.0 / 1024.0)), keep))
    if p.base_fog > 0:
        fog = p.base_fog
        out = affine(out, (1.0 - fog,) * 3, (fog, fog * 0.85, fog * 0.8))
    return out


_CASTS = {
    "warm": (0.9, 0.2, -0.8),
    "magenta": (0.6, -0.8, 0.4),
    "green": (-0.4, 0.7, -0.4),
    "cyan": (-0.8, 0.2, 0.6),
    "blue": (-0.5, -0.1, 0.8),
}


@dataclass(frozen=True)
class ColorCastParams:
    """Drawn values of ``color_cast``."""

    strength: float = value_range(0.0, 0.6, (0.02, 0.08), "gain change of the most affected channel")
    tint: str = choice(tuple(_CASTS), tuple(_CASTS), "direction of the cast")
    shadow_tint: float = value_range(0.0, 0.2, (0.0, 0.02), "cast added in the shadows (faded blacks)")


def apply_color_cast(img: np.ndarray, p: ColorCastParams, ctx: FrameContext) -> np.ndarray:
    """A global colour cast: per-channel gains plus a tinted lift of the shadows."""
    direction = np.array(_CASTS[p.tint], np.float32)
    gains = 1.0 + p.strength * direction
    # img·gain + (1 − img)·lift, one affine pass.
    lift = np.clip(direction, 0.0, None) * p.shadow_tint
    return affine(img, gains - lift, lift)


