"""Procedural photographic frames: dead leaves with textured leaves, depth of field, light and film.

A *dead leaves* picture stacks random shapes whose sizes follow a power law (many small, few
large), each hiding what lies behind it: the occlusions, edges and mix of scales of real scenes,
with no data set. Restoration networks trained on such pictures come close to ones trained on
photographs, the more so when the leaves carry texture and the picture passes through simple
optics. Here each leaf is filled with one of: a flat colour, a smooth gradient, 1/f noise (clouds,
foliage, skin, stone), oriented stripes, straight or bent (wood, fabric, railings), or a fine
periodic pattern (weave, mesh, print), and shaded as a curved surface; the leaves lie on a few
depth planes, each blurred by its distance from the plane in focus; a smooth light falls off
across the scene; exposure and a film's S-shaped characteristic curve (toe and shoulder) turn
radiance into the print's tones. Black-and-white frames (R = G = B) take the luminance through a
steeper curve, as panchromatic stock would.

Each plane is drawn as a map of leaf numbers (OpenCV polygons, the nearer leaf wins), then every
pixel's texture is computed at once from its leaf's parameters, and pixels on a boundary take the
mean of their neighbourhood (anti-aliasing): the cost follows the frame's size, not the number
of leaves. Frames are a pure function of (seed, size, gray).
"""

from __future__ import annotations

import math

import numpy as np

# Rec.601 luma, as the degrader measures it.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
FLAT, GRADIENT, NOISE, STRIPES, PATTERN = range(5)
_KIND_WEIGHTS = np.array([0.2, 0.15, 0.35, 0.15, 0.15])


def photo_frame(seed: int, width: int = 256, height: int = 256, gray: bool = False) -> np.ndarray:
    """One clean photographic frame (H×W×3 uint8 RGB), a pure function of (seed, size, gray)."""
    import cv2

    if width < 8 or height < 8:
        raise ValueError(f"photo_frame: {width}x{height} is too small (at least 8x8)")
    rng = np.random.default_rng([seed, 0xF070])
    radiance = _Scene(rng, width, height).render()
    radiance *= _illumination(rng, width, height)[..., None]
    # The plane in focus is never perfectly sharp on film.
    lens = float(rng.uniform(0.2, 0.6))
    radiance = cv2.GaussianBlur(radiance, (0, 0), lens, borderType=cv2.BORDER_REFLECT)
    if gray:
        radiance = cv2.transform(radiance, _LUMA[None, :])
    tones = _film_curve(rng, radiance, gray)
    out = cv2.convertScaleAbs(tones, alpha=255.0)  # rounds and saturates to uint8
    if gray:
        return cv2.cvtColor(out, cv2.COLOR_GRAY2RGB)
    return out


