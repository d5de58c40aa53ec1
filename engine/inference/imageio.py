"""Reading and writing still images: 8- and 16-bit PNG/TIFF, alpha kept aside, EXIF orientation applied."""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ArchivistError

log = logging.getLogger(__name__)

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


# OpenCV's own ceiling (CV_IO_MAX_IMAGE_PIXELS): an image that declares more is refused by us,
# before the decoder allocates anything and before its assertion can escape.
MAX_PIXELS = 1 << 30

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


def quiet_cv2():
    """Import OpenCV with its own log silenced: what it would print, Archivist says itself, once."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2


def _image_kind(data: np.ndarray) -> str | None:
    head = data[:16].tobytes()
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for sig, kind in _SIGNATURES if head.startswith(sig)), None)


def _declared_size(data: np.ndarray, kind: str | None) -> tuple[int, int] | None:
    """Width and height a PNG declares in its header (read before decoding); None for other kinds."""
    if kind == "PNG" and data.size >= 24 and data[12:16].tobytes() == b"IHDR":
        w, h = struct.unpack(">II", data[16:24].tobytes())
        return w, h
    return None


def decode_image(path: str | os.PathLike) -> np.ndarray:
    """The pixels of an image file as OpenCV gives them (BGR/BGRA/grey; uint8, uint16 or float32).

    One clear :class:`ArchivistError` for everything a file can be instead: missing, unreadable,
    not an image, truncated or corrupt, or declaring more than :data:`MAX_PIXELS` pixels (a
    decompression bomb is refused before any pixel is decoded). OpenCV prints nothing.
    """
    cv2 = quiet_cv2()
    path = Path(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except FileNotFoundError:
        raise ArchivistError(f"{path}: no such image file") from None
    except OSError as exc:
        raise ArchivistError(f"{path}: cannot read the image: {exc.strerror or exc}") from None
    kind = _image_kind(data)
    size = _declared_size(data, kind)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise ArchivistError(f"{path}: the {kind} declares {size[0]}\u00d7{size[1]} = {size[0] * size[1]:,} pixels, "
                             f"more than the {MAX_PIXELS:,} Archivist reads (a damaged file or a decompression bomb)")
    try:
        a = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as exc:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            raise ArchivistError(f"{path}: the {kind or 'image'} declares more than the {MAX_PIXELS:,} pixels "
                                 "Archivist reads (a damaged file or a decompression bomb)") from None
        raise ArchivistError(f"{path}: the {kind or 'image'} cannot be decoded (corrupt: "
                             f"{str(exc).strip().splitlines()[-1][:120]})") from None
    if a is None:
        if not data.size:
            raise ArchivistError(f"{path}: empty file, not an image")
        if kind is not None:
            raise ArchivistError(f"{path}: the {kind} image cannot be decoded (truncated or corrupt)")
        raise ArchivistError(f"{path}: not a readable image: its bytes are no image format Archivist reads "
                             f"(allowed: {', '.join(IMAGE_SUFFIXES)})")
    if kind == "JPEG" and b"\xff\xd9" not in data[-4096:].tobytes():
        log.warning("%s: the JPEG ends early (truncated?); its missing part decodes as grey", path)
    return a


def read_picture(path: str | os.PathLike) -> Picture:
    """Read an image file; grey becomes RGB, alpha is split off, 16-bit stays 16-bit."""
    path = Path(path)
    if not path.is_file():
        raise ArchivistError(f"{path}: no such image file")
    a = decode_image(path)
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
    cv2 = quiet_cv2()

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
