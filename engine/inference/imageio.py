"""Reading and writing still images: 8- and 16-bit PNG/TIFF, alpha kept aside, EXIF orientation applied."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ArchivistError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
OUTPUT_FORMATS = ("png", "tiff")


@dataclass
class Picture:
    """An image ready for the network: RGB float32 in [0, 1], alpha untouched, source bit depth."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _exif_orientation(path: Path) -> int:
    try:
        from PIL import Image

        with Image.open(path) as im:
            return int(im.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - no EXIF or not readable by Pillow: upright
        return 1


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    # EXIF orientation values 1-8: mirror and rotation to make the image upright.
    ops = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: np.swapaxes(x, 0, 1),
        6: lambda x: np.swapaxes(x, 0, 1)[:, ::-1],
        7: lambda x: np.swapaxes(x, 0, 1)[::-1, ::-1],
        8: lambda x: np.swapaxes(x, 0, 1)[::-1],
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(a)) if op else a


def read_picture(path: str | os.PathLike) -> Picture:
    """Read an image file; grey becomes RGB, alpha is split off, 16-bit stays 16-bit."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise ArchivistError(f"{path}: no such image file")
    data = np.fromfile(str(path), dtype=np.uint8)
    a = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if a is None:
        raise ArchivistError(f"{path}: not a readable image (allowed: {', '.join(IMAGE_SUFFIXES)})")
    if a.dtype == np.uint8:
        depth, scale = 8, 255.0
    elif a.dtype == np.uint16:
        depth, scale = 16, 65535.0
    elif a.dtype == np.float32:
        depth, scale = 32, 1.0
    else:
        raise ArchivistError(f"{path}: unsupported sample type {a.dtype} (8-bit, 16-bit or float images)")
    alpha = None
    if a.ndim == 2:
        rgb = np.repeat(a[..., None], 3, axis=2)
    elif a.shape[2] == 4:
        alpha = a[..., 3].copy()
        rgb = a[..., 2::-1]
    else:
        rgb = a[..., :3][..., ::-1]
    orientation = _exif_orientation(path) if path.suffix.lower() in (".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".png") else 1
    rgb = _apply_orientation(rgb, orientation)
    if alpha is not None:
        alpha = _apply_orientation(alpha, orientation)
    rgb = np.ascontiguousarray(rgb, dtype=np.float32) / np.float32(scale)
    return Picture(rgb=rgb, alpha=alpha, bit_depth=min(depth, 16))


def write_picture(path: str | os.PathLike, rgb: np.ndarray, bit_depth: int = 8, alpha: np.ndarray | None = None) -> None:
    """Write float32 RGB in [0, 1] as an 8- or 16-bit PNG/TIFF (chosen by suffix), atomically."""
    import cv2

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "tif", "tiff"):
        raise ArchivistError(f"{path}: unsupported output format {fmt!r}: allowed are png, tiff")
    peak = 65535.0 if bit_depth > 8 else 255.0
    dtype = np.uint16 if bit_depth > 8 else np.uint8
    out = np.clip(rgb * peak + 0.5, 0, peak).astype(dtype)[..., ::-1]
    if alpha is not None:
        h, w = out.shape[:2]
        if alpha.shape[:2] != (h, w):
            alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_CUBIC)
        if alpha.dtype != dtype:
            src_peak = 65535.0 if alpha.dtype == np.uint16 else 255.0
            alpha = np.clip(alpha.astype(np.float32) / src_peak * peak + 0.5, 0, peak).astype(dtype)
        out = np.dstack([out, alpha])
    ok, buf = cv2.imencode("." + fmt, np.ascontiguousarray(out))
    if not ok:
        raise ArchivistError(f"{path}: could not encode the image")
    from engine.models.files import atomic_write

    try:
        atomic_write(path, lambda tmp: buf.tofile(str(tmp)))
    except OSError as exc:
        raise ArchivistError(f"{path}: cannot write: {exc.strerror or exc}") from None
