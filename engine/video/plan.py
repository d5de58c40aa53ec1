"""The plan of a video restoration: everything decided and checked before the first frame.

:func:`plan_restore` probes the input (or reads the first image of a sequence), checks the output
(not the input, not there unless overwriting, its folder writable, the codec one its container
holds), chooses the encoder and plans every stream, and proves the plan by opening the output
container in memory; it writes nothing (``archivist restore --plan`` prints it).
:func:`check_output` is its cheap part, before a model is loaded.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from engine.document import Conflict, InvalidValue
from engine.errors import ArchivistError
from engine.ownership import check_absent, check_not_input
from engine.video.codecs import CONTAINER_CODECS, DEFAULT_CODEC, IMAGE_CODECS
from engine.video.encode import EncoderSettings, StreamLayout, plan_encoder
from engine.video.frames import ImageSequenceSource, list_image_sequence, source_matrix, source_range
from engine.video.options import VideoOptions
from engine.video.probe import VideoInfo, probe
from engine.video.resume import input_identity
from engine.video.streams import StreamDecision, StreamPlan, check_plan, plan_streams, rules_for
from engine.video.tone import ToneDecision, decide_sequence_tone, decide_video_tone

log = logging.getLogger(__name__)


def is_image_sequence_output(output: str | Path) -> bool:
    """``-o frames/`` or ``-o frames/%06d.png`` writes an image sequence."""
    text = str(output)
    return text.endswith(("/", os.sep)) or "%" in Path(text).name


def _sequence_target(output: str | Path, codec: str | None) -> tuple[Path, str]:
    text = str(output)
    if "%" in Path(text).name:
        folder, pattern = Path(text).parent, Path(text).name
        suffix = Path(pattern).suffix.lower().lstrip(".")
        if suffix not in ("png", "tif", "tiff"):
            raise ArchivistError(f"{output}: image-sequence pattern must end in .png or .tiff")
        return folder, pattern
    ext = "tiff" if codec == "tiff" else "png"
    return Path(text.rstrip("/" + os.sep)), f"%06d.{ext}"


def check_writable_folder(folder: Path, what: str) -> None:
    if not folder.is_dir():
        raise ArchivistError(f"{folder}: {what} folder does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ArchivistError(f"{folder}: {what} folder is not writable")


@dataclass
class RestorePlan:
    """Everything decided and checked before the first frame is decoded (``archivist restore --plan``)."""

    input_path: Path
    output_path: Path
    info: VideoInfo | None  # None for an image-sequence input
    files: list[Path]  # the images of an image-sequence input
    codec: str
    settings: EncoderSettings
    encoder: object | None  # EncoderPlan, for a video output
    layout: StreamLayout | None
    streams: StreamPlan
    total: int | None
    rate: Fraction
    high_bit_depth: bool
    width: int
    height: int
    input_id: dict
    sequence_out: tuple[Path, str] | None = None  # (folder, pattern) of an image-sequence output
    tone: ToneDecision = field(default_factory=lambda: ToneDecision(False, "colour source"))

    @property
    def gray(self) -> bool:
        return self.tone.gray

    def to_dict(self) -> dict:
        """The JSON form: input, output, codec, tone, frame size and count, and the stream plan."""
        size = (self.layout.width, self.layout.height) if self.layout else (self.width, self.height)
        return {"input": str(self.input_path), "output": str(self.output_path), "codec": self.codec,
                "pix_fmt": self.encoder.pix_fmt if self.encoder else None, "size": f"{size[0]}x{size[1]}",
                **self.tone.to_dict(), "frames": self.total, "rate": str(self.rate),
                "streams": self.streams.to_list()}


@dataclass
class _Source:
    """What goes in: the facts the encoder and the plan need, from the probe or the first image."""

    info: VideoInfo | None
    files: list[Path]
    width: int
    height: int
    high_bit_depth: bool
    total: int | None
    rate: Fraction
    sar: Fraction | None
    primaries: int
    trc: int
    matrix: int
    color_range: int
    input_id: dict
    tone: ToneDecision


def _source(input_path: Path, options: VideoOptions) -> _Source:
    if options.fps is not None:  # (VideoOptions refuses a time range or a filter with it)
        files = list_image_sequence(input_path)
        first = ImageSequenceSource(files, options.fps)
        return _Source(None, files, first.width, first.height, first.high_bit_depth, len(files), options.fps,
                       None, 1, 13, 1, 1, {"files": [str(files[0].resolve()), len(files)], "fps": str(options.fps)},
                       _logged(decide_sequence_tone(files, options.tone), input_path))
    info = probe(input_path)
    if info.interlaced and not (options.deinterlace or options.ivtc):
        log.warning("%s is interlaced (field order %s): consider --deinterlace or --ivtc", input_path,
                    info.field_order)
    total = info.frame_count
    if options.start and total:
        # The frames before the start: those whose time is below it (the first at the stream's start).
        skipped = math.ceil((options.start - info.start_time) * float(info.rate) - 1e-6)
        total = max(0, total - max(0, skipped))
    end = info.start_time + info.duration if info.duration is not None else None
    if options.start and end is not None and options.start >= end:
        # Known from the headers, before a frame is decoded (the run would end with nothing to
        # assemble).
        raise Conflict(("start",), f"{input_path}: no frames to restore in the range {{0}} {options.start:g}: the "
                       f"video ends at {end:g} s; allowed: {{0}} below that")
    last = info.last_frame_time
    if options.start and last is not None and options.start > last + 1e-6:
        # Inside the last frame's own duration: no frame starts at or after it (the probe read the end).
        raise Conflict(("start",), f"{input_path}: no frames to restore in the range {{0}} {options.start:g}: the "
                       f"last frame starts at {last:g} s; allowed: {{0}} {last:g} or below")
    if options.duration is not None:
        wanted = int(round(options.duration * float(info.rate)))
        total = min(wanted, total) if total else wanted  # a range past the end holds only what is there
    if options.ivtc and total:
        total = total * 4 // 5
    return _Source(info, [], info.width, info.height, info.high_bit_depth, total,
                   info.rate * Fraction(4, 5) if options.ivtc else info.rate, info.sample_aspect_ratio,
                   info.color_primaries, info.color_trc, source_matrix(info.colorspace, info.width, info.height),
                   source_range(info.color_range, info.pix_fmt), input_identity(input_path),
                   _logged(decide_video_tone(info, options.tone), input_path))


def _logged(tone: ToneDecision, input_path: Path) -> ToneDecision:
    if tone.detected:
        # Said once, before any work: the output will have no colour at all.
        log.warning("%s: %s: restoring in black and white (tone color, --color, keeps colour)", input_path, tone.reason)
    else:
        log.info("%s: restoring in %s (%s)", input_path, "black and white" if tone.gray else "colour", tone.reason)
    return tone


def _target(output: str | Path, codec: str | None, overwrite: bool = False,
            mine: frozenset[str] = frozenset()) -> tuple[Path, str, tuple[Path, str] | None]:
    """What comes out: (output path, codec, (folder, pattern) of an image sequence or None), checked.

    An existing output file is refused unless ``overwrite`` (or this job wrote it: ``mine``); an
    image-sequence folder must be new or empty, with or without ``overwrite`` (a folder is never
    merged into: an earlier, longer sequence would leave its last frames behind).
    """
    if is_image_sequence_output(output):
        codec = codec or "png"
        if codec not in IMAGE_CODECS:
            raise InvalidValue("codec", codec, f"{' or '.join(IMAGE_CODECS)} for an image sequence")
        out_folder, pattern = _sequence_target(output, codec)
        if out_folder.exists() and (not out_folder.is_dir() or any(out_folder.iterdir())):
            raise ArchivistError(f"{out_folder}: output folder exists and is not empty; choose a new or empty folder "
                                 "(overwriting replaces files, never a folder's contents)")
        parent, result = out_folder.parent, (out_folder, codec, (out_folder, pattern))
    else:
        output_path = Path(output)
        suffix = output_path.suffix.lower()
        if suffix not in CONTAINER_CODECS:
            raise ArchivistError(f"{output_path}: unsupported output type {suffix or '(none)'}: allowed are "
                                 f"{', '.join(CONTAINER_CODECS)}, or a folder ending in / for an image sequence")
        codec = codec or DEFAULT_CODEC[suffix]
        if codec not in CONTAINER_CODECS[suffix]:
            raise InvalidValue("codec", codec, f"{', '.join(CONTAINER_CODECS[suffix])} (what a {suffix} file holds)")
        if output_path.is_dir():
            raise ArchivistError(f"{output_path}: is a folder (end the path with / for an image sequence)")
        check_absent(output_path, overwrite, mine)
        parent, result = output_path.parent, (output_path, codec, None)
    check_writable_folder(parent if str(parent) else Path("."), "output")
    return result


def check_output(input_path: str | Path, output: str | Path, options: VideoOptions | None = None) -> None:
    """The cheap part of :func:`plan_restore`, before a model is loaded: the output is not the input
    and does not exist (unless ``options.overwrite``), and its folder is writable."""
    options = options or VideoOptions()
    if not is_image_sequence_output(output):
        check_not_input(output, [input_path])
    _target(output, options.codec, options.overwrite)


def plan_restore(input_path: str | Path, output: str | Path, options: VideoOptions | None = None,
                 scale: int = 1, mine: frozenset[str] = frozenset()) -> RestorePlan:
    """Probe the input, check the output, choose the encoder and plan every stream; writes nothing.

    The output may not be the input (any spelling of the same file) and may not exist unless
    ``options.overwrite`` (``mine``: final names a queued job gave itself in an earlier attempt).

    The stream plan is proved by opening the output container in memory with the planned streams
    and the encoder (:func:`engine.video.streams.check_plan`), so nothing about streams or the
    encoder can fail after the restore. ``scale`` is the chain's (the encoder is opened at the
    output size).
    """
    options = options or VideoOptions()
    input_path = Path(input_path)
    if not is_image_sequence_output(output):
        check_not_input(output, [input_path])
    src = _source(input_path, options)
    output_path, codec, sequence = _target(output, options.codec, options.overwrite, mine)
    settings = EncoderSettings(codec, options.crf, options.preset, dict(options.encoder_opts))

    if output_path.suffix.lower() == ".avi" and src.info is not None and src.info.variable_frame_rate:
        raise ArchivistError(f"{output_path}: .avi holds a constant frame rate only and {input_path} is variable-rate: "
                             f"choose {', '.join(s for s in CONTAINER_CODECS if s != '.avi')}")

    encoder, layout, video_to, video_why = _plan_video(src, output_path, codec, settings, sequence is not None,
                                                       scale, options.pad_even)
    if src.info is not None:
        streams = plan_streams(input_path, src.info.video_index, output_path, video_to, video_why, options.audio,
                               sequence=sequence is not None)
    else:
        streams = StreamPlan(str(output_path), [StreamDecision(0, "video", src.files[0].suffix.lstrip(".").lower(),
                                                               "convert", video_to, video_why)])
    if sequence is None:
        check_plan(streams, input_path if src.info is not None else None, output_path,
                   lambda out: _add_encoder_stream(out, encoder, layout), settings.options)
    return RestorePlan(input_path, output_path, src.info, src.files, codec, settings, encoder, layout, streams,
                       src.total, src.rate, src.high_bit_depth, src.width, src.height, src.input_id, sequence,
                       src.tone)


_VIDEO_CODEC_NAMES = {"ffv1": "ffv1", "x264": "h264", "x265": "hevc", "prores": "prores", "png": "png",
                      "tiff": "tiff"}


def _plan_video(src: _Source, output_path: Path, codec: str, settings: EncoderSettings, sequence: bool, scale: int,
                pad_even: bool):
    """The restored video's encoder and layout (None, None for an image sequence), and what becomes of
    it in the stream plan's words: (encoder, layout, codec written, why)."""
    restored = "restored frames in black and white" if src.tone.gray else "restored frames"
    if sequence:
        return None, None, codec, f"{restored}, written as {'gray ' if src.tone.gray else ''}{codec} images"
    rules = rules_for(output_path)
    width, height = src.width * scale, src.height * scale
    encoder = plan_encoder(settings, src.high_bit_depth, src.matrix, src.color_range,
                           negative_dts=rules.negative_dts, width=width, height=height, gray=src.tone.gray,
                           pad_even=pad_even)
    if src.sar and src.sar != 1 and codec == "ffv1" and output_path.suffix.lower() in (".nut", ".avi"):
        # Both muxers store the ratio only from a stream field PyAV cannot set, and FFV1 has no
        # place for it that readers use; Matroska's header is mended after writing (engine.video.matroska).
        log.warning("%s: the sample aspect ratio %s is lost by FFV1 in %s files: choose .mkv to keep it",
                    output_path, src.sar, output_path.suffix.lower())
    layout = StreamLayout(width + encoder.pad[1], height + encoder.pad[0],
                          src.info.time_base if src.info else 1 / src.rate, src.rate, src.sar, src.primaries,
                          src.trc)
    video_why = f"{restored}, encoded with {_describe(encoder)}"
    if encoder.pad != (0, 0):
        video_why += f", padded to {layout.width}x{layout.height}"
    return encoder, layout, _VIDEO_CODEC_NAMES[codec], video_why



def _describe(encoder) -> str:
    opts = " ".join(f"{k}={v}" for k, v in encoder.options.items() if k != "x265-params" or v != "log-level=error")
    return f"{encoder.encoder} {encoder.pix_fmt}" + (f" ({opts})" if opts else "")


def _add_encoder_stream(out, encoder, layout: StreamLayout) -> None:
    """The video stream as the segments' encoder opens it (for :func:`check_plan`)."""
    stream = out.add_stream(encoder.encoder, rate=layout.rate, options=dict(encoder.options))
    stream.width, stream.height, stream.pix_fmt = layout.width, layout.height, encoder.pix_fmt
    stream.time_base = layout.time_base
    stream.codec_context.time_base = layout.time_base
