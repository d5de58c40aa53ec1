"""Optics, exposure and digitisation: softness, vignetting, flicker, banding, texture traps."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.degrade.context import FrameContext
from engine.degrade.ops import blur, clip01, flatness, noise, rgb
from engine.degrade.params import choice, value_range


@dataclass(frozen=True)
class BlurParams:
    """Drawn values of ``blur``."""

    sigma: float = value_range(0.0, 8.0, (0.3, 0.8), "Gaussian sigma (along the long axis when anisotropic)", unit="px")
    kind: str = choice(("gaussian", "anisotropic"), ("gaussian",), "isotropic lens softness or directional smear")
    anisotropy: float = value_range(1.0, 6.0, (1.5, 3.0), "long/short axis ratio (anisotropic only)")
    angle: float = value_range(0.0, 180.0, (0.0, 180.0), "long-axis direction (anisotropic only)", unit="deg")


def _anisotropic_kernel(sigma: float, ratio: float, angle_deg: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    ax = np.arange(-radius, radius + 1, dtype=np.float32)
    xx, yy = np.meshgrid(ax, ax)
    a = np.deg2rad(angle_deg)
    u = xx * np.cos(a) + yy * np.sin(a)
    v = -xx * np.sin(a) + yy * np.cos(a)
    s2 = max(sigma / ratio, 0.3)
    k = np.exp(-0.5 * ((u / sigma) ** 2 + (v / s2) ** 2))
    return (k / k.sum()).astype(np.float32)


def apply_blur(img: np.ndarray, p: BlurParams, ctx: FrameContext) -> np.ndarray:
    """Lens or telecine softness: Gaussian, or an oriented anisotropic Gaussian."""
    if p.kind == "gaussian" or p.sigma < 0.3:
        return blur(img, p.sigma)
    if p.sigma > 4.0:
        # Large kernels: blur a half-size copy with half the sigma.
        h, w = img.shape[:2]
        small = cv2.resize(img, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
        small = cv2.filter2D(small, -1, _anisotropic_kernel(p.sigma / 2, p.anisotropy, p.angle),
                             borderType=cv2.BORDER_REFLECT)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.filter2D(img, -1, _anisotropic_kernel(p.sigma, p.anisotropy, p.angle),
                        borderType=cv2.BORDER_REFLECT)


@dataclass(frozen=True)
class VignetteParams:
    """Drawn values of ``vignette``."""

    strength: float = value_range(0.0, 0.9, (0.05, 0.2), "light lost in the corners")
    falloff: float = value_range(0.5, 4.0, (1.5, 2.5), "how sharply the light drops toward the edge (power)")
    offset: float = value_range(0.0, 0.3, (0.0, 0.08), "off-centre illumination, fraction of the frame")


def apply_vignette(img: np.ndarray, p: VignetteParams, ctx: FrameContext) -> np.ndarray:
    """Uneven illumination: light falling toward the corners of the frame, from a possibly off-centre lamp."""
    h, w = img.shape[:2]
    prng = ctx.persistent()
    cx = (prng.random() - 0.5) * 2 * p.offset
    cy = (prng.random() - 0.5) * 2 * p.offset
    strength = p.strength
    if ctx.clip:
        strength *= 1.0 + 0.1 * (ctx.rng.random() - 0.5)
    # Computed on a 64×64 grid and resized: illumination has no fine detail.
    gx = np.linspace(-1, 1, 64, dtype=np.float32)[None, :] - cx
    gy = np.linspace(-1, 1, 64, dtype=np.float32)[:, None] - cy
    r = np.sqrt(gx * gx + gy * gy) / np.sqrt(2.0)
    gain = 1.0 - strength * np.clip(r, 0, 1.5) ** p.falloff
    return img * rgb(ctx.frame_field(gain.astype(np.float32), h, w))


@dataclass(frozen=True)
class FlickerParams:
    """Drawn values of ``flicker``."""

    amplitude: float = value_range(0.0, 0.5, (0.02, 0.06), "largest exposure change of a frame (gain − 1)")
    gradient: float = value_range(0.0, 0.3, (0.0, 0.03), "top-to-bottom exposure difference within the frame")


def apply_flicker(img: np.ndarray, p: FlickerParams, ctx: FrameContext) -> np.ndarray:
    """Per-frame exposure change (fresh every frame of a clip), optionally uneven from the top of the
    frame to its bottom."""
    h = img.shape[0]
    frame_h = ctx.frame_size(img)[0]
    top = ctx.origin[0]
    r = ctx.rng.random(2) * 2 - 1
    gain = 1.0 + p.amplitude * r[0]
    ctx.values.update(gain=float(gain), gradient=float(p.gradient * r[1]))
    rows = gain + p.gradient * r[1] * np.linspace(-1, 1, frame_h, dtype=np.float32)[top:top + h]
    return img * rows.astype(np.float32)[:, None, None]


@dataclass(frozen=True)
class BandingParams:
    """Drawn values of ``banding``."""

    levels: int = value_range(2, 256, (80, 125), "quantisation levels per channel", integer=True)
    opacity: float = value_range(0.0, 1.0, (0.7, 0.87), "blend of the quantised image")
    threshold: float = value_range(0.005, 0.5, (0.05, 0.1), "local detail below which an area counts as flat (smooth gradients are flat)")


def apply_banding(img: np.ndarray, p: BandingParams, ctx: FrameContext) -> np.ndarray:
    """Quantisation bands in flat gradients (edges and texture keep their values)."""
    q = np.float32(p.levels - 1)
    quant = np.round(clip01(img) * q) / q
    mask = flatness(img, p.threshold) * np.float32(p.opacity)
    return img + (quant - img) * rgb(mask)


@dataclass(frozen=True)
class TextureTrapParams:
    """Drawn values of ``texture_trap``."""

    intensity: float = value_range(0.0, 0.6, (0.07, 0.16), "noise amplitude in flat areas")
    size: float = value_range(0.3, 4.0, (0.6, 1.2), "blur of the noise", unit="px")
    speckles: float = value_range(0.0, 0.05, (0.002, 0.01), "share of pixels that are speckles")
    threshold: float = value_range(0.005, 0.5, (0.04, 0.08), "local detail below which an area counts as flat (smooth gradients are flat)")


def apply_texture_trap(img: np.ndarray, p: TextureTrapParams, ctx: FrameContext) -> np.ndarray:
    """Fine blurred noise and speckles only in flat areas, so a network learns not to invent texture there."""
    h, w = img.shape[:2]
    mask = flatness(img, p.threshold)
    field = noise(ctx.rng, (h, w))
    # The noise is uniform on ±1.72: its extreme tails (a `speckles` share of pixels) become speckles.
    cut = np.float32(1.7205 * (1.0 - 2.0 * p.speckles))
    field[np.abs(field) > cut] *= np.float32(4.0)
    field = cv2.GaussianBlur(field, (0, 0), p.size)
    field *= np.float32(p.intensity * 0.25 * max(p.size, 1.0))
    return img + rgb(field * mask)
