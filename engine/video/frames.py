"""Frames in and out: decoding to RGB with the source's own matrix and range, and back.

A source frame reaches the model as HxWx3 float32 RGB in [0, 1]. YUV is converted with the matrix
the file declares (BT.709, BT.601, BT.2020, SMPTE 240M), or, when it declares none, BT.709 for HD
(width ≥ 1280 or height ≥ 720) and BT.601 for SD, as players do; the range is the declared one,
else limited (full for the ``yuvj`` formats). Sources above 8 bits go through 16-bit RGB (rgb48).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.errors import ArchivistError
from engine.video.probe import VideoInfo, open_input, pick_video_stream
from engine.video.timing import FrameTimeline

log = logging.getLogger(__name__)

# AVColorSpace values and the matrices swscale knows (its enum: 1 BT.709, 4 FCC, 5 BT.601, 7 240M, 9 BT.2020).
CS_RGB, CS_BT709, CS_UNSPECIFIED = 0, 1, 2
_SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
RANGE_LIMITED, RANGE_FULL = 1, 2
# Planar YUV formats whose luma sits in plane 0, low-bit aligned, little-endian: read directly.
PLANAR_YUV = re.compile(r"^(yuvj?a?\d{3}p(\d+le)?|nv12|nv21|nv16|nv24|nv42)$")

MATRIX_NAMES = {0: "rgb", 1: "bt709", 2: "unspecified", 4: "fcc", 5: "bt470bg", 6: "smpte170m",
                7: "smpte240m", 9: "bt2020nc", 10: "bt2020c"}


@dataclass
class SourceFrame:
    """One decoded frame: its position, presentation timestamp and RGB pixels."""

    index: int
    pts: int
    time_base: Fraction
    rgb: np.ndarray  # HxWx3 float32 in [0, 1]
    duration: int = 0  # in time_base; 0 when the source does not say


def default_matrix(width: int, height: int) -> int:
    """The matrix players assume when a file declares none: BT.709 for HD, BT.601 (smpte170m) for SD."""
    return CS_BT709 if (width >= 1280 or height >= 720) else 6


def source_matrix(colorspace: int, width: int, height: int) -> int:
    """The AVColorSpace to convert with: the declared one, else :func:`default_matrix`."""
    if colorspace in _SWS_MATRIX:
        return colorspace
    return default_matrix(width, height)


def source_range(color_range: int, pix_fmt: str) -> int:
    """The declared range, else limited (full for the JPEG-range ``yuvj`` formats)."""
    if color_range in (RANGE_LIMITED, RANGE_FULL):
        return color_range
    return RANGE_FULL if pix_fmt.startswith("yuvj") else RANGE_LIMITED


def frame_to_rgb(frame, high_bit_depth: bool) -> np.ndarray:
    """A decoded frame as an HxWx3 uint8 (or uint16 for >8-bit sources) RGB array."""
    fmt = "rgb48le" if high_bit_depth else "rgb24"
    pix = frame.format.name
    if frame.format.is_rgb or pix.startswith("gray"):
        return frame.reformat(format=fmt).to_ndarray()
    matrix = _SWS_MATRIX[source_matrix(int(frame.colorspace or 2), frame.width, frame.height)]
    rng = source_range(int(frame.color_range or 0), pix)
    out = frame.reformat(format=fmt, src_colorspace=matrix, dst_colorspace=matrix,
                         src_color_range=rng, dst_color_range=RANGE_FULL)
    return out.to_ndarray()


def to_float(rgb: np.ndarray) -> np.ndarray:
    """uint8/uint16 RGB to float32 in [0, 1]."""
    out = rgb.astype(np.float32)
    out *= np.float32(1 / 65535.0 if rgb.dtype == np.uint16 else 1 / 255.0)
    return out


def from_float(rgb: np.ndarray, high_bit_depth: bool) -> np.ndarray:
    """float32 RGB in [0, 1] to uint16 (high bit depth) or uint8, rounded."""
    if not high_bit_depth:
        import cv2

        # One saturating, rounding pass (cv2 is several times faster than numpy here); the max()
        # keeps negative values at 0, since convertScaleAbs takes the absolute value.
        return cv2.convertScaleAbs(cv2.max(np.ascontiguousarray(rgb, dtype=np.float32), 0.0), alpha=255.0)
    x = rgb * np.float32(65535.0)
    x += np.float32(0.5)
    np.clip(x, 0, 65535.0, out=x)
    return x.astype(np.uint16)


def rgb_to_frame(rgb: np.ndarray, pix_fmt: str, matrix: int, color_range: int):
    """An RGB array (uint8 or uint16) as a VideoFrame in ``pix_fmt``, YUV made with ``matrix``/``color_range``."""
    import av

    src_fmt = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=src_fmt)
    if av.VideoFormat(pix_fmt).is_rgb:
        return frame.reformat(format=pix_fmt) if pix_fmt != src_fmt else frame
    sws = _SWS_MATRIX.get(matrix, 1)
    out = frame.reformat(format=pix_fmt, src_colorspace=sws, dst_colorspace=sws,
                         src_color_range=RANGE_FULL, dst_color_range=color_range)
    return out


def _seek(container, stream, target: int):
    """Decoded frames from a keyframe at or before ``target`` (a pts in the stream's time base).

    A seek may land after the target: MPEG-TS is searched by bytes and timestamps, and FFmpeg can
    come out a second or more late. The frames in between would be lost without a word (a trial range
    a second short, a resumed segment with a gap), so when the first frame comes after the target,
    the seek goes back further (1, 4, 16... seconds before it) until a frame at or before the target
    comes first (or any frame at all, where it landed past the end), and at worst decodes from the start.
    """
    import itertools

    import av

    tb = Fraction(stream.time_base)
    back = 0
    while True:
        aim = target - int(back / tb)
        try:
            if aim <= 0 and back:
                container.seek(0, stream=stream)  # (the stream's own start: seeking to 0 is never late)
            else:
                container.seek(max(aim, 0), stream=stream, backward=True)
        except av.error.FFmpegError:
            container.seek(0, stream=stream)
            aim = 0
        frames = container.decode(stream)
        first = next(frames, None)
        if first is None and aim <= 0:
            return iter(())
        stamp = None if first is None else first.pts if first.pts is not None else first.dts
        if first is not None and (stamp is None or stamp <= target or aim <= 0):
            return itertools.chain([first], frames)
        log.debug("seek to %d landed at %s: seeking %d s earlier", target, stamp if first else "the end", back or 1)
        back = 1 if not back else back * 4


class VideoSource:
    """Decoded frames of a video file in presentation order, as :class:`SourceFrame`.

    ``start``/``duration`` (seconds) restrict to a trial range; ``resume_after_pts`` continues after
    the last frame of a finished segment (seeking to the keyframe before it and skipping up to it);
    ``first_index`` numbers the first frame yielded. ``video_filter`` is an FFmpeg filter chain
    (``bwdif=mode=send_frame``) run in a filter graph after decoding.

    Damaged timestamps are mended by :class:`engine.video.timing.FrameTimeline` (a frame whose
    timestamp does not advance is dropped, a missing one is filled), with one warning that
    counts them at the end (``self.timeline`` keeps the counts).

    ``gray``: each frame is its gray (:func:`frame_to_gray`) in three equal channels.
    """

    def __init__(self, info: VideoInfo, start: float = 0.0, duration: float | None = None,
                 resume_after_pts: int | None = None, first_index: int = 0, video_filter: str | None = None,
                 threads: int = 0, gray: bool = False):
        self.info = info
        self.start = start
        self.duration = duration
        self.resume_after_pts = resume_after_pts
        self.first_index = first_index
        self.video_filter = video_filter
        self.threads = threads
        self.gray = gray
        self.high_bit_depth = info.high_bit_depth
        self.time_base = info.time_base
        self.decoded_until: float | None = None
        self.timeline: FrameTimeline | None = None

    def __iter__(self) -> Iterator[SourceFrame]:
        import av

        path = self.info.path
        container = open_input(path)
        try:
            stream = pick_video_stream(container, path)
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = self.threads
            tb = Fraction(stream.time_base)
            seek_pts = None
            if self.resume_after_pts is not None and not self.video_filter:
                seek_pts = self.resume_after_pts
            elif self.start > 0:
                seek_pts = int(self.start / tb)
            frames = _seek(container, stream, seek_pts) if seek_pts is not None else container.decode(stream)
            index = self.first_index
            end = self.start + self.duration if self.duration is not None else None
            if self.video_filter:
                frames = _filtered(frames, stream, self.video_filter)
            timeline = None
            try:
                for frame in frames:
                    ftb = Fraction(frame.time_base) if frame.time_base else tb
                    if timeline is None:
                        rate = self.info.rate * (Fraction(4, 5) if self.video_filter and "decimate" in self.video_filter
                                                 else 1)
                        timeline = self.timeline = FrameTimeline(int(round(1 / (rate * ftb))))
                    # A frame without a pts but with its packet's dts takes the dts (FFmpeg's best guess).
                    pts = timeline.accept(frame.pts if frame.pts is not None else frame.dts)
                    if pts is None:
                        continue
                    t = float(pts * ftb)
                    self.decoded_until = t
                    if t < self.start - 1e-6:
                        continue
                    if end is not None and t >= end - 1e-6:
                        break
                    if self.resume_after_pts is not None and pts <= self.resume_after_pts:
                        continue
                    rgb = self._pixels(frame)
                    self.time_base = ftb
                    yield SourceFrame(index, int(pts), ftb, rgb, int(frame.duration or 0))
                    index += 1
            except av.error.FFmpegError as exc:
                raise ArchivistError(f"{path}: decoding failed after frame {index} ({exc}): damaged or truncated file") from None
        finally:
            container.close()
            if self.timeline is not None and self.timeline.mended:
                log.warning("%s: damaged video timestamps: %s", path, self.timeline.describe())


    def _pixels(self, frame) -> np.ndarray:
        return frame_pixels(frame, self.high_bit_depth, self.gray)


def stores_gray(pix_fmt: str) -> bool:
    """Whether an FFmpeg pixel format holds gray only (``gray``, ``gray10le``, ``ya8``, ...)."""
    return pix_fmt.startswith(("gray", "ya"))


def sample_bits(fmt) -> int:
    """The bits of a pixel format's widest component (8 for 8-bit formats, 10 for ``yuv420p10le``)."""
    return max((c.bits for c in fmt.components), default=8)


def plane_array(frame, index: int, dtype) -> np.ndarray:
    """Plane ``index`` of a frame as an array (height × width samples), without its row padding."""
    plane = frame.planes[index]
    item = np.dtype(dtype).itemsize
    rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // item)
    return rows[:, : plane.width * (2 if frame.format.name.startswith("nv") and index == 1 else 1)]


def frame_to_gray(frame, color_range: int) -> np.ndarray:
    """A decoded frame's gray as float32 H×W in [0, 1].

    Planar YUV: the luma plane, from ``color_range`` (limited: 16-235 scaled to the bit depth) to
    [0, 1], in float. Gray formats: the plane over its peak. Anything else: luma of its RGB.
    """
    fmt = frame.format
    name = fmt.name
    bits = sample_bits(fmt)
    dtype = np.uint8 if bits <= 8 else np.uint16
    if name in ("gray", "gray8") or (name.startswith("gray") and name.endswith("le") and "f" not in name):
        y = plane_array(frame, 0, dtype).astype(np.float32)
        return y * np.float32(1.0 / ((1 << bits) - 1))
    if not fmt.is_rgb and PLANAR_YUV.match(name):
        y = plane_array(frame, 0, dtype).astype(np.float32)
        scale = 1 << (bits - 8)
        if color_range == RANGE_FULL:
            y *= np.float32(1.0 / ((1 << bits) - 1))
        else:
            y -= np.float32(16 * scale)
            y *= np.float32(1.0 / (219 * scale))
        return np.clip(y, 0.0, 1.0, out=y)
    if stores_gray(name):
        g = frame.reformat(format="gray16le").to_ndarray().astype(np.float32)
        return g * np.float32(1.0 / 65535)
    from engine.inference.tone import luma

    return luma(to_float(frame_to_rgb(frame, bits > 8)))


def frame_pixels(frame, high_bit_depth: bool, gray: bool) -> np.ndarray:
    """A decoded frame as the model's HxWx3 float32 RGB; ``gray``: its gray in three equal channels."""
    if not gray:
        return to_float(frame_to_rgb(frame, high_bit_depth))
    from engine.inference.tone import replicate

    return replicate(frame_to_gray(frame, source_range(int(frame.color_range or 0), frame.format.name)))


def _filtered(frames, stream, spec: str):
    """Run decoded frames through an FFmpeg filter chain (``bwdif=...``, ``fieldmatch,decimate``)."""
    import av

    graph = av.filter.Graph()
    cc = stream.codec_context
    rate = stream.average_rate or stream.base_rate or Fraction(24)
    sar = cc.sample_aspect_ratio or Fraction(1)
    # decimate needs the frame rate on its input link, which a buffer made from the stream lacks.
    src = graph.add("buffer", f"video_size={cc.width}x{cc.height}:pix_fmt={cc.pix_fmt}:"
                              f"time_base={stream.time_base}:frame_rate={rate}:pixel_aspect={sar}")
    last = src
    for part in spec.split(","):
        name, _, args = part.partition("=")
        node = graph.add(name.strip(), args or None)
        last.link_to(node)
        last = node
    sink = graph.add("buffersink")
    last.link_to(sink)
    graph.configure()

    def drain():
        while True:
            try:
                yield graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return

    for frame in frames:
        graph.push(frame)
        yield from drain()
    graph.push(None)
    yield from drain()


class ImageSequenceSource:
    """Frames from a folder of images (sorted by name) or a ``%06d.png`` pattern, at ``fps``."""

    def __init__(self, files: list[Path], fps: Fraction, first_index: int = 0, gray: bool = False):
        from engine.inference.imageio import read_picture

        if not files:
            raise ArchivistError("image sequence is empty")
        self.files = files
        self.fps = fps
        self.first_index = first_index
        self.gray = gray
        self.time_base = 1 / fps
        first = read_picture(files[0])
        self.high_bit_depth = first.bit_depth > 8
        self.height, self.width = first.rgb.shape[:2]

    def __iter__(self) -> Iterator[SourceFrame]:
        from engine.inference.imageio import read_picture

        for index in range(self.first_index, len(self.files)):
            pic = read_picture(self.files[index])
            if pic.rgb.shape[:2] != (self.height, self.width):
                raise ArchivistError(f"{self.files[index]}: size {pic.rgb.shape[1]}x{pic.rgb.shape[0]} differs "
                                     f"from the first image's {self.width}x{self.height}")
            rgb = pic.rgb
            if self.gray and not pic.stored_gray:
                from engine.inference.tone import luma, replicate

                rgb = replicate(luma(rgb))
            yield SourceFrame(index, index, self.time_base, rgb)


def list_image_sequence(path: str | Path) -> list[Path]:
    """The images of a folder (sorted by name) or of a printf pattern such as ``frames/%06d.png``."""
    import re

    from engine.inference.imageio import is_image

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and is_image(p))
        if not files:
            raise ArchivistError(f"{path}: folder holds no images")
        return files
    match = re.search(r"%0?(\d*)d", path.name)
    if not match:
        raise ArchivistError(f"{path}: not a folder or a %0Nd pattern")
    regex = re.compile("^" + re.escape(path.name[:match.start()]) + r"(\d+)" + re.escape(path.name[match.end():]) + "$")
    folder = path.parent
    if not folder.is_dir():
        raise ArchivistError(f"{folder}: no such folder")
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := regex.match(p.name)))
    if not found:
        raise ArchivistError(f"{path}: no files match the pattern")
    return [p for _, p in found]
