"""Image operations shared by the effects: fast noise, blurs, masks. All float32, no 8-bit steps."""

from __future__ import annotations

import cv2
import numpy as np

_LUMA = np.array([[0.299, 0.587, 0.114]], dtype=np.float32)


def luma(img: np.ndarray) -> np.ndarray:
    """Rec.601 luma of an HxWx3 float32 RGB image, HxW float32."""
    return cv2.transform(img, _LUMA)


def noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-mean, unit-std float32 noise, uniformly distributed (from random bytes).

    Several times cheaper than ``standard_normal``; the effects blur or resize it, which makes it
    Gaussian enough. Values reach ±1.72.
    """
    n = int(np.prod(shape))
    out = np.frombuffer(rng.bytes(n), dtype=np.int8).astype(np.float32)
    out *= np.float32(1.0 / 73.9)
    return out.reshape(shape)


def rgb(plane: np.ndarray) -> np.ndarray:
    """An HxW plane repeated into HxWx3 (much faster than numpy broadcasting over 3 channels)."""
    return cv2.cvtColor(np.ascontiguousarray(plane, dtype=np.float32), cv2.COLOR_GRAY2RGB)


def affine(img: np.ndarray, gains, offsets=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Per-channel ``img * gains + offsets`` in one OpenCV pass (numpy broadcasting over 3 is slow)."""
    m = np.zeros((3, 4), np.float32)
    m[0, 0], m[1, 1], m[2, 2] = (float(g) for g in gains)
    m[:, 3] = np.asarray(offsets, np.float32)
    return cv2.transform(img, m)


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; large sigmas run on a downscaled copy (resize-down, blur, resize-up)."""
    if sigma <= 0.05:
        return img
    if sigma <= 4.0:
        return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    h, w = img.shape[:2]
    factor = sigma / 2.0
    small = cv2.resize(img, (max(1, round(w / factor)), max(1, round(h / factor))),
                       interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.6, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def smooth_field(rng: np.random.Generator, h: int, w: int, cell: float, channels: int = 1) -> np.ndarray:
    """Unit-std noise with features about ``cell`` pixels wide: drawn small, resized up (bicubic)."""
    cell = max(float(cell), 1.0)
    sh, sw = max(2, round(h / cell)), max(2, round(w / cell))
    shape = (sh, sw) if channels == 1 else (sh, sw, channels)
    small = noise(rng, shape)
    if sh == h and sw == w:
        return small
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def flatness(img: np.ndarray, threshold: float) -> np.ndarray:
    """1 in flat areas (smooth gradients included), 0 near edges and texture.

    Detail is the local deviation of luma from its 3×3 mean, taken at full resolution so that
    one-pixel hatching counts, then averaged over a neighbourhood at half resolution and compared
    with ``threshold``.
    """
    y = luma(img)
    h, w = y.shape
    detail = cv2.absdiff(y, cv2.blur(y, (3, 3), borderType=cv2.BORDER_REFLECT))
    small = cv2.resize(detail, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 2.0)
    mask = clip01(1.0 - small * np.float32(4.0 / max(threshold, 1e-6)))
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)


def midtones(x: np.ndarray) -> np.ndarray:
    """4·x·(1−x): 1 at mid-grey, 0 at pure black and white."""
    return clip01(4.0 * x * (1.0 - x))


def translate(channel: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Move one image plane by a sub-pixel offset, edges reflected."""
    m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=np.float32)
    h, w = channel.shape[:2]
    return cv2.warpAffine(channel, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def scale_count(count: int, h: int, w: int) -> int:
    """Object counts in profiles are per 512×512 area; scale them to this image."""
    return int(round(count * (h * w) / (512.0 * 512.0)))


def clip01(img: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] (two OpenCV threshold passes: several times faster than ``np.clip``)."""
    _, out = cv2.threshold(img, 1.0, 1.0, cv2.THRESH_TRUNC)
    _, out = cv2.threshold(out, 0.0, 0.0, cv2.THRESH_TOZERO)
    return out


_ALLOCATOR_TUNED = False


def keep_freed_memory() -> None:
    """Ask glibc to keep freed image buffers instead of returning them to the kernel.

    Each effect makes a few full-frame temporaries; by default glibc maps every buffer over
    128 KiB fresh from the kernel and unmaps it on free, so each temporary costs a page fault per
    4 KiB page: about half the degrader's time. Raising the mmap and trim thresholds lets the heap
    reuse them (the process keeps its peak working set, tens of MB at 1080p). A no-op where glibc
    is not the C library. Called once by the pipeline.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    mallopt(m_mmap_threshold, 64 * 1024 * 1024)
    mallopt(m_trim_threshold, 512 * 1024 * 1024)
    mallopt(m_top_pad, 64 * 1024 * 1024)
