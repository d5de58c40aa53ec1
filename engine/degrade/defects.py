"""Dirt on the film: debris (specks, blobs, crumbs, hairs), scratches, micro-dust and smudges.

Objects are drawn with OpenCV's drawing functions on small patches around each object and applied
to those regions only; single-pixel dust is applied to its pixels directly. A frame with hundreds
of objects costs a few milliseconds, whatever its size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.degrade.context import FrameContext
from engine.degrade.ops import scale_count
from engine.degrade.params import chance, value_range


class _DirtLayers:
    """Dirt drawn object by object into full-frame 8-bit coverage masks, applied sparsely.

    One mask per (bright, softness): each object is a single OpenCV drawing call (anti-aliased, 1/16
    pixel precision), each mask is blurred once in 8 bits, and only the covered pixels of the image
    are read and written, so the cost follows the dirt's area, not the frame's.
    """

    def __init__(self, h: int, w: int):
        self.h, self.w = h, w
        self.masks: dict[tuple[bool, float], np.ndarray] = {}

    def _mask(self, bright: bool, soften: float) -> np.ndarray:
        key = (bright, soften)
        if key not in self.masks:
            # Rounded up to whole 8-byte words so `apply` can scan it 8 pixels at a time.
            n = self.h * self.w
            self.masks[key] = np.zeros(-(-n // 8) * 8, np.uint8)
        return self.masks[key][: self.h * self.w].reshape(self.h, self.w)

    def line(self, points: np.ndarray, value: float, bright: bool, soften: float, thickness: int = 1) -> None:
        """An open polyline through ``points`` (N×2, x/y)."""
        fixed = np.round(points * 16).astype(np.int32)
        cv2.polylines(self._mask(bright, soften), [fixed], False, _level(value), max(1, thickness), cv2.LINE_AA, 4)

    def polygon(self, points: np.ndarray, value: float, bright: bool, soften: float) -> None:
        """A filled polygon."""
        fixed = np.round(points * 16).astype(np.int32)
        cv2.fillPoly(self._mask(bright, soften), [fixed], _level(value), cv2.LINE_AA, 4)

    def dot(self, x: float, y: float, radius: float, value: float, bright: bool, soften: float) -> None:
        """A filled disc."""
        cv2.circle(self._mask(bright, soften), (int(x * 16), int(y * 16)), max(int(radius * 16), 8),
                   _level(value), -1, cv2.LINE_AA, 4)

    def apply(self, img: np.ndarray, in_place: bool = False) -> np.ndarray:
        """Darken (``img·(1−m)``) or lighten (``img + (1−img)·m``) the covered pixels (of a copy)."""
        out = img if in_place else img.copy()
        flat = out.reshape(-1, 3)
        n = self.h * self.w
        for (bright, soften), buf in self.masks.items():
            mask = buf[:n].reshape(self.h, self.w)
            if soften > 0:
                mask[...] = cv2.GaussianBlur(mask, (0, 0), soften)
            words = np.flatnonzero(buf.view(np.uint64))
            idx = (words[:, None] * 8 + np.arange(8)).ravel()
            idx = idx[idx < n]
            idx = idx[buf[idx] > 0]
            if idx.size == 0:
                continue
            cover = buf[idx].astype(np.float32)[:, None] * np.float32(1.0 / 255.0)
            px = flat[idx]
            flat[idx] = px + (1.0 - px) * cover if bright else px * (1.0 - cover)
        return out


def _level(value: float) -> int:
    return int(min(max(round(value), 0), 255))


def _warped_polygon(rng: np.random.Generator, cx: float, cy: float, radius: float, vertices: int,
                    roughness: float) -> np.ndarray:
    angles = np.sort(rng.random(vertices)) * 2 * np.pi
    radii = radius * (1.0 + roughness * (rng.random(vertices) - 0.5) * 2)
    aspect = 0.5 + rng.random()
    return np.stack([cx + np.cos(angles) * radii * aspect, cy + np.sin(angles) * radii / aspect], axis=1)


_BEZIER: dict[int, np.ndarray] = {}


def _bezier_basis(samples: int) -> np.ndarray:
    """The cubic Bernstein basis at ``samples`` points (samples × 4), cached."""
    if samples not in _BEZIER:
        t = np.linspace(0.0, 1.0, samples)[:, None]
        _BEZIER[samples] = np.hstack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3])
    return _BEZIER[samples]


def _curve(rng: np.random.Generator, start: np.ndarray, direction: np.ndarray, length: float,
           bend: float, samples: int) -> np.ndarray:
    """A cubic Bézier from ``start`` roughly along ``direction``, its control points bent sideways."""
    normal = np.array([-direction[1], direction[0]])
    bends = (rng.random(2) - 0.5) * 2 * bend * length
    control = np.array([
        start,
        start + direction * length / 3 + normal * bends[0],
        start + direction * 2 * length / 3 + normal * bends[1],
        start + direction * length,
    ])
    return _bezier_basis(samples) @ control


@dataclass(frozen=True)
class DebrisParams:
    """Drawn values of ``debris``."""

    count: int = value_range(0, 500, (20, 50), "objects per 512×512 area", integer=True)
    size: float = value_range(0.5, 60.0, (1.5, 6.0), "typical object radius", unit="px")
    intensity: float = value_range(0.0, 1.0, (0.16, 0.39), "opacity of the dirt")
    bright: bool = chance(0.3, "negative-side dirt (prints bright) instead of positive-side (prints dark)")
    hair_fraction: float = value_range(0.0, 1.0, (0.05, 0.15), "share of objects that are hairs")


def apply_debris(img: np.ndarray, p: DebrisParams, ctx: FrameContext) -> np.ndarray:
    """Specks, blobs, crumbs and hairs with warped outlines, dark on a positive, bright on a negative."""
    h, w = img.shape[:2]
    rng = ctx.rng
    layers = _DirtLayers(h, w)
    for _ in range(scale_count(p.count, h, w)):
        bright = (rng.random() < 0.15) != p.bright  # some dirt of the other side
        value = 255 * p.intensity * (0.5 + rng.random() * 0.5)
        cx, cy = rng.random() * w, rng.random() * h
        radius = p.size * float(rng.lognormal(0.0, 0.6))
        kind = rng.random()
        if kind < p.hair_fraction:
            angle = rng.random() * 2 * np.pi
            pts = _curve(rng, np.array([cx, cy]), np.array([np.cos(angle), np.sin(angle)]), radius * 8, 0.4, 16)
            layers.line(pts, value, bright, 0.5)
        elif radius < 1.2:
            layers.dot(cx, cy, radius, value, bright, 0.5)
        else:
            # Blobs are smooth, crumbs jagged.
            vertices = int(rng.integers(5, 12))
            roughness = 0.3 if kind < 0.6 else 0.8
            layers.polygon(_warped_polygon(rng, cx, cy, radius, vertices, roughness), value, bright, 0.6)
    return layers.apply(img)


@dataclass(frozen=True)
class ScratchesParams:
    """Drawn values of ``scratches``."""

    count: int = value_range(0, 50, (0, 2), "long scratches along the film per frame", integer=True)
    length: float = value_range(0.05, 1.0, (0.3, 1.0), "long-scratch length as a fraction of the frame height")
    width: float = value_range(0.5, 6.0, (0.8, 2.0), "long-scratch width", unit="px")
    hair_count: int = value_range(0, 300, (24, 35), "short hair-like scratches per 512×512 area", integer=True)
    hair_length: float = value_range(2.0, 200.0, (20.0, 50.0), "hair-scratch length", unit="px")
    intensity: float = value_range(-1.0, 1.0, (-0.09, 0.09),
                                   "signed strength: negative darkens, positive brightens; each scratch "
                                   "draws its own sign and strength within ±|value|")
    drift: float = value_range(0.0, 10.0, (0.2, 1.5), "clip mode: sideways drift of a long scratch per frame", unit="px")


def apply_scratches(img: np.ndarray, p: ScratchesParams, ctx: FrameContext) -> np.ndarray:
    """Long Bézier scratches along the film (persistent and drifting in a clip) and short hairs.

    ``count`` long scratches cross the whole frame (on a window of it, only those that pass
    through it show); hairs are spread evenly, ``hair_count`` per 512×512 area.
    """
    h, w = img.shape[:2]
    frame_h, frame_w = ctx.frame_size(img)
    top, left = ctx.origin
    layers = _DirtLayers(h, w)
    strength = abs(p.intensity)
    prng = ctx.persistent()
    for _ in range(p.count):
        x0 = prng.random() * frame_w
        length = p.length * frame_h * (0.6 + 0.4 * prng.random())
        y0 = prng.random() * max(frame_h - length, 1.0)
        bright = prng.random() < 0.5
        value = 255 * strength * (0.5 + 0.5 * prng.random())
        width = p.width * (0.6 + 0.8 * prng.random())
        drift_sign = 1 if prng.random() < 0.5 else -1
        direction = np.array([(prng.random() - 0.5) * 0.1, 1.0])
        pts = _curve(prng, np.array([x0, y0]), direction / np.linalg.norm(direction), length, 0.03, 48)
        pts -= (left, top)  # frame to image coordinates
        if ctx.clip:
            pts[:, 0] += p.drift * ctx.index * drift_sign + (ctx.rng.random() - 0.5) * 0.6
            value *= 0.8 + 0.4 * ctx.rng.random()
        # Width and intensity vary along the scratch (drawn in chunks) but, being cut into the
        # film, not from frame to frame: both come from the persistent stream.
        bounds = np.linspace(0, len(pts) - 1, 7).astype(int)
        chunk_widths = width * (0.6 + 0.8 * prng.random(6))
        chunk_values = value * (0.4 + 0.6 * prng.random(6))
        for k in range(6):
            chunk = pts[bounds[k]:bounds[k + 1] + 1]
            layers.line(chunk, chunk_values[k], bright, 0.5, round(chunk_widths[k]))
    rng = ctx.rng
    for _ in range(scale_count(p.hair_count, h, w)):
        bright = rng.random() < 0.5
        value = 255 * strength * (0.3 + 0.7 * rng.random())
        angle = (rng.random() - 0.5) * 0.8 + (np.pi / 2 if rng.random() < 0.7 else rng.random() * np.pi)
        start = np.array([rng.random() * w, rng.random() * h])
        length = p.hair_length * (0.5 + rng.random())
        pts = _curve(rng, start, np.array([np.cos(angle), np.sin(angle)]), length, 0.25, 12)
        layers.line(pts, value, bright, 0.5)
    return layers.apply(img)


@dataclass(frozen=True)
class MicroDefectsParams:
    """Drawn values of ``micro_defects``."""

    dust_count: int = value_range(0, 3000, (31, 87), "one-to-two-pixel dust specks per 512×512 area", integer=True)
    smudge_count: int = value_range(0, 1000, (16, 51), "small soft smudges per 512×512 area", integer=True)
    intensity: float = value_range(0.0, 1.0, (0.1, 0.46), "opacity")
    bright_fraction: float = value_range(0.0, 1.0, (0.2, 0.5), "share of bright (negative-side) specks")


def apply_micro_defects(img: np.ndarray, p: MicroDefectsParams, ctx: FrameContext) -> np.ndarray:
    """Dense tiny dust (vectorised) and small smudges."""
    h, w = img.shape[:2]
    rng = ctx.rng
    out = img.copy()
    n = scale_count(p.dust_count, h, w)
    if n:
        # Dust is a pixel or two: applied straight to those pixels, no mask, no blur.
        ys = rng.integers(0, h, n)
        xs = rng.integers(0, w - 1, n)
        vals = (p.intensity * (0.4 + 0.6 * rng.random(n))).astype(np.float32)[:, None]
        is_bright = rng.random(n) < p.bright_fraction
        wide = rng.random(n) < 0.4
        for dx, keep in ((0, np.ones(n, bool)), (1, wide)):
            for sel, bright in ((keep & ~is_bright, False), (keep & is_bright, True)):
                yy, xx, v = ys[sel], xs[sel] + dx, vals[sel] * (0.6 if dx else 1.0)
                px = out[yy, xx]
                out[yy, xx] = px + (1.0 - px) * v if bright else px * (1.0 - v)
    layers = _DirtLayers(h, w)
    for _ in range(scale_count(p.smudge_count, h, w)):
        bright = rng.random() < p.bright_fraction
        value = 255 * p.intensity * (0.3 + 0.5 * rng.random())
        cx, cy = rng.random() * w, rng.random() * h
        axes = (int((1 + rng.random() * 3) * 16), int((1 + rng.random() * 2) * 16))
        cv2.ellipse(layers._mask(bright, 1.2), (int(cx * 16), int(cy * 16)), axes, rng.random() * 180, 0, 360,
                    _level(value), -1, cv2.LINE_AA, 4)
    return layers.apply(out, in_place=True)
