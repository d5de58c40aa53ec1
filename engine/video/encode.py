"""Encoders: which FFmpeg encoder, pixel format and options each ``--codec`` means, and the writers.

A video is written as segment files (NUT containers, which keep any time base exactly) that
:mod:`engine.video.assemble` later joins by stream copy; an image sequence is written frame by
frame. The encoder's time base is the source's, so every frame keeps its exact timestamp.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.document import Conflict, InvalidValue
from engine.errors import ArchivistError
from engine.video.codecs import CODECS, CRF_CODECS, CRF_RANGE, IMAGE_CODECS, PRESETS, VIDEO_CODECS
from engine.video.frames import CS_RGB, CS_UNSPECIFIED, RANGE_FULL, from_float, rgb_to_frame

log = logging.getLogger(__name__)


@dataclass
class EncoderSettings:
    """The user's encoding choice: codec, quality, speed, extra encoder options."""

    codec: str = "ffv1"
    crf: float | None = None
    preset: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        # Refusals name the keys (codec, crf, preset) as VideoOptions and a job's spec do; the
        # command line shows its flags.
        if self.codec not in CODECS:
            raise InvalidValue("codec", self.codec, f"one of {', '.join(CODECS)}")
        for key in ("crf", "preset"):
            if getattr(self, key) is not None and self.codec not in CRF_CODECS:
                # The codec may come from the output's name, not from a flag: said as the codec in
                # use, then how to choose another.
                raise Conflict((key, "codec"), f"{{0}} applies to {' and '.join(CRF_CODECS)}; this output is "
                               f"encoded with {self.codec} (choose {{1}} {' or '.join(CRF_CODECS)})")
        if self.options and self.codec in IMAGE_CODECS:  # image files are written without an FFmpeg encoder
            raise Conflict(("encoder_opts", "codec"), f"{{0}} applies to the video codecs ({', '.join(VIDEO_CODECS)}); "
                           f"this output is an image sequence written as {self.codec} (choose a video file and {{1}})")
        if self.crf is not None and not CRF_RANGE[0] <= self.crf <= CRF_RANGE[1]:
            raise InvalidValue("crf", self.crf, f"a number {CRF_RANGE[0]} to {CRF_RANGE[1]}")
        if self.preset is not None and self.preset not in PRESETS:
            raise InvalidValue("preset", self.preset, f"one of {', '.join(PRESETS)}")

    def to_dict(self) -> dict:
        return {"codec": self.codec, "crf": self.crf, "preset": self.preset, "options": dict(self.options)}


def parse_encoder_opts(items: list[str] | None) -> dict[str, str]:
    """``KEY=VALUE`` strings (``--encoder-opt``) to a dict; an error names the bad item."""
    opts: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidValue("encoder_opts", item, "KEY=VALUE (e.g. tune=grain)")
        opts[key.strip()] = value.strip()
    return opts


@dataclass
class EncoderPlan:
    """What is actually opened: FFmpeg encoder name, pixel format, options, colour tags.

    ``gray``: frames are written in black and white (see :mod:`engine.video.tone`). ``pad``:
    (rows, columns) of edge repeated at the bottom and right, for an encoder that needs even sizes
    (``--pad-even``).
    """

    encoder: str
    pix_fmt: str
    options: dict[str, str]
    high_bit_depth: bool  # the RGB arrays handed over are uint16
    matrix: int  # AVColorSpace written (0 = RGB)
    color_range: int
    gray: bool = False
    pad: tuple[int, int] = (0, 0)

    def prepare(self, rgb: np.ndarray):
        """float32 RGB → a VideoFrame in the encoder's pixel format (the costly part, run in its own thread)."""
        if self.gray:
            from engine.inference.tone import luma
            from engine.video.tone import gray_to_frame

            frame = gray_to_frame(self._padded(luma(rgb)), self.pix_fmt, self.color_range)
        else:
            frame = rgb_to_frame(from_float(self._padded(rgb), self.high_bit_depth), self.pix_fmt, self.matrix,
                                 self.color_range)
        if self.matrix not in (CS_RGB, CS_UNSPECIFIED):
            frame.colorspace = self.matrix
        if self.matrix != CS_RGB:
            frame.color_range = self.color_range
        return frame

    def _padded(self, a: np.ndarray) -> np.ndarray:
        rows, cols = self.pad
        if not (rows or cols):
            return a
        return np.pad(a, ((0, rows), (0, cols)) + ((0, 0),) * (a.ndim - 2), mode="edge")


# Encoders that subsample chroma, with the dimensions they need even: (width, height).
_EVEN_SIZES = {"x264": (True, True), "x265": (True, True), "prores": (True, False)}
PRORES_444_PROFILES = ("4", "5", "4444", "4444xq")