class _Scene:
    """Dead leaves on depth planes, far to near; each plane blurred by its distance from focus."""

    def __init__(self, rng: np.random.Generator, width: int, height: int):
        self.rng, self.w, self.h = rng, width, height
        self.side = min(width, height)
        # A scene has a few dominant hues (sky, foliage, walls) and an overall saturation.
        self.hues = rng.uniform(0.0, 1.0, int(rng.integers(2, 5)))
        self.saturation = float(rng.uniform(0.2, 1.0))
        self.fields = np.stack([_pink_noise(rng, width, height, beta)
                                for beta in (rng.uniform(1.6, 2.2), rng.uniform(2.4, 3.2))])

    def render(self) -> np.ndarray:
        """The scene's radiance (linear light), H×W×3 float32."""
        import cv2

        rng = self.rng
        planes = int(rng.integers(1, 4))
        # Most pictures are focused on the scene, some on what is in front of it.
        focus = 0 if rng.random() < 0.5 else int(rng.integers(0, planes + 1))
        blur_per_plane = float(rng.uniform(0.3, 2.0)) * self.side / 384.0
        canvas = None
        # Plane 0 is the scene behind everything: a backdrop leaf and dead leaves that cover the
        # frame. Nearer planes hold fewer, larger leaves: objects in front.
        for plane in range(planes + 1):
            if plane == 0:
                radii = _leaf_sizes(rng, self.side / rng.uniform(50.0, 120.0), self.side * 0.6,
                                    float(rng.uniform(1.0, 4.0)) * self.w * self.h)
            else:
                scale = 1.0 + 0.6 * plane
                radii = _leaf_sizes(rng, self.side / 40.0 * scale, self.side * 0.35 * scale,
                                    float(rng.uniform(0.05, 0.5)) * self.w * self.h)
            color, alpha = self._plane(radii, backdrop=plane == 0)
            sigma = abs(plane - focus) * blur_per_plane
            if sigma > 0.3:
                color = cv2.GaussianBlur(color, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
                alpha = cv2.GaussianBlur(alpha, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
            # Premultiplied "over": the near plane hides what lies behind it.
            canvas = color if canvas is None else color + canvas * (1.0 - alpha)[..., None]
        return canvas

    def _plane(self, radii: np.ndarray, backdrop: bool) -> tuple[np.ndarray, np.ndarray]:
        """One plane's premultiplied colour (H×W×3) and coverage (H×W)."""
        import cv2

        rng = self.rng
        n = len(radii) + 1  # leaf 0: the backdrop (plane 0 only)
        leaves = self._leaves(n, np.concatenate([[self.side], radii]))
        labels = np.full((self.h, self.w), 0 if backdrop else -1, np.int32)
        cx = rng.uniform(-0.15, 1.15, n) * self.w
        cy = rng.uniform(-0.15, 1.15, n) * self.h
        leaves["cx"], leaves["cy"] = cx.astype(np.float32), cy.astype(np.float32)
        shape_draws = rng.random((n, 20))
        for i in range(1, n):
            _draw_shape(labels, i, cx[i], cy[i], radii[i - 1], shape_draws[i])
        covered = labels >= 0
        ys, xs = np.nonzero(covered)
        ids = labels[ys, xs]
        color = np.zeros((self.h, self.w, 3), np.float32)
        color[ys, xs] = self._shade(leaves, ids, xs.astype(np.float32), ys.astype(np.float32), ys, xs)
        alpha = covered.astype(np.float32)
        # Anti-aliasing: where two leaves (or a leaf and nothing) meet, the pixel takes the mean
        # of its 3×3 neighbourhood, as a pixel straddling the boundary would.
        edge = np.zeros((self.h, self.w), bool)
        edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
        edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
        edge[1:] |= labels[1:] != labels[:-1]
        edge[:-1] |= labels[1:] != labels[:-1]
        color[edge] = cv2.blur(color, (3, 3), borderType=cv2.BORDER_REFLECT)[edge]
        alpha[edge] = cv2.blur(alpha, (3, 3), borderType=cv2.BORDER_REFLECT)[edge]
        return color, alpha

    def _leaves(self, n: int, radii: np.ndarray) -> dict[str, np.ndarray]:
        """Each leaf's surface: texture kind, two colours and the texture's parameters."""
        rng = self.rng
        kind = rng.choice(5, size=n, p=_KIND_WEIGHTS)
        c1 = self._colours(n)
        c2 = self._colours(n)
        related = rng.random(n) < 0.6  # most textures are one material's light and dark
        c2[related] = c1[related] * np.exp(rng.normal(0.0, 0.6, related.sum()))[:, None].astype(np.float32)
        lo, hi = math.log(3.0), np.log(np.clip(radii, 3.5, 40.0))
        return {
            "kind": kind, "c1": c1, "c2": c2, "r": radii.astype(np.float32),
            "theta": rng.uniform(0, math.pi, n).astype(np.float32),
            "span": np.maximum(radii * rng.uniform(0.8, 3.0, n), 2.0).astype(np.float32),
            "offset": rng.uniform(-0.5, 0.5, n).astype(np.float32),
            "period": np.exp(lo + rng.random(n) * (hi - lo)).astype(np.float32),
            "fine": rng.uniform(3.0, 8.0, n).astype(np.float32),
            "stretch": rng.uniform(0.7, 1.4, n).astype(np.float32),
            "phase": rng.uniform(0, 2 * math.pi, n).astype(np.float32),
            "sharp": rng.uniform(1.0, 6.0, n).astype(np.float32),
            "warp": np.where(rng.random(n) < 0.4, rng.uniform(2, 8, n), 0.0).astype(np.float32),
            "field": rng.integers(0, len(self.fields), n),
            "dx": rng.integers(0, self.w, n), "dy": rng.integers(0, self.h, n),
            "gain": rng.uniform(0.6, 2.0, n).astype(np.float32),
            "slope": (rng.uniform(0.0, 0.6, n) / np.maximum(radii, 4.0)).astype(np.float32),
            "phi": rng.uniform(0, 2 * math.pi, n).astype(np.float32),
        }

    def _colours(self, n: int) -> np.ndarray:
        """Natural surface colours in linear light: mostly dull, a few vivid; dark to light."""
        rng = self.rng
        hue = (self.hues[rng.integers(len(self.hues), size=n)] + rng.normal(0, 0.03, n)) % 1.0
        wild = rng.random(n) < 0.05
        hue[wild] = rng.random(wild.sum())
        sat = np.minimum(rng.beta(1.2, 3.5, n) * self.saturation * 1.2, 1.0)
        albedo = np.exp(rng.uniform(math.log(0.02), math.log(0.9), n))
        # HSV at full value, to linear light, scaled so the luminance is the albedo.
        k = (np.array([5.0, 3.0, 1.0])[None, :] + hue[:, None] * 6.0) % 6.0
        rgb = 1.0 - sat[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
        rgb = rgb ** 2.2
        lum = np.maximum(rgb @ _LUMA.astype(np.float64), 1e-3)
        return (rgb * (albedo / lum)[:, None]).astype(np.float32)

    def _shade(self, leaves: dict[str, np.ndarray], ids: np.ndarray, fx: np.ndarray, fy: np.ndarray,
               py: np.ndarray, px: np.ndarray) -> np.ndarray:
        """The radiance of covered pixels (leaf ``ids`` at frame positions ``fx``, ``fy``)."""
        kind = leaves["kind"][ids]
        order = np.argsort(kind, kind="stable")  # pixels grouped by texture kind: slices, not masks
        ids, fx, fy, py, px = ids[order], fx[order], fy[order], py[order], px[order]
        bounds = np.searchsorted(kind[order], np.arange(6))
        t = np.zeros(len(ids), np.float32)
        cos, sin = np.cos(leaves["theta"]), np.sin(leaves["theta"])

        def part(which: int) -> tuple[slice, np.ndarray]:
            sl = slice(bounds[which], bounds[which + 1])
            return sl, ids[sl]

        sl, lid = part(GRADIENT)
        along = fx[sl] * cos[lid] + fy[sl] * sin[lid]
        t[sl] = np.clip(along / leaves["span"][lid] + leaves["offset"][lid], 0.0, 1.0)
        sl, lid = part(NOISE)
        noise = self._noise(leaves, lid, py[sl], px[sl])
        t[sl] = np.clip(noise + 0.5, 0.0, 1.0)
        sl, lid = part(STRIPES)
        phase = (fx[sl] * cos[lid] + fy[sl] * sin[lid]) * ((2 * math.pi) / leaves["period"])[lid] + leaves["phase"][lid]
        bent = leaves["warp"][lid] > 0
        phase[bent] += self._noise(leaves, lid[bent], py[sl][bent], px[sl][bent]) * leaves["warp"][lid[bent]]
        t[sl] = np.clip(np.sin(phase) * (0.5 * leaves["sharp"][lid]) + 0.5, 0.0, 1.0)
        sl, lid = part(PATTERN)
        k = ((2 * math.pi) / leaves["fine"])[lid]
        along = (fx[sl] * cos[lid] + fy[sl] * sin[lid]) * k
        across = (fy[sl] * cos[lid] - fx[sl] * sin[lid]) * k * leaves["stretch"][lid] + leaves["phase"][lid]
        t[sl] = 0.5 + 0.25 * (np.sin(along) + np.sin(across))
        # Shading, a light falling across a curved surface: 1 + a·x + b·y + c per leaf.
        a = leaves["slope"] * np.cos(leaves["phi"])
        b = leaves["slope"] * np.sin(leaves["phi"])
        c = 1.0 - a * leaves["cx"] - b * leaves["cy"]
        shade = np.clip(a[ids] * fx + b[ids] * fy + c[ids], 0.2, 1.8)
        c1 = leaves["c1"]
        rgb = c1[ids] + (leaves["c2"] - c1)[ids] * t[:, None]
        rgb *= shade[:, None]
        out = np.empty_like(rgb)
        out[order] = rgb
        return out

    def _noise(self, leaves: dict[str, np.ndarray], lid: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
        """Each leaf's own window of one of the frame's noise fields, with its own contrast."""
        rows = (py + leaves["dy"][lid]) % self.h
        cols = (px + leaves["dx"][lid]) % self.w
        return self.fields[leaves["field"][lid], rows, cols] * leaves["gain"][lid]


def _pink_noise(rng: np.random.Generator, width: int, height: int, beta: float) -> np.ndarray:
    """Gaussian noise with a 1/f^β power spectrum (β 2: natural images), std 1/4 around 0."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2)
    amp[0, 0] = 0.0
    spectrum = amp * (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape))
    field = np.fft.irfft2(spectrum, s=(height, width))
    field /= field.std() * 4.0 + 1e-12
    return field.astype(np.float32)


def _leaf_sizes(rng: np.random.Generator, rmin: float, rmax: float, area: float) -> np.ndarray:
    """Leaf radii with density ∝ r⁻³ (scale invariance) between ``rmin`` and ``rmax``, as many as
    cover ``area`` on average, in drawing order (far to near)."""
    rmin = max(rmin, 1.5)
    rmax = max(rmax, rmin * 1.5)
    a, b = rmin ** -2, rmax ** -2
    mean_area = math.pi * math.log(rmax / rmin) / (0.5 * (a - b))
    n = min(int(area / mean_area) + 1, 20000)
    return (a - rng.random(n) * (a - b)) ** -0.5


_BLOB_ANGLES = np.linspace(0, 2 * math.pi, 24, endpoint=False)
_RECT_ANGLES = np.array([0.25, 0.75, 1.25, 1.75]) * math.pi


def _draw_shape(labels: np.ndarray, value: int, cx: float, cy: float, r: float, draws: np.ndarray) -> None:
    """Leaf ``value`` over what is there: an ellipse, a rounded blob, a polygon or a rectangle,
    shaped by its 20 uniform ``draws``."""
    import cv2

    kind, angle, aspect = draws[0], draws[1] * 360.0, 0.35 + 0.65 * draws[2]
    if r < 4 or kind < 0.35:
        cv2.ellipse(labels, (int(cx * 16), int(cy * 16)), (max(int(r * 16), 8), max(int(r * aspect * 16), 8)),
                    angle, 0, 360, value, -1, cv2.LINE_8, 4)
        return
    if kind < 0.6:
        t = _BLOB_ANGLES
        rad = r * (1 + 0.25 * np.sin(2 * t + draws[3] * 6.3) + 0.15 * np.sin(3 * t + draws[4] * 6.3))
    elif kind < 0.85:
        count = 3 + int(draws[5] * 6)  # 3 to 8 corners
        t = np.sort(draws[6:6 + count]) * (2 * math.pi)
        rad = r * (0.6 + 0.4 * draws[12:12 + count])
    else:
        t, rad = _RECT_ANGLES, r
    a = math.radians(angle)
    x, y = np.cos(t) * rad, np.sin(t) * rad * aspect
    ca, sa = math.cos(a), math.sin(a)
    pts = np.empty((len(t), 2))
    pts[:, 0] = (cx + x * ca - y * sa) * 16
    pts[:, 1] = (cy + x * sa + y * ca) * 16
    cv2.fillPoly(labels, [np.round(pts).astype(np.int32)], value, cv2.LINE_8, 4)


def _illumination(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth light over the scene: a lamp or window somewhere (maybe off frame) whose light
    falls off with distance, over an ambient level."""
    side = min(width, height)
    lx, ly = rng.uniform(-0.3, 1.3) * width, rng.uniform(-0.3, 1.3) * height
    reach = rng.uniform(0.4, 1.5) * side
    ambient = rng.uniform(0.15, 0.7)
    yy = np.arange(height, dtype=np.float32)[:, None]
    xx = np.arange(width, dtype=np.float32)[None, :]
    d2 = ((xx - np.float32(lx)) ** 2 + (yy - np.float32(ly)) ** 2) / np.float32(reach * reach)
    light = np.float32(ambient) + np.float32(1 - ambient) / (1.0 + d2)
    return (light / light.max()).astype(np.float32)


def _film_curve(rng: np.random.Generator, radiance: np.ndarray, gray: bool) -> np.ndarray:
    """Exposure and an S-shaped characteristic curve (toe and shoulder in log exposure) to [0, 1]."""
    lum = radiance if radiance.ndim == 2 else radiance @ _LUMA
    grey = float(np.exp(np.mean(np.log(np.maximum(lum, 1e-4)))))  # the scene's log-mean: metered grey
    exposure = grey * 2.0 ** rng.uniform(-0.7, 0.7)
    stops = np.log2(np.maximum(radiance, 1e-6) / np.float32(exposure))
    slope = 0.55 * rng.uniform(1.0, 1.5) * (1.25 if gray else 1.0)
    curve = 1.0 / (1.0 + np.exp(np.float32(-slope) * stops))
    # Seven stops either side of grey span the paper from its base to its maximum density.
    lo, hi = 1.0 / (1.0 + math.exp(slope * 7)), 1.0 / (1.0 + math.exp(-slope * 7))
    return np.clip((curve - np.float32(lo)) / np.float32(hi - lo), 0, 1).astype(np.float32)
