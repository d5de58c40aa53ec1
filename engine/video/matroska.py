"""The display aspect ratio of a Matroska video track, written into a finished file's header.

FFmpeg's Matroska muxer writes the display size (``DisplayWidth``/``DisplayHeight`` with
``DisplayUnit`` 3, a display aspect ratio) only from the stream-level sample aspect ratio
(``AVStream.sample_aspect_ratio``), which PyAV cannot set: the codec context's ratio, which PyAV
does set, reaches only codecs that carry it in their own bitstream (H.264, HEVC) and containers
that store the codec's (MP4, MOV). An FFV1 or ProRes track in Matroska lost it.

So the finished file is mended in place. The muxer leaves an EBML ``Void`` element inside each
track entry (room for block-addition mappings it may learn of later); the ``Video`` element grows
into that room by the three display elements, the bytes between move up, and the ``Tracks``
checksum (CRC-32) is computed again. Every other byte keeps its place, so clusters, cues and the
seek head stay valid. When the header has no room, nothing is touched and the caller says so.
"""

from __future__ import annotations

import logging
import struct
import zlib
from fractions import Fraction
from pathlib import Path

log = logging.getLogger(__name__)

ID_SEGMENT, ID_TRACKS, ID_CLUSTER = 0x18538067, 0x1654AE6B, 0x1F43B675
ID_TRACK_ENTRY, ID_TRACK_TYPE, ID_VIDEO = 0xAE, 0x83, 0xE0
ID_DISPLAY_WIDTH, ID_DISPLAY_HEIGHT, ID_DISPLAY_UNIT = 0x54B0, 0x54BA, 0x54B2
ID_PIXEL_WIDTH, ID_PIXEL_HEIGHT = 0xB0, 0xBA
ID_VOID, ID_CRC32 = 0xEC, 0xBF
DISPLAY_UNIT_DAR = 3
HEADER_LIMIT = 1 << 22  # the track header sits before the first cluster, well within this


class _Element:
    """One EBML element: where its ID starts, where its payload starts and ends."""

    def __init__(self, ident: int, start: int, data: int, size: int | None):
        self.id, self.start, self.data, self.size = ident, start, data, size

    @property
    def end(self) -> int:
        return self.data + (self.size or 0)


def _read_id(buf: bytes, pos: int) -> tuple[int, int]:
    first = buf[pos]
    length = 1
    while length <= 4 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 4:
        raise ValueError("bad EBML ID")
    return int.from_bytes(buf[pos:pos + length], "big"), length


