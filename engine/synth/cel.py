"""Procedural cel-animation frames: flat colour fills, dark ink outlines of varying weight, soft
background gradients, cel shading, small details and text-like marks.

Frames are a pure function of (seed, size, time), so a training set or a demo clip is reproduced
exactly from its seed. In a clip the characters glide and bob over a slowly panning background,
as in limited animation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

# A cel painter's palette: saturated but not neon fills, near-black inks.
FILLS = np.array(
    [
        (232, 96, 76), (244, 180, 60), (250, 226, 140), (120, 190, 110), (70, 150, 200),
        (150, 110, 190), (240, 160, 170), (200, 140, 90), (245, 240, 225), (90, 200, 190),
        (170, 60, 60), (60, 90, 150), (230, 215, 180), (110, 120, 60),
    ],
    dtype=np.float32,
)
INKS = np.array([(20, 16, 14), (40, 24, 20), (16, 20, 40), (35, 35, 35)], dtype=np.float32)
GLYPHS = "ABCDEFGHKMNPRSTUWXYZ0123456789!?"


@dataclass
class _Shape:
    kind: str
    cx: float
    cy: float
    rx: float
    ry: float
    angle: float
    fill: tuple
    shade: tuple
    ink: tuple
    ink_width: int
    vx: float
    vy: float
    bob: float
    phase: float
    points: np.ndarray | None = None


def _colour(rng: np.random.Generator, table: np.ndarray, jitter: float) -> np.ndarray:
    c = table[rng.integers(len(table))] + rng.normal(0, jitter, 3)
    return np.clip(c, 0, 255)


def _scene(seed: int, width: int, height: int) -> dict:
    rng = np.random.default_rng([seed, 0xCE1])
    scale = min(width, height)
    top, bottom = _colour(rng, FILLS, 12), _colour(rng, FILLS, 12)
    shapes = []
    for _ in range(int(rng.integers(3, 8))):
        kind = str(rng.choice(["ellipse", "polygon", "rect", "blob"]))
        fill = _colour(rng, FILLS, 8)
        shade = fill * rng.uniform(0.62, 0.82)
        n = int(rng.integers(5, 9))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = rng.uniform(0.55, 1.0, n)
        shapes.append(
            _Shape(
                kind=kind,
                cx=float(rng.uniform(0.1, 0.9) * width),
                cy=float(rng.uniform(0.15, 0.9) * height),
                rx=float(rng.uniform(0.06, 0.22) * scale),
                ry=float(rng.uniform(0.06, 0.22) * scale),
                angle=float(rng.uniform(0, 180)),
                fill=tuple(float(v) for v in fill),
                shade=tuple(float(v) for v in shade),
                ink=tuple(float(v) for v in _colour(rng, INKS, 4)),
                ink_width=int(rng.integers(1, max(2, scale // 90) + 2)),
                vx=float(rng.normal(0, 0.004) * width),
                vy=float(rng.normal(0, 0.002) * height),
                bob=float(rng.uniform(0, 0.015) * scale),
                phase=float(rng.uniform(0, 2 * math.pi)),
                points=np.stack([np.cos(angles) * radii, np.sin(angles) * radii], 1),
            )
        )
    # Small drawn details (eyes, buttons): outlined, never lone specks that look like dirt.
    details = [
        (
            float(rng.uniform(0.05, 0.95) * width), float(rng.uniform(0.05, 0.95) * height),
            int(rng.integers(max(3, scale // 80), max(4, scale // 30))),
            tuple(float(v) for v in _colour(rng, INKS, 4)),
        )
        for _ in range(int(rng.integers(1, 6)))
    ]
    marks = [
        (
            "".join(rng.choice(list(GLYPHS), int(rng.integers(2, 7)))),
            float(rng.uniform(0.02, 0.7) * width), float(rng.uniform(0.1, 0.95) * height),
            float(rng.uniform(0.25, 0.8) * scale / 256), tuple(float(v) for v in _colour(rng, INKS, 4)),
            int(rng.integers(1, 3)),
        )
        for _ in range(int(rng.integers(0, 4)))
    ]
    return dict(top=top, bottom=bottom, shapes=shapes, details=details, marks=marks,
                pan=float(rng.normal(0, 0.15)), tilt=float(rng.uniform(-0.4, 0.4)))


def _background(scene: dict, width: int, height: int, t: float) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    s = (y / max(height - 1, 1)) + scene["tilt"] * (x / max(width - 1, 1) - 0.5) + scene["pan"] * 0.01 * t
    s = np.clip(s, 0, 1)[..., None]
    return (scene["top"] * (1 - s) + scene["bottom"] * s).astype(np.float32)


def _outline(shape: _Shape, cx: float, cy: float) -> np.ndarray:
    if shape.kind == "rect":
        pts = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], np.float32)
    elif shape.kind == "ellipse":
        a = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        pts = np.stack([np.cos(a), np.sin(a)], 1)
    elif shape.kind == "blob":
        a = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        r = 1 + 0.18 * np.sin(3 * a + shape.phase) + 0.1 * np.cos(5 * a)
        pts = np.stack([np.cos(a) * r, np.sin(a) * r], 1)
    else:
        pts = shape.points
    th = math.radians(shape.angle)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]], np.float32)
    pts = (pts * (shape.rx, shape.ry)) @ rot.T + (cx, cy)
    return np.round(pts * 16).astype(np.int32)  # 4 fractional bits for anti-aliased drawing


def cel_frame(seed: int, width: int = 256, height: int = 256, t: float = 0.0) -> np.ndarray:
    """One clean cel frame (H×W×3 uint8 RGB), a pure function of (seed, size, t)."""
    import cv2

    scene = _scene(seed, width, height)
    img = _background(scene, width, height, t)
    for sh in scene["shapes"]:
        cx = sh.cx + sh.vx * t
        cy = sh.cy + sh.vy * t + sh.bob * math.sin(0.35 * t + sh.phase)
        poly = _outline(sh, cx, cy)
        cv2.fillPoly(img, [poly], sh.fill, cv2.LINE_AA, shift=4)
        # Cel shading: a darker flat region on one side of the shape, clipped to it.
        mask = np.zeros((height, width), np.uint8)
        cv2.fillPoly(mask, [poly], 255, cv2.LINE_8, shift=4)
        shade = np.zeros_like(mask)
        offset = np.round(np.array([sh.rx * 0.35, -sh.ry * 0.3]) * 16).astype(np.int32)
        cv2.fillPoly(shade, [poly + offset], 255, cv2.LINE_8, shift=4)
        region = (mask > 0) & (shade == 0)
        img[region] = sh.shade
        cv2.polylines(img, [poly], True, sh.ink, sh.ink_width, cv2.LINE_AA, shift=4)
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    for x, y, r, ink in scene["details"]:
        cv2.circle(out, (int(x), int(y)), r, (250, 248, 240), -1, cv2.LINE_AA)
        cv2.circle(out, (int(x), int(y)), r, ink, 1, cv2.LINE_AA)
        cv2.circle(out, (int(x + r / 3), int(y)), max(1, r // 2), ink, -1, cv2.LINE_AA)
    for text, x, y, size, ink, thick in scene["marks"]:
        cv2.putText(out, text, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, max(size, 0.25), ink, thick, cv2.LINE_AA)
    return out


def cel_clip(seed: int, frames: int, width: int = 320, height: int = 240) -> Iterator[np.ndarray]:
    """``frames`` consecutive frames of one animated scene."""
    for i in range(frames):
        yield cel_frame(seed, width, height, t=float(i))
