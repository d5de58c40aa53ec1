"""Geometry of damaged film: projector creases and tears, misregistered layers, gate weave."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.degrade.context import FrameContext
from engine.degrade.ops import affine, clip01, luma, rgb, translate
from engine.degrade.params import chance, choice, value_range


@dataclass(frozen=True)
class CreaseParams:
    """Drawn values of ``crease``."""

    spacing: float = value_range(2.0, 300.0, (10.0, 30.0), "distance between lines", unit="px")
    width: float = value_range(0.5, 8.0, (0.8, 1.8), "line half-width", unit="px")
    continuity: float = value_range(0.05, 1.0, (0.3, 0.8), "share of each line's length that is creased")
    displacement: float = value_range(0.0, 12.0, (1.0, 3.0), "vertical displacement of the image along a line", unit="px")
    darken: float = value_range(0.0, 1.0, (0.06, 0.39), "darkening on a line")
    color_shift: float = value_range(0.0, 0.5, (0.1, 0.16), "colour shift on a line (relative to the darkening)")
    tear: bool = chance(0.0, "add one tear: a single strong line with a large jump")


def crease_reach(p: CreaseParams) -> float:
    """How far a crease pulls picture along a line: its displacement (four times on a tear)."""
    return p.displacement * (4.0 if p.tear else 1.0) + 1.0


def apply_crease(img: np.ndarray, p: CreaseParams, ctx: FrameContext) -> np.ndarray:
    """Periodic horizontal lines with a continuity map, displacing, darkening and tinting the image.

    Each line is the outer product of its row profile (a Gaussian a few pixels high) and its
    continuity along x; only the bands of rows that lines touch are computed. Lines are laid out
    over the whole frame (their number follows the frame's height); on a window of the frame only
    the bands that cross it are rendered.
    """
    h, w = img.shape[:2]
    frame_h, frame_w = ctx.frame_size(img)
    top, left = ctx.origin
    rng = ctx.persistent()
    k = max(1, int(frame_h / p.spacing) + 1)
    centers = (rng.random() + np.arange(k)) * p.spacing + (rng.random(k) - 0.5) * p.spacing * 0.3
    widths = p.width * (0.6 + 0.8 * rng.random(k))
    strengths = (0.5 + 0.5 * rng.random(k)).astype(np.float32)
    shifts = ((rng.random(k) - 0.5) * 2).astype(np.float32)  # signed displacement per line
    # Continuity: a smooth random profile per line, thresholded so `continuity` of it is on.
    cells = max(4, frame_w // 24)
    coarse = rng.random((k, cells)).astype(np.float32)
    if p.tear:
        tear = int(rng.integers(0, k))
        strengths[tear] = 1.0
        widths[tear] = max(widths[tear], 2.0)
        shifts[tear] = 4.0 * np.sign(shifts[tear] or 1.0)
    # Each line touches only the rows within a few widths of it: work band by band (overlapping
    # lines merged, in frame rows), leaving the rows between bands untouched.
    starts = np.maximum(np.trunc(centers - 3.5 * widths), 0).astype(np.int64)
    ends = np.minimum(np.trunc(centers + 3.5 * widths) + 2, frame_h).astype(np.int64)
    spans = sorted(zip(starts.tolist(), ends.tolist(), range(k)))
    bands: list[list] = []
    for r0, r1, j in spans:
        if r1 <= r0:
            continue
        if bands and r0 <= bands[-1][1]:
            bands[-1][1] = max(bands[-1][1], r1)
            bands[-1][2].append(j)
        else:
            bands.append([r0, r1, [j]])
    bands = [b for b in bands if b[0] < top + h and b[1] > top]  # those crossing this image
    if not bands:
        return img
    # Continuity, for the lines drawn here and this image's columns only.
    members = sorted(j for b in bands for j in b[2])
    row = {j: i for i, j in enumerate(members)}
    cont = cv2.resize(coarse[members], (frame_w, len(members)), interpolation=cv2.INTER_LINEAR)[:, left:left + w]
    cont = np.clip((cont - (1.0 - p.continuity)) * 6.0, 0.0, 1.0).astype(np.float32)
    if p.tear and tear in row:
        cont[row[tear]] = 1.0
    out = img.copy()
    map_x = np.ascontiguousarray(np.broadcast_to(np.arange(w, dtype=np.float32)[None, :], (h, w)))
    tint = np.array([-0.3, 0.1, 0.6]) * (p.color_shift * p.darken)
    for a, b, members in bands:
        a, b = max(a - top, 0), min(b - top, h)  # the band's rows in this image
        if b <= a:
            continue
        rows = np.arange(a, b, dtype=np.float32)
        frame_rows = rows + np.float32(top)
        line_map = np.zeros((b - a, w), np.float32)
        disp = np.zeros((b - a, w), np.float32)
        for j in members:
            d = (frame_rows - np.float32(centers[j])) / np.float32(widths[j])
            bump = np.exp(-0.5 * d * d)
            line_map += np.outer(bump * strengths[j], cont[row[j]])
            disp += np.outer(bump * (shifts[j] * p.displacement), cont[row[j]])
        # Rows near a line are pulled along it: a Gaussian bump of vertical displacement.
        map_y = disp + rows[:, None]
        band = cv2.remap(img, map_x[: b - a], map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        lines3 = rgb(clip01(line_map))
        out[a:b] = band * (1.0 - p.darken * lines3) + affine(lines3, tint)
    return out


@dataclass(frozen=True)
class EmulsionShiftParams:
    """Drawn values of ``emulsion_shift``."""

    shift: float = value_range(0.0, 16.0, (0.0, 4.0), "misregistration of red and blue (opposite ways)", unit="px")
    angle: float = value_range(0.0, 360.0, (0.0, 360.0), "direction of the red layer's shift", unit="deg")
    ghost: bool = chance(0.15, "a luma ghost (a faint shifted copy) instead of misregistered layers")
    ghost_opacity: float = value_range(0.0, 0.6, (0.1, 0.3), "ghost opacity")


def apply_emulsion_shift(img: np.ndarray, p: EmulsionShiftParams, ctx: FrameContext) -> np.ndarray:
    """Red and blue layers moved by opposite offsets (visible at edges), or a luma ghost."""
    rad = np.deg2rad(p.angle)
    dx, dy = p.shift * np.cos(rad), p.shift * np.sin(rad)
    if p.ghost:
        y = luma(img)
        ghost = translate(y, dx, dy)
        return img + rgb((ghost - y) * np.float32(p.ghost_opacity))
    r, g, b = cv2.split(img)
    return cv2.merge([translate(r, dx, dy), g, translate(b, -dx, -dy)])


@dataclass(frozen=True)
class GateWeaveParams:
    """Drawn values of ``gate_weave``."""

    amplitude: float = value_range(0.0, 12.0, (0.3, 1.5), "largest frame offset", unit="px")
    vertical_ratio: float = value_range(0.0, 2.0, (0.3, 0.8), "vertical weave relative to horizontal")
    jitter: float = value_range(0.0, 1.0, (0.1, 0.3), "share of frame-to-frame randomness in the path")
    mode: str = choice(("clip", "always"), ("clip",),
                       "clip: only on clips (moving a still would misalign it with its ground truth); "
                       "always: stills too")


def weave_offset(p: GateWeaveParams, ctx: FrameContext) -> tuple[float, float]:
    """The (dx, dy) of this frame: a slow persistent path of sinusoids plus per-frame jitter."""
    prng = ctx.persistent()
    freqs = 0.05 + 0.25 * prng.random(4)
    phases = prng.random(4) * 2 * np.pi
    t = ctx.index
    smooth = np.sin(freqs * t + phases)
    jit = ctx.rng.random(2) * 2 - 1
    dx = p.amplitude * ((1 - p.jitter) * 0.5 * (smooth[0] + smooth[1]) + p.jitter * jit[0])
    dy = p.amplitude * p.vertical_ratio * ((1 - p.jitter) * 0.5 * (smooth[2] + smooth[3]) + p.jitter * jit[1])
    return float(dx), float(dy)


def apply_gate_weave(img: np.ndarray, p: GateWeaveParams, ctx: FrameContext) -> np.ndarray:
    """Move the whole frame by this frame's weave offset (clips; stills only in mode 'always')."""
    if not ctx.clip and p.mode == "clip":
        return img
    dx, dy = weave_offset(p, ctx)
    ctx.values.update(dx=dx, dy=dy)
    return translate(img, dx, dy)