def plan_encoder(settings: EncoderSettings, high_bit_depth: bool, matrix: int, color_range: int,
                 negative_dts: bool = True, width: int = 2, height: int = 2, gray: bool = False,
                 pad_even: bool = False) -> EncoderPlan:
    """Choose the encoder, the pixel format that keeps the source's bit depth, and the options.

    ``negative_dts`` says whether the output container can start decode timestamps below zero
    (Matroska, MP4 and MOV can; NUT and AVI shift the whole file instead): where it cannot,
    x264/x265 run without B-frames, whose decode timestamps start below the first frame's.

    ``width``×``height`` is the restored frame's size. Where the encoder subsamples chroma and a
    dimension it halves is odd, the frame is written at its exact size in 4:4:4 (x264/x265
    ``yuv444p``, ProRes 4444) with one warning, or, with ``pad_even``, one row/column of edge is
    added and the usual format kept; an explicit ProRes 4:2:2 profile at an odd width is refused.
    ``gray``: black-and-white frames, gray where the format holds it (FFV1), else neutral chroma.
    """
    codec = settings.codec
    opts: dict[str, str] = {}
    odd_w, odd_h = width % 2 == 1, height % 2 == 1
    needs_w, needs_h = _EVEN_SIZES.get(codec, (False, False))
    odd = (odd_w and needs_w) or (odd_h and needs_h)
    pad = (int(odd_h and needs_h), int(odd_w and needs_w)) if (odd and pad_even) else (0, 0)
    full_chroma = odd and not pad_even
    if codec == "ffv1":
        # FFV1 is lossless RGB here: bgr0 for 8-bit, gbrp16le for deeper sources (plain gbrp fails to
        # open); black and white is stored as gray itself, full range. Every frame is a keyframe
        # (g=1, the archival setting): with FFmpeg's default of 12 a frame's bytes depend on the
        # frames before it in its segment, so a segment split by a pause would change later packets.
        ffv1_opts = {"level": "3", "g": "1", "slicecrc": "1"}
        if gray:
            plan = EncoderPlan("ffv1", "gray16le" if high_bit_depth else "gray", ffv1_opts,
                               high_bit_depth, CS_UNSPECIFIED, RANGE_FULL, gray=True)
        else:
            plan = EncoderPlan("ffv1", "gbrp16le" if high_bit_depth else "bgr0", ffv1_opts,
                               high_bit_depth, CS_RGB, RANGE_FULL)
    elif codec == "x264":
        if high_bit_depth:
            log.warning("x264 output is 8-bit; use --codec x265 or ffv1 to keep the source's bit depth")
        opts = {"crf": f"{settings.crf if settings.crf is not None else 18:g}", "preset": settings.preset or "medium"}
        if not negative_dts:
            opts["bf"] = "0"
        plan = EncoderPlan("libx264", "yuv444p" if full_chroma else "yuv420p", opts, False, matrix, color_range)
    elif codec == "x265":
        opts = {"crf": f"{settings.crf if settings.crf is not None else 20:g}", "preset": settings.preset or "medium",
                "x265-params": "log-level=error" + ("" if negative_dts else ":bframes=0")}
        depth = "p10le" if high_bit_depth else "p"
        plan = EncoderPlan("libx265", ("yuv444" if full_chroma else "yuv420") + depth, opts, high_bit_depth,
                           matrix, color_range)
    elif codec == "prores":
        chosen = settings.options.get("profile")
        profile = chosen or "3"
        if full_chroma and profile not in PRORES_444_PROFILES:
            if chosen is not None:
                raise Conflict(("pad_even", "encoder_opts"), f"ProRes profile {chosen} is 4:2:2, which needs an even "
                               f"width, and the frames are {width} wide: use {{0}}, or {{1}} profile=4 (4444)")
            profile = "4"
        pix = "yuv444p10le" if profile in PRORES_444_PROFILES else "yuv422p10le"
        plan = EncoderPlan("prores_ks", pix, {"profile": profile}, True, matrix, color_range)
    else:
        raise ArchivistError(f"{codec} writes image sequences, not video files")
    extra = dict(settings.options)
    if codec == "x265" and "x265-params" in extra:
        extra["x265-params"] = "log-level=error:" + extra["x265-params"]
    if codec == "prores":
        extra["profile"] = plan.options["profile"]
    plan.options.update(extra)
    plan.gray = gray
    plan.pad = pad
    if pad != (0, 0):
        log.info("%dx%d padded to %dx%d for %s (--pad-even)", width, height, width + pad[1], height + pad[0],
                 plan.encoder)
    elif full_chroma:
        sides = [n for n, bad in (("width", odd_w and needs_w), ("height", odd_h and needs_h)) if bad]
        if codec == "prores":
            log.warning("%dx%d has an odd width, which ProRes 4:2:2 cannot hold: writing ProRes 4444 at the exact "
                        "size (larger files); --pad-even adds one edge column instead and keeps 4:2:2", width, height)
        else:
            log.warning("%dx%d has an odd %s: %s writes it at the exact size in 4:4:4 (%s), which many players "
                        "(browsers, phones, TVs) do not play; --pad-even adds one edge row/column instead and "
                        "keeps 4:2:0", width, height, " and ".join(sides), plan.encoder, plan.pix_fmt)
    return plan


