"""Reading and writing still images: 8- and 16-bit PNG/TIFF, gray kept gray, alpha kept aside, EXIF orientation.

Orientation is applied here, exactly once, whichever OpenCV decodes: the tag is read from the
file's bytes (JPEG APP1, PNG eXIf, WebP EXIF, TIFF and BigTIFF IFD0) and set to 1 in the copy
handed to the decoder, so a reader that honours it itself (OpenCV 5 does for TIFF) has nothing to
turn; the picture is then turned as the tag said.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ArchivistError, not_a_file

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
OUTPUT_FORMATS = ("png", "tiff")
ORIENTATION_TAG = 0x0112


@dataclass
class Picture:
    """An image ready for the network: RGB float32 in [0, 1], alpha untouched, source bit depth.

    ``stored_gray``: the file holds one channel (an ``L`` or 16-bit gray PNG/TIFF, a gray JPEG);
    ``rgb`` then has three equal channels.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    stored_gray: bool = False

    def is_gray(self, tone: str = "auto") -> bool:
        """Whether this picture is restored in black and white under ``tone`` (see :mod:`engine.inference.tone`)."""
        from engine.inference.tone import rgb_is_neutral

        if tone != "auto":
            return tone == "gray"
        return self.stored_gray or rgb_is_neutral(self.rgb, 1.0)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def take_orientation(data) -> int:
    """The EXIF orientation (1-8) of an image file's bytes, set to 1 in ``data`` (a writable buffer).

    1 when the file has none or is not a JPEG, PNG, WebP or TIFF. A PNG chunk whose data changes
    gets its CRC again, so the decoder does not drop it.
    """
    m = memoryview(data).cast("B")
    try:
        if m[:2] == b"\xff\xd8":
            return _jpeg_orientation(m)
        if m[:8] == b"\x89PNG\r\n\x1a\n":
            return _png_orientation(m)
        if m[:4] == b"RIFF" and m[8:12] == b"WEBP":
            return _webp_orientation(m)
        if m[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _tiff_orientation(m, 0)
    except (struct.error, IndexError, ValueError):
        pass  # a damaged header: the decoder says what is wrong, or the picture stays as stored
    return 1


def _tiff_orientation(m: memoryview, start: int) -> int:
    """Orientation in the first IFD of the TIFF structure at ``start`` (set to 1 there)."""
    order = "<" if m[start:start + 2] == b"II" else ">"
    (version,) = struct.unpack_from(order + "H", m, start + 2)
    if version == 42:
        (ifd,) = struct.unpack_from(order + "I", m, start + 4)
        count_fmt, entry_size, count_size = "H", 12, 2
    elif version == 43:  # BigTIFF: 8-byte offsets and counts
        (ifd,) = struct.unpack_from(order + "Q", m, start + 8)
        count_fmt, entry_size, count_size = "Q", 20, 8
    else:
        return 1
    (entries,) = struct.unpack_from(order + count_fmt, m, start + ifd)
    for i in range(min(entries, 4096)):
        entry = start + ifd + count_size + i * entry_size
        tag, kind = struct.unpack_from(order + "HH", m, entry)
        if tag != ORIENTATION_TAG:
            continue
        value_at = entry + (12 if version == 43 else 8)
        if kind == 3:  # SHORT
            (value,) = struct.unpack_from(order + "H", m, value_at)
            struct.pack_into(order + "H", m, value_at, 1)
        elif kind == 4:  # LONG, which some writers use
            (value,) = struct.unpack_from(order + "I", m, value_at)
            struct.pack_into(order + "I", m, value_at, 1)
        else:
            return 1
        return value if 1 <= value <= 8 else 1
    return 1


def _exif_payload_start(m: memoryview, start: int) -> int:
    """Where the TIFF structure of an EXIF block starts (some writers begin it with ``Exif\\0\\0``)."""
    return start + 6 if m[start:start + 6] == b"Exif\x00\x00" else start


def _jpeg_orientation(m: memoryview) -> int:
    pos = 2
    while pos + 4 <= len(m):
        if m[pos] != 0xFF:
            return 1
        marker = m[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # the picture data begins: no EXIF before it
            return 1
        (length,) = struct.unpack_from(">H", m, pos + 2)
        if marker == 0xE1 and m[pos + 4:pos + 10] == b"Exif\x00\x00":
            return _tiff_orientation(m, pos + 10)
        pos += 2 + length
    return 1


def _png_orientation(m: memoryview) -> int:
    pos = 8
    while pos + 12 <= len(m):
        length, kind = struct.unpack_from(">I4s", m, pos)
        if kind == b"IEND":
            return 1
        if kind == b"eXIf":
            value = _tiff_orientation(m, _exif_payload_start(m, pos + 8))
            crc = zlib.crc32(m[pos + 4:pos + 8 + length])
            struct.pack_into(">I", m, pos + 8 + length, crc)
            return value
        pos += 12 + length
    return 1


def _webp_orientation(m: memoryview) -> int:
    pos = 12
    while pos + 8 <= len(m):
        kind, length = struct.unpack_from("<4sI", m, pos)
        if kind == b"EXIF":
            return _tiff_orientation(m, _exif_payload_start(m, pos + 8))
        pos += 8 + length + (length & 1)
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

    # OpenCV 5 has cv2.utils.logging; 4.x (which the project also allows) only cv2.setLogLevel.
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is not None and hasattr(logging_api, "setLogLevel"):
        logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
    elif hasattr(cv2, "setLogLevel"):
        cv2.setLogLevel(0)  # LOG_LEVEL_SILENT
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
    """The pixels of an image file, upright, as OpenCV gives them (BGR/BGRA/grey; uint8, uint16 or float32).

    The EXIF orientation is applied exactly once, for every format (see the module docstring).

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
    # Read the orientation and set it to 1 in the bytes the decoder gets: applied below, once,
    # whether or not this OpenCV honours the tag itself (5.x does for TIFF, 4.x does not).
    orientation = take_orientation(data) if data.size else 1
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
    return _apply_orientation(a, orientation)


def read_picture(path: str | os.PathLike) -> Picture:
    """Read an image file upright; gray becomes three equal channels (``stored_gray``), alpha is split off,
    16-bit stays 16-bit."""
    path = Path(path)
    if not path.is_file():
        raise ArchivistError(not_a_file(path, "image file"))
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
    stored_gray = a.ndim == 2 or a.shape[2] == 1
    if stored_gray:
        rgb = np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, axis=2)
    elif a.shape[2] == 4:
        alpha = a[..., 3].copy()
        rgb = a[..., 2::-1]
    else:
        rgb = a[..., :3][..., ::-1]
    rgb = np.ascontiguousarray(rgb, dtype=np.float32) / np.float32(scale)
    return Picture(rgb=rgb, alpha=alpha, bit_depth=min(depth, 16), stored_gray=stored_gray)


def encode_picture(rgb: np.ndarray, fmt: str, bit_depth: int = 8, alpha: np.ndarray | None = None,
                   shown: str | os.PathLike = "image") -> np.ndarray:
    """The bytes of an 8- or 16-bit PNG/TIFF (``fmt`` png, tif or tiff) of float32 RGB (H×W×3) or gray
    (H×W) in [0, 1], as a numpy buffer.

    Gray is written as a one-channel file; gray with ``alpha`` as RGBA with three equal channels
    (OpenCV writes no gray-with-alpha files). ``shown`` names the file in an error.
    """
    cv2 = quiet_cv2()

    if fmt not in ("png", "tif", "tiff"):
        raise ArchivistError(f"{shown}: unsupported output format {fmt!r}: allowed are png, tiff")
    peak = 65535.0 if bit_depth > 8 else 255.0
    dtype = np.uint16 if bit_depth > 8 else np.uint8
    out = np.clip(rgb * peak + 0.5, 0, peak).astype(dtype)
    if out.ndim == 3:
        out = out[..., ::-1]
    if alpha is not None:
        if out.ndim == 2:
            out = np.repeat(out[..., None], 3, axis=2)
        h, w = out.shape[:2]
        if alpha.shape[:2] != (h, w):
            alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_CUBIC)
        if alpha.dtype != dtype:
            src_peak = 65535.0 if alpha.dtype == np.uint16 else 255.0
            alpha = np.clip(alpha.astype(np.float32) / src_peak * peak + 0.5, 0, peak).astype(dtype)
        out = np.dstack([out, alpha])
    ok, buf = cv2.imencode("." + fmt, np.ascontiguousarray(out))
    if not ok:
        raise ArchivistError(f"{shown}: could not encode the image")
    return buf


def write_picture(path: str | os.PathLike, rgb: np.ndarray, bit_depth: int = 8, alpha: np.ndarray | None = None) -> None:
    """Write float32 RGB (H×W×3) or gray (H×W) in [0, 1] as an 8- or 16-bit PNG/TIFF (chosen by suffix), atomically.

    See :func:`encode_picture`; the file follows the umask.
    """
    path = Path(path)
    buf = encode_picture(rgb, path.suffix.lower().lstrip("."), bit_depth, alpha, shown=path)
    from engine.atomic import atomic_write

    try:
        atomic_write(path, lambda tmp: buf.tofile(str(tmp)))
    except OSError as exc:
        raise ArchivistError(f"{path}: cannot write: {exc.strerror or exc}") from None