def _read_size(buf: bytes, pos: int) -> tuple[int | None, int]:
    first = buf[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise ValueError("bad EBML size")
    value = first & (0xFF >> length)
    for b in buf[pos + 1:pos + length]:
        value = (value << 8) | b
    unknown = value == (1 << (7 * length)) - 1
    return (None if unknown else value), length


def _children(buf: bytes, start: int, end: int):
    pos = start
    while pos < end:
        ident, id_len = _read_id(buf, pos)
        size, size_len = _read_size(buf, pos + id_len)
        element = _Element(ident, pos, pos + id_len + size_len, size)
        yield element
        if size is None:
            return
        pos = element.end


def _size_bytes(value: int, length: int = 0) -> bytes:
    """An EBML size, in ``length`` bytes (the fewest when 0)."""
    need = 1
    while value >= (1 << (7 * need)) - 1:
        need += 1
    length = max(length, need)
    return ((1 << (7 * length)) | value).to_bytes(length, "big")


def _uint(ident: int, value: int, extra: int = 0) -> bytes:
    """An unsigned-integer element; ``extra`` leading zero bytes are allowed by EBML and fill room exactly."""
    body = value.to_bytes(max(1, (value.bit_length() + 7) // 8) + extra, "big")
    return ident.to_bytes((ident.bit_length() + 7) // 8, "big") + _size_bytes(len(body)) + body


def _void(length: int) -> bytes:
    """A Void element exactly ``length`` bytes long (at least 2)."""
    if length - 2 < 127:
        return bytes([ID_VOID]) + _size_bytes(length - 2, 1) + bytes(length - 2)
    return bytes([ID_VOID]) + _size_bytes(length - 9, 8) + bytes(length - 9)


def display_aspect(width: int, height: int, sar: Fraction) -> Fraction:
    """The display aspect ratio of ``width``×``height`` pixels of sample aspect ratio ``sar``."""
    return Fraction(width * sar.numerator, height * sar.denominator)


def set_display_aspect(path: str | Path, sar: Fraction) -> bool:
    """Give the first video track of the Matroska file ``path`` the display size of ``sar``, in place.

    Returns False (the file untouched) when the header cannot take it: no video track, no room
    left by the muxer, a checksum that does not match, a header that is not as expected.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        buf = fh.read(HEADER_LIMIT)
    try:
        patch = _plan_patch(buf, Fraction(sar))
    except (ValueError, IndexError, struct.error):
        log.debug("%s: unexpected Matroska header", path, exc_info=True)
        return False
    if patch is None:
        return False
    with open(path, "r+b") as fh:
        for offset, data in patch:
            fh.seek(offset)
            fh.write(data)
    return True


def _plan_patch(buf: bytes, sar: Fraction) -> list[tuple[int, bytes]] | None:
    """The (offset, bytes) writes that set the display size, or None when there is no room."""
    top = list(_children(buf, 0, len(buf)))
    segment = next((e for e in top if e.id == ID_SEGMENT), None)
    if segment is None:
        return None
    segment_end = min(len(buf), segment.end if segment.size is not None else len(buf))
    tracks = None
    for element in _children(buf, segment.data, segment_end):
        if element.id == ID_CLUSTER:
            break
        if element.id == ID_TRACKS:
            tracks = element
            break
    if tracks is None or tracks.size is None or tracks.end > len(buf):
        return None
    children = list(_children(buf, tracks.data, tracks.end))
    crc = children[0] if children and children[0].id == ID_CRC32 else None
    if crc is not None and struct.unpack_from("<I", buf, crc.data)[0] != zlib.crc32(buf[crc.end:tracks.end]):
        return None  # not the file we think it is: leave it alone
    entry = next((e for e in children if e.id == ID_TRACK_ENTRY and _track_type(buf, e) == 1), None)
    if entry is None or entry.size is None:
        return None
    parts = list(_children(buf, entry.data, entry.end))
    video = next((e for e in parts if e.id == ID_VIDEO), None)
    void = next((e for e in parts if video is not None and e.id == ID_VOID and e.start >= video.end), None)
    if video is None or void is None:
        return None
    pixels = {e.id: int.from_bytes(buf[e.data:e.end], "big") for e in _children(buf, video.data, video.end)
              if e.id in (ID_PIXEL_WIDTH, ID_PIXEL_HEIGHT)}
    if len(pixels) != 2:
        return None
    dar = display_aspect(pixels[ID_PIXEL_WIDTH], pixels[ID_PIXEL_HEIGHT], sar)
    kept = b"".join(buf[e.start:e.end] for e in _children(buf, video.data, video.end)
                    if e.id not in (ID_DISPLAY_WIDTH, ID_DISPLAY_HEIGHT, ID_DISPLAY_UNIT))
    room = void.end - void.start
    new_video = None
    for extra in range(3):  # leading zeros where the room left over would be a single byte
        payload = (kept + _uint(ID_DISPLAY_WIDTH, dar.numerator, extra)
                   + _uint(ID_DISPLAY_HEIGHT, dar.denominator) + _uint(ID_DISPLAY_UNIT, DISPLAY_UNIT_DAR))
        candidate = bytes([ID_VIDEO]) + _size_bytes(len(payload)) + payload
        left = room - (len(candidate) - (video.end - video.start))
        if left == 0 or left >= 2:
            new_video = candidate
            break
    if new_video is None or left < 0:
        return None
    region = new_video + buf[video.end:void.start] + (_void(left) if left else b"")
    assert len(region) == void.end - video.start
    patched = bytearray(buf[:tracks.end])
    patched[video.start:void.end] = region
    writes = [(video.start, bytes(region))]
    if crc is not None:
        value = struct.pack("<I", zlib.crc32(bytes(patched[crc.end:tracks.end])))
        writes.append((crc.data, value))
    return writes


def _track_type(buf: bytes, entry: _Element) -> int | None:
    for e in _children(buf, entry.data, entry.end):
        if e.id == ID_TRACK_TYPE:
            return int.from_bytes(buf[e.data:e.end], "big")
    return None