@dataclass
class StreamLayout:
    """The frame geometry and timing every segment of one output shares."""

    width: int
    height: int
    time_base: Fraction
    rate: Fraction
    sample_aspect_ratio: Fraction | None
    color_primaries: int
    color_trc: int


class SegmentWriter:
    """Encodes frames into one segment file (NUT), keeping each frame's pts; ``close()`` flushes.

    The muxer may shift a segment's timestamps (NUT starts decode timestamps at zero, which moves
    a B-frame encode late) and pick a finer time base: :mod:`engine.video.assemble` puts every
    segment back at its recorded first timestamp. ``reorder`` is the largest number of places a
    packet comes out after its frame's display position (the encoder's reorder depth, 2 for
    x264's B-pyramid), which the assembler needs to give the joined stream valid decode timestamps.
    """

    def __init__(self, path: Path, plan: EncoderPlan, layout: StreamLayout, threads: int = 0):
        import av

        self.path = path
        self.plan = plan
        self.frames = 0
        self.last_pts: int | None = None
        self.reorder = 0
        self._display: dict[int, int] = {}  # pts -> display position, for the frames not yet out
        self._packets = 0
        options = {}
        if plan.encoder == "prores_ks" and layout.time_base.numerator == 1:
            # MOV picks its own track time scale; the source's keeps every timestamp exact.
            options["video_track_timescale"] = str(layout.time_base.denominator)
        try:
            # NUT keeps any time base exactly (or a multiple of it); it cannot hold ProRes, which goes into MOV.
            self.container = av.open(str(path), "w", format="mov" if plan.encoder == "prores_ks" else "nut",
                                     options=options)
        except (OSError, av.error.FFmpegError) as exc:
            raise _write_error(path, exc) from None
        try:
            stream = self.container.add_stream(plan.encoder, rate=layout.rate, options=dict(plan.options))
            stream.width = layout.width
            stream.height = layout.height
            stream.pix_fmt = plan.pix_fmt
            stream.time_base = layout.time_base
            cc = stream.codec_context
            cc.time_base = layout.time_base
            cc.framerate = layout.rate
            cc.thread_count = threads
            if layout.sample_aspect_ratio:
                cc.sample_aspect_ratio = layout.sample_aspect_ratio
            cc.color_primaries = layout.color_primaries
            cc.color_trc = layout.color_trc
            cc.colorspace = plan.matrix
            cc.color_range = plan.color_range
            self.container.start_encoding()
        except (ValueError, av.error.FFmpegError) as exc:
            self.container.close()
            raise ArchivistError(f"cannot open encoder {plan.encoder} ({plan.pix_fmt}, {plan.options}): {exc}") from None
        self.stream = stream
        self.time_base = layout.time_base

    def write(self, rgb, pts: int, duration: int = 0) -> None:
        """Encode one frame at ``pts`` (in the layout's time base): float32 RGB, or a frame from :meth:`EncoderPlan.prepare`.

        ``duration`` (same time base, 0 if unknown) travels with the packet, so the last frame of
        a file keeps its length.
        """
        frame = rgb if not isinstance(rgb, np.ndarray) else self.plan.prepare(rgb)
        frame.pts = pts
        frame.time_base = self.time_base
        if duration > 0:
            frame.duration = duration
        self._display[pts] = self.frames
        self.frames += 1
        self.last_pts = pts
        self._mux(self.stream.encode(frame))

    def _mux(self, packets) -> None:
        import av

        for packet in packets:
            shown = self._display.pop(packet.pts, None)
            if shown is not None:
                self.reorder = max(self.reorder, self._packets - shown)
            self._packets += 1
        try:
            self.container.mux(packets)
        except (OSError, av.error.FFmpegError) as exc:
            raise _write_error(self.path, exc) from None

    def close(self) -> None:
        """Flush the encoder and close the file."""
        try:
            self._mux(self.stream.encode(None))
        finally:
            self.abort()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closing a broken file: the original error matters
            log.debug("closing %s failed", self.path, exc_info=True)


def _write_error(path: Path, exc: Exception) -> ArchivistError:
    import errno

    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        return ArchivistError(f"{path}: no space left on device")
    reason = getattr(exc, "strerror", None) or str(exc)
    return ArchivistError(f"{path}: cannot write: {reason}")


class ImageSequenceWriter:
    """Writes frames as numbered PNG/TIFF files (8- or 16-bit, gray ones for ``gray``) into a folder."""

    def __init__(self, folder: Path, pattern: str, high_bit_depth: bool, gray: bool = False):
        self.folder = folder
        self.pattern = pattern
        self.bit_depth = 16 if high_bit_depth else 8
        self.gray = gray

    def path_for(self, index: int) -> Path:
        return self.folder / (self.pattern % (index + 1))

    def write(self, rgb: np.ndarray, index: int) -> None:
        from engine.inference.imageio import write_picture

        if self.gray:
            from engine.inference.tone import luma

            rgb = luma(rgb)
        write_picture(self.path_for(index), rgb, self.bit_depth)
