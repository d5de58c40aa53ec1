"""The options of a video restoration (:class:`VideoOptions`), and the parsers of their text forms.

Each key is declared beside its field with :mod:`engine.document` (bounds, unit, words), so the
command line, a queued job's ``video`` document and code that builds the options get one check;
refusals name the key (``segment_frames``) and the command line shows its flag
(``--segment-frames``). Rules between keys (``deinterlace`` and ``ivtc``) refuse with a
:class:`engine.document.Conflict`. No PyAV here: a queued job's spec is checked at submit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from engine import document
from engine.document import Conflict, InvalidValue
from engine.inference.tone import TONES
from engine.video.codecs import AUDIO_CHOICES, CODECS, CRF_RANGE, DEFAULT_CODEC_WORDS, PRESETS

DEFAULT_SEGMENT_FRAMES = 500
DEINTERLACE_FILTER = "bwdif=mode=send_frame:parity=auto:deint=all"
IVTC_FILTER = "fieldmatch,yadif=deint=interlaced,decimate"
# The forms of a time; time_words(key) adds the range that key allows.
TIME_FORMS = "seconds (12.5) or [HH:]MM:SS(.ms), each field after a colon below 60"
FPS_WORDS = "a number (24, 23.976) or a ratio (24000/1001), more than 0"


def _encoder_opts(value):
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError("a mapping of encoder option names to text values")
    return value


def _fps(value):
    if not isinstance(value, (Fraction, int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(FPS_WORDS)
    if value <= 0:
        raise ValueError(FPS_WORDS)
    return value


def _work_dir(value):
    if not isinstance(value, (str, Path)):
        raise ValueError("a folder")
    return Path(value)


@dataclass
class VideoOptions:
    """How to read, encode and segment a video restoration (the CLI's video options, a job's ``video``)."""

    codec: str | None = document.choice(
        None, CODECS, f"encoder; None: by the output ({DEFAULT_CODEC_WORDS}, a folder png)", optional=True)
    crf: float | None = document.number(None, *CRF_RANGE, "x264/x265 quality (None: 18/20)", optional=True)
    preset: str | None = document.choice(None, PRESETS, "x264/x265 speed preset (None: medium)", optional=True)
    encoder_opts: dict[str, str] = document.value({}, "options passed to the encoder", allowed="a mapping of text",
                                                  convert=_encoder_opts)
    segment_frames: int = document.integer(DEFAULT_SEGMENT_FRAMES, 1, None, "frames per segment: the unit of resume",
                                           unit="frames")
    resume: bool = document.boolean(False, "continue an interrupted run at its first unfinished segment")
    start: float = document.number(0.0, 0, None, "restore from this time", unit="seconds")
    duration: float | None = document.number(None, 0, None, "restore only this long (None: to the end)",
                                             lo_open=True, unit="seconds", optional=True)
    deinterlace: bool = document.boolean(False, "deinterlace with bwdif before restoring")
    ivtc: bool = document.boolean(False, "inverse telecine (3:2 pulldown) before restoring")
    fps: Fraction | None = document.value(None, "frame rate of an image-sequence input", allowed=FPS_WORDS,
                                          convert=_fps, optional=True)
    work_dir: Path | None = document.value(None, "where the segments are kept (None: ARCHIVIST_HOME/jobs)",
                                           allowed="a folder", convert=_work_dir, optional=True)
    batch: int = document.integer(1, 1, None, "frames per model call", unit="frames")
    queue_size: int = document.integer(8, 1, None, "frames held between decode, restore and encode", unit="frames")
    decode_threads: int = document.integer(0, 0, None, "decoder threads (0: FFmpeg's choice)")
    overlap: bool = document.boolean(True, "decode, restore and encode in three threads at once")
    check_space: bool = document.boolean(True, "estimate the output's size and refuse when it cannot fit")
    audio: str | None = document.choice(None, AUDIO_CHOICES, "audio streams: copied, converted or dropped "
                                        "(None: the output container's default)", optional=True)
    tone: str = document.choice("auto", TONES, "auto: black and white when the source is (engine.video.tone)")
    pad_even: bool = document.boolean(False, "odd sizes for 4:2:0/4:2:2 encoders: one edge row/column added, "
                                      "not 4:4:4")
    overwrite: bool = document.boolean(False, "an existing output file is replaced (by the final rename only)")

    def __post_init__(self):
        document.check(self)
        if self.deinterlace and self.ivtc:
            raise Conflict(("deinterlace", "ivtc"), "{0} and {1} exclude each other: choose one")
        if self.fps is not None:  # an image sequence: no time range, no field filters
            for key in ("start", "duration", "deinterlace", "ivtc"):
                if getattr(self, key) not in (0, None, False):
                    raise Conflict((key, "fps"), "{0} applies to video files, not to an image sequence ({1})")

    @property
    def video_filter(self) -> str | None:
        if self.deinterlace:
            return DEINTERLACE_FILTER
        if self.ivtc:
            return IVTC_FILTER
        return None


def time_words(key: str = "time") -> str:
    """What a time ``key`` allows: its forms and the range that key really takes (a ``duration`` is
    more than 0, a ``start`` or a preview ``time`` 0 or more)."""
    low = "more than 0" if key == "duration" else "0 or more"
    return f"{TIME_FORMS}, {low}"


def parse_time(text: str, key: str = "time") -> float:
    """Seconds from ``12.5``, ``1:02.5`` (minutes:seconds) or ``1:02:03.5`` (hours:minutes:seconds).

    The fields after the first are minutes and seconds of a clock: 0 up to (not including) 60, so
    ``1:99`` is refused rather than read as 159 s. A negative time is refused in the words of its
    key (a ``duration`` more than 0, which VideoOptions checks; any other key 0 or more). A refusal is an :class:`InvalidValue` naming ``key`` (``start``, ``duration``)."""
    words = time_words(key)
    parts = str(text).strip().split(":")
    try:
        if len(parts) > 3 or any(p == "" for p in parts):
            raise ValueError
        fields = [float(p) for p in parts]
    except ValueError:
        raise InvalidValue(key, text, words) from None
    # A sign or a value of 60 or more inside a clock field is a typo, never a carry into the next field.
    if any(not 0 <= f < 60 or p.strip()[:1] in "+-" for f, p in zip(fields[1:], parts[1:], strict=True)):
        raise InvalidValue(key, text, words)
    seconds = 0.0
    for field in fields:
        seconds = seconds * 60 + field
    # A duration of 0 passes here: VideoOptions refuses it in the words of its own key (a number > 0).
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidValue(key, text, words)
    return seconds


def parse_fps(text: str, key: str = "fps") -> Fraction:
    """A frame rate: ``24``, ``23.976``, ``24000/1001``; a refusal names ``key``."""
    try:
        value = Fraction(text).limit_denominator(1001) if "/" not in text else Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise InvalidValue(key, text, FPS_WORDS) from None
    if value <= 0:
        raise InvalidValue(key, text, FPS_WORDS)
    return value
