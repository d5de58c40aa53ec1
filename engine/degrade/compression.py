"""Real codec artefacts: JPEG through OpenCV, MPEG-2 and H.264 through FFmpeg (PyAV), all in memory.

The one 8-bit step of the pipeline, and the last: a codec sees 8-bit frames. No temp files and no
subprocess: one intra frame is encoded and decoded with ``av.CodecContext``. A codec missing from
the installed libraries is an error, never a silent skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from engine.degrade.context import FrameContext
from engine.degrade.params import choice, value_range
from engine.errors import ArchivistError

_ENCODERS = {"mpeg2": "mpeg2video", "h264": "libx264"}


@dataclass(frozen=True)
class CompressionParams:
    """Drawn values of ``compression``."""

    codec: str = choice(("jpeg", "mpeg2", "h264"), ("mpeg2",), "codec of the round trip")
    jpeg_quality: int = value_range(1, 100, (30, 70), "JPEG quality (jpeg only; lower is worse)", integer=True)
    mpeg2_qscale: int = value_range(1, 31, (4, 8), "MPEG-2 quantiser scale (mpeg2 only; higher is worse)", integer=True)
    h264_qp: int = value_range(0, 51, (28, 38), "H.264 quantiser (h264 only; higher is worse)", integer=True)


def _to_u8(img: np.ndarray) -> np.ndarray:
    return cv2.addWeighted(img, 255.0, img, 0.0, 0.0, dtype=cv2.CV_8U)


def jpeg_round_trip(rgb8: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode an RGB uint8 image as JPEG (4:2:0) in memory."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ArchivistError("compression: OpenCV could not encode JPEG")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def codec_round_trip(rgb8: np.ndarray, codec: str, options: dict[str, str]) -> np.ndarray:
    """Encode one intra frame with an FFmpeg encoder (``mpeg2`` or ``h264``) and decode it, in memory."""
    import av

    name = _ENCODERS[codec]
    h, w = rgb8.shape[:2]
    # 4:2:0 wants even sizes and the encoders work in 16×16 macroblocks: pad by edge replication.
    ph, pw = (-h) % 16, (-w) % 16
    padded = np.pad(rgb8, ((0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else rgb8
    try:
        enc = av.CodecContext.create(name, "w")
    except (av.error.FFmpegError, ValueError) as exc:
        raise ArchivistError(f"compression: codec '{codec}' needs the FFmpeg encoder '{name}', which this "
                             f"PyAV build lacks ({exc}); use codec jpeg or install a full PyAV") from exc
    enc.width, enc.height = padded.shape[1], padded.shape[0]
    enc.pix_fmt = "yuv420p"
    enc.time_base = Fraction(1, 25)
    enc.framerate = Fraction(25, 1)
    enc.thread_count = 1  # bit-exact output whatever the machine
    enc.options = options
    # RGB <-> 4:2:0 through OpenCV: 20× faster than swscale's path for rgb24 here.
    frame = av.VideoFrame.from_ndarray(cv2.cvtColor(np.ascontiguousarray(padded), cv2.COLOR_RGB2YUV_I420),
                                       format="yuv420p")
    frame.pts = 0
    packets = list(enc.encode(frame)) + list(enc.encode(None))
    dec = av.CodecContext.create(enc.name if codec != "h264" else "h264", "r")
    dec.thread_count = 1
    frames = []
    for packet in packets:
        frames.extend(dec.decode(packet))
    frames.extend(dec.decode(None))
    if not frames:
        raise ArchivistError(f"compression: the {name} round trip returned no frame")
    decoded = frames[0]
    if decoded.format.name != "yuv420p":
        decoded = decoded.reformat(format="yuv420p")
    out = cv2.cvtColor(decoded.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
    return np.ascontiguousarray(out[:h, :w])


def apply_compression(img: np.ndarray, p: CompressionParams, ctx: FrameContext) -> np.ndarray:
    """Round-trip the image through a real codec: blocks, ringing and chroma loss, back in float32."""
    rgb8 = _to_u8(img)
    if p.codec == "jpeg":
        out = jpeg_round_trip(rgb8, p.jpeg_quality)
    elif p.codec == "mpeg2":
        # Pin the quantiser with qmin = qmax: mpeg2video has no "qscale" AVOption (an unknown
        # option is silently ignored and rate control picks the quantiser).
        q = str(p.mpeg2_qscale)
        out = codec_round_trip(rgb8, "mpeg2", {"qmin": q, "qmax": q, "g": "1"})
    else:
        out = codec_round_trip(rgb8, "h264", {"qp": str(p.h264_qp), "preset": "veryfast", "g": "1"})
    return out.astype(np.float32) * np.float32(1.0 / 255.0)
