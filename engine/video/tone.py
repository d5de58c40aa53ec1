"""Black and white in video: deciding that a source is gray, reading its gray, and writing gray back.

A source is restored in black and white when its pixel format stores gray (``gray``,
``gray16le``, ...), or when the frames sampled across it (:data:`SAMPLE_FRAMES`, spread over its
length) have neutral chroma: every chroma sample of a YUV frame, or every channel difference of an
RGB frame, within :data:`engine.inference.tone.NEUTRAL_LEVELS` 8-bit levels. Most black-and-white
film reaches us as ordinary ``yuv420p`` with neutral chroma, so the pixel format alone does not
say it. ``--color`` and ``--gray`` override the decision.

Reading: the luma plane itself, scaled from the declared range to [0, 1] in float (no 8-bit
rounding on the way in). Writing: gray where the encoder's format holds it (FFV1 ``gray`` and
``gray16le``, PNG/TIFF), elsewhere a YUV frame made here with chroma at exactly the neutral value,
so that decoding gives R = G = B (swscale's own gray → YUV leaves chroma one level off).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ArchivistError
from engine.inference.tone import NEUTRAL_LEVELS, rgb_is_neutral
from engine.video.frames import (
    PLANAR_YUV,
    RANGE_FULL,
    plane_array,
    sample_bits,
    stores_gray,
)

log = logging.getLogger(__name__)

SAMPLE_FRAMES = 5


@dataclass
class ToneDecision:
    """Whether a source is restored in black and white, and why (for the log and the stream plan)."""

    gray: bool
    reason: str
    detected: bool = False  # decided from the content (sampled frames), not from the format or an option

    def to_dict(self) -> dict:
        return {"tone": "gray" if self.gray else "color", "reason": self.reason}


def chroma_spread(frame) -> float:
    """How far from neutral a decoded frame's colour goes, in 8-bit levels (0 for a gray format).

    YUV: the largest distance of a chroma sample from the middle value. RGB (and anything else):
    the largest difference between two channels of a pixel.
    """
    fmt = frame.format
    name = fmt.name
    if stores_gray(name):
        return 0.0
    if not fmt.is_rgb and PLANAR_YUV.match(name):
        bits = sample_bits(fmt)
        dtype = np.uint8 if bits <= 8 else np.uint16
        mid = 1 << (bits - 1)
        spread = 0
        for index in sorted({c.plane for c in fmt.components[1:3]}):
            c = plane_array(frame, index, dtype).astype(np.int32)
            spread = max(spread, int(np.abs(c - mid).max(initial=0)))
        return spread / (1 << (bits - 8))
    high = sample_bits(fmt) > 8
    rgb = frame.reformat(format="rgb48le" if high else "rgb24").to_ndarray().astype(np.int32)
    spread = max(int(np.abs(rgb[..., 0] - rgb[..., 1]).max(initial=0)),
                 int(np.abs(rgb[..., 1] - rgb[..., 2]).max(initial=0)))
    return spread / (257.0 if high else 1.0)


def sample_frames(path: str | Path, stream_index: int, duration: float | None, count: int = SAMPLE_FRAMES):
    """Up to ``count`` decoded frames spread over the file: the first frame after seeking to evenly
    spaced times (keyframes, cheap to decode), or the first frames when the length is unknown."""
    import av

    from engine.video.probe import open_input

    container = open_input(path)
    frames = []
    try:
        stream = container.streams[stream_index]
        if not duration or duration <= 0:
            try:
                for frame in container.decode(stream):
                    frames.append(frame)
                    if len(frames) >= count:
                        break
            except av.error.FFmpegError:
                pass  # damaged further on: judge by the frames that decoded
            return frames
        tb = stream.time_base
        start = stream.start_time or 0
        for i in range(count):
            target = start + int(duration * i / count / tb)
            try:
                container.seek(target, stream=stream, backward=True)
                frame = next(container.decode(stream), None)
            except (av.error.FFmpegError, StopIteration):
                frame = None
            # A short file seeks to the same keyframe more than once: each frame counts once.
            if frame is not None and all(f.pts != frame.pts for f in frames):
                frames.append(frame)
    finally:
        container.close()
    return frames


def decide_video_tone(info, tone: str) -> ToneDecision:
    """The tone a video source is restored in (``tone``: ``auto``, ``color`` or ``gray``)."""
    if tone == "color":
        return ToneDecision(False, "--color")
    if tone == "gray":
        return ToneDecision(True, "--gray")
    if stores_gray(info.pix_fmt):
        return ToneDecision(True, f"the source stores gray ({info.pix_fmt})")
    try:
        frames = sample_frames(info.path, info.video_index, info.duration)
    except ArchivistError:
        frames = []
    if not frames:
        return ToneDecision(False, "no frames could be sampled")
    worst = max(chroma_spread(f) for f in frames)
    if worst <= NEUTRAL_LEVELS:
        return ToneDecision(True, f"{len(frames)} sampled frame(s) have neutral chroma (at most {worst:g} of 255 "
                                  "levels off)", detected=True)
    return ToneDecision(False, "colour source")


def decide_sequence_tone(files: list[Path], tone: str) -> ToneDecision:
    """The tone of an image-sequence input: its images sampled as a video's frames are."""
    if tone == "color":
        return ToneDecision(False, "--color")
    if tone == "gray":
        return ToneDecision(True, "--gray")
    from engine.inference.imageio import read_picture

    picks = sorted({round(i * (len(files) - 1) / max(1, SAMPLE_FRAMES - 1)) for i in range(SAMPLE_FRAMES)})
    pictures = [read_picture(files[i]) for i in picks]
    if all(p.stored_gray for p in pictures):
        return ToneDecision(True, "the images store gray")
    if all(p.stored_gray or rgb_is_neutral(p.rgb, 1.0) for p in pictures):
        return ToneDecision(True, f"{len(pictures)} sampled images have equal colour channels", detected=True)
    return ToneDecision(False, "colour source")


def gray_to_frame(gray: np.ndarray, pix_fmt: str, color_range: int):
    """Float32 gray H×W in [0, 1] as a VideoFrame in ``pix_fmt``: a gray format, or planar YUV with
    chroma exactly neutral and luma in ``color_range``."""
    import av

    gray = np.clip(gray, 0.0, 1.0)
    if stores_gray(pix_fmt):
        bits = sample_bits(av.VideoFormat(pix_fmt))
        peak = (1 << bits) - 1
        values = np.rint(gray * peak).astype(np.uint8 if bits <= 8 else np.uint16)
        return av.VideoFrame.from_ndarray(values, format=pix_fmt)
    if not PLANAR_YUV.match(pix_fmt) or pix_fmt.startswith("nv"):
        raise ArchivistError(f"cannot write gray frames as {pix_fmt}")
    fmt = av.VideoFormat(pix_fmt)
    bits = sample_bits(fmt)
    dtype = np.uint8 if bits <= 8 else np.uint16
    scale = 1 << (bits - 8)
    if color_range == RANGE_FULL:
        y = gray * np.float32((1 << bits) - 1)
    else:
        y = gray * np.float32(219 * scale) + np.float32(16 * scale)
    h, w = gray.shape
    frame = av.VideoFrame(w, h, pix_fmt)
    plane_array(frame, 0, dtype)[:] = np.rint(y).astype(dtype)
    for index in range(1, len(frame.planes)):
        is_alpha = any(c.is_alpha and c.plane == index for c in fmt.components)
        plane_array(frame, index, dtype)[:] = (1 << bits) - 1 if is_alpha else 1 << (bits - 1)
    return frame
