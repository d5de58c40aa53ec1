"""What a video file holds: streams, size, timing, colour, interlacing, chapters.

``probe(path)`` opens the file with FFmpeg's libraries (PyAV), reads the headers, demuxes a few
hundred video packets to see whether the frame rate is constant, and decodes a handful of frames
to learn interlacing and rotation. Every unreadable input becomes one :class:`ArchivistError` line.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from engine.document import Conflict
from engine.errors import ArchivistError

log = logging.getLogger(__name__)

VFR_SCAN_PACKETS = 300
# A prefix of the packets in decode order misses frames that are shown before the last packet
# read but decoded after it (B-frames): H.264/HEVC reorder at most 16 frames.
REORDER_SLACK = 16
INTERLACE_SCAN_FRAMES = 6

FIELD_ORDERS = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}


@dataclass
class SideStream:
    """An audio, subtitle, attachment or data stream of the source (the stream plan decides its fate)."""

    index: int
    kind: str
    codec: str  # FFmpeg's codec name (mp3, dts, subrip), not a decoder's (mp3float, dca, srt)
    language: str | None = None
    title: str | None = None


@dataclass
class VideoInfo:
    """The facts about a source that decoding, encoding and resume depend on."""

    path: str
    container: str
    video_index: int
    codec: str
    width: int
    height: int
    sample_aspect_ratio: Fraction | None
    time_base: Fraction
    average_rate: Fraction | None
    base_rate: Fraction | None
    frame_count: int | None
    frame_count_estimated: bool
    duration: float | None
    start_time: float
    variable_frame_rate: bool
    pix_fmt: str
    bit_depth: int
    color_range: int
    color_primaries: int
    color_trc: int
    colorspace: int
    interlaced: bool
    field_order: str
    rotation: int
    streams: list[SideStream] = field(default_factory=list)
    chapters: list[dict] = field(default_factory=list)
    # The presentation time of the last frame, in seconds, where the end of the file could be read.
    last_frame_time: float | None = None

    @property
    def high_bit_depth(self) -> bool:
        return self.bit_depth > 8

    @property
    def rate(self) -> Fraction:
        """The nominal frame rate (average, else the stream's base rate, else 24)."""
        return self.average_rate or self.base_rate or Fraction(24)

    def to_dict(self) -> dict:
        """A JSON-able dictionary (fractions as strings)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Fraction):
                data[key] = str(value)
        for chapter in data["chapters"]:
            chapter["time_base"] = str(chapter.get("time_base"))
        return data


def open_input(path: str | Path):
    """Open ``path`` for reading with one clear error for missing, empty and non-media files."""
    import av

    path = Path(path)
    if not path.exists():
        raise ArchivistError(f"{path}: no such file")
    if path.is_dir():
        raise Conflict(("fps",), f"{path}: is a folder, not a video file (for an image sequence give {{0}})")
    if path.stat().st_size == 0:
        raise ArchivistError(f"{path}: file is empty (0 bytes)")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise ArchivistError(f"{path}: not a readable video file ({_ffmpeg_reason(exc)})") from None


def _ffmpeg_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '")[0].strip()


def pick_video_stream(container, path: str | Path):
    """The first video stream that is not a cover picture; an error when there is none."""
    for stream in container.streams.video:
        if stream.disposition & 0x400:  # AV_DISPOSITION_ATTACHED_PIC: a cover image
            continue
        return stream
    kinds = sorted({s.type for s in container.streams}) or ["none"]
    raise ArchivistError(f"{path}: has no video stream (streams found: {', '.join(kinds)})")


def bit_depth_of(pix_fmt: str) -> int:
    """Bits per component of an FFmpeg pixel format (8 for anything unknown)."""
    import av

    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.error.FFmpegError):
        return 8
    depths = [c.bits for c in fmt.components]
    return max(depths) if depths else 8


def probe(path: str | Path) -> VideoInfo:
    """Read the headers of a video file and a little of its content; see the module docstring."""
    import av

    container = open_input(path)
    try:
        stream = pick_video_stream(container, path)
        cc = stream.codec_context
        if not cc.width or not cc.height:
            raise ArchivistError(f"{path}: video stream has no frame size (damaged or truncated file)")
        last_pts, counted_from_zero = _check_end(container, path, stream)
        vfr, scanned, first_pts = _scan_timestamps(container, stream)
        interlaced, rotation = _scan_frames(container, stream, path)
        frames = stream.frames or 0
        duration = None
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
            if counted_from_zero and container.start_time:
                duration -= container.start_time / av.time_base
        estimated = False
        if frames <= 0:
            frames, estimated = _count_frames(stream, scanned, first_pts, last_pts, vfr, duration)
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        side = []
        for s in container.streams:
            if s.index == stream.index:
                continue
            side.append(SideStream(s.index, s.type, codec_name(s), s.metadata.get("language"),
                                   s.metadata.get("title")))
        field_order = FIELD_ORDERS.get(int(cc.field_order or 0), "unknown")
        info = VideoInfo(
            path=str(path),
            container=container.format.name,
            video_index=stream.index,
            codec=cc.name,
            width=cc.width,
            height=cc.height,
            sample_aspect_ratio=Fraction(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else None,
            time_base=Fraction(stream.time_base),
            average_rate=Fraction(stream.average_rate) if stream.average_rate else None,
            base_rate=Fraction(stream.base_rate) if stream.base_rate else None,
            frame_count=frames or None,
            frame_count_estimated=estimated,
            duration=duration,
            start_time=start,
            variable_frame_rate=vfr,
            pix_fmt=cc.pix_fmt or "unknown",
            bit_depth=bit_depth_of(cc.pix_fmt) if cc.pix_fmt else 8,
            color_range=int(cc.color_range or 0),
            color_primaries=_int_or(cc.color_primaries, 2),
            color_trc=_int_or(cc.color_trc, 2),
            colorspace=_int_or(cc.colorspace, 2),
            interlaced=interlaced or field_order in ("tt", "bb", "tb", "bt"),
            field_order=field_order,
            rotation=rotation,
            streams=side,
            chapters=list(container.chapters()),
            last_frame_time=float(last_pts * stream.time_base) if last_pts is not None and stream.time_base else None,
        )
    finally:
        container.close()
    log.info("probed %s: %dx%d %s %s, %s frames", path, info.width, info.height, info.codec, info.pix_fmt,
             info.frame_count)
    return info


def codec_name(stream) -> str:
    """FFmpeg's name of a stream's codec (``mp3``, ``dts``, ``subrip``), whichever decoder reads it."""
    cc = stream.codec_context
    if cc is None:
        return "unknown"
    try:
        return cc.codec.canonical_name
    except Exception:  # noqa: BLE001 - a codec FFmpeg cannot decode still has a context name
        return cc.name or "unknown"


def _count_frames(stream, scanned: int | None, first_pts: int | None, last_pts: int | None, vfr: bool,
                  duration: float | None) -> tuple[int, bool]:
    """(frame count, estimated?) for a container that does not store the count (Matroska does not).

    All packets seen: their number. Constant rate: the span from the first to the last frame's
    timestamp in frames, plus one (the container's duration also holds the last frame's own
    duration, or a longer audio track, so it counts one too many). Otherwise duration × rate.
    """
    if scanned is not None:
        return scanned, False
    rate = stream.average_rate or stream.base_rate
    if rate and first_pts is not None and last_pts is not None and last_pts >= first_pts:
        frames = int(round(float((last_pts - first_pts) * stream.time_base * rate))) + 1
        return frames, vfr
    if duration and rate:
        return int(round(duration * float(rate))), True
    return 0, True


def _check_end(container, path, video) -> tuple[int | None, bool]:
    """A file whose packets stop well before its declared duration is truncated: seek near the end and look.

    All streams count (audio may legitimately run past the video), so only a real cut is caught.
    Returns the largest presentation timestamp of the video stream seen there (None if none), and
    whether the container's duration counts from time 0 rather than from its first timestamp.
    """
    import av

    if not container.duration:
        return None, False
    start = (container.start_time or 0) / av.time_base
    end = start + container.duration / av.time_base
    last = None
    last_video = None
    try:
        container.seek(int(max(start, end - 2.0) * av.time_base), backward=True)
        for packet in container.demux():
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                continue
            if packet.stream.index == video.index and packet.pts is not None:
                last_video = packet.pts if last_video is None else max(last_video, packet.pts)
            t = float((stamp + (packet.duration or 0)) * packet.time_base)
            last = t if last is None else max(last, t)
    except av.error.FFmpegError:
        pass
    try:
        container.seek(0)
    except av.error.FFmpegError:
        pass
    tolerance = max(0.5, 0.02 * (end - start))
    counted_from_zero = False
    if last is not None and last < end - tolerance and start > 0 and abs(last - (end - start)) <= tolerance:
        # The container's duration runs from time 0, not from its first timestamp (Matroska's does: a
        # capture whose first frame is at 10 s and last at 12 s says 12 s). Its data ends where it says.
        counted_from_zero = True
    elif last is not None and last < end - tolerance:
        raise ArchivistError(f"{path}: truncated or damaged: its data stops at {last:.2f} s of the declared "
                             f"{end:.2f} s")
    return last_video, counted_from_zero


def _int_or(value, default: int) -> int:
    return default if value is None else int(value)


def _scan_timestamps(container, stream) -> tuple[bool, int | None, int | None]:
    """Demux up to VFR_SCAN_PACKETS video packets: is the frame spacing constant?

    Returns (variable rate?, the packet count if all were seen, the first presentation timestamp).
    """
    import av

    stamps = []
    complete = True
    try:
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            stamps.append(packet.pts)
            if len(stamps) >= VFR_SCAN_PACKETS:
                complete = False
                break
    except av.error.FFmpegError:
        pass
    if stamps:
        try:
            container.seek(0, stream=stream)
        except av.error.FFmpegError:
            pass
    count = len(stamps)
    stamps.sort()
    first = stamps[0] if stamps else None
    if not complete:
        # The frames shown just before the last packet read may not have been read yet: the
        # latest timestamps leave gaps that are not in the file (a constant-rate film looked variable).
        stamps = stamps[:-REORDER_SLACK]
    deltas = {b - a for a, b in zip(stamps, stamps[1:])}
    # Millisecond container time bases round a constant 1/24 s to 41 or 42 ticks: allow one tick.
    vfr = bool(deltas) and (max(deltas) - min(deltas) > 1)
    return vfr, (count if complete and count else None), first


def _scan_frames(container, stream, path) -> tuple[bool, int]:
    """Decode a few frames: interlacing flags and display rotation."""
    import av

    interlaced = False
    rotation = 0
    count = 0
    try:
        for frame in container.decode(stream):
            interlaced = interlaced or bool(frame.interlaced_frame)
            rotation = int(frame.rotation or 0)
            count += 1
            if count >= INTERLACE_SCAN_FRAMES:
                break
    except av.error.FFmpegError as exc:
        if count == 0:
            raise ArchivistError(f"{path}: cannot decode video ({_ffmpeg_reason(exc)}): damaged or truncated") from None
    if count == 0:
        raise ArchivistError(f"{path}: video stream holds no decodable frames (damaged or truncated file)")
    return interlaced, rotation
