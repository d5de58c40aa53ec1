"""The stream plan: what happens to every stream of the source, decided before the first frame.

For each input stream the plan says ``copy``, ``convert`` (to what) or ``drop``, and why. It is
built from the container headers alone (nothing is decoded), by rules per output container
(:data:`CONTAINERS`) and the user's ``--audio`` choice, and then proved by :func:`check_plan`,
which opens the output container in memory with exactly the streams the final file will have
(the same code adds them, :func:`add_planned_streams`) and writes its header: whatever the muxer
would refuse is refused here, before any work, never after the restore.

Conversions are the standard, lossless or near-lossless ones: text subtitles between the text
formats the containers hold (SubRip, ASS, mov_text, WebVTT: FFmpeg decodes each to ASS events
and encodes them again), and audio a container cannot hold into one it can (AAC for ``.mp4``
and ``.mov``, FLAC for ``.mkv``). Bitmap subtitles cannot become text: where the container
cannot hold them they are dropped, with that reason.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from engine.document import Conflict, InvalidValue
from engine.errors import ArchivistError
from engine.video.codecs import AUDIO_CHOICES

log = logging.getLogger(__name__)

# FFmpeg's encoder for each --audio choice and the codec it writes.
AUDIO_ENCODERS = {"aac": "aac", "opus": "libopus", "flac": "flac"}
# Subtitle encoders by the codec they write.
SUBTITLE_ENCODERS = {"subrip": "srt", "ass": "ass", "mov_text": "mov_text", "webvtt": "webvtt"}
# AVCodecDescriptor properties.
_PROP_BITMAP_SUB, _PROP_TEXT_SUB = 1 << 16, 1 << 17
_ATTACHED_PIC = 0x400
DISPOSITIONS = ("default", "forced", "hearing_impaired", "visual_impaired", "comment", "original", "dub",
                "captions", "descriptions")
# Per-stream tags that describe the old file, not the new one.
_STALE_TAGS = ("encoder", "duration", "number_of_frames", "number_of_bytes", "bps", "_statistics_writing_app",
               "_statistics_writing_date_utc", "_statistics_tags", "handler_name", "vendor_id")


@dataclass(frozen=True)
class ContainerRules:
    """What one output container holds and what is done with the rest."""

    suffix: str
    format: str  # FFmpeg's muxer
    audio_copy: tuple[str, ...] | None  # audio codecs copied by default (None: all the muxer holds)
    audio_default: str  # the --audio choice used for audio that is not copied
    audio_why: str  # why audio outside audio_copy is converted although the muxer takes it
    text_copy: tuple[str, ...]  # text subtitle codecs copied as they are
    text_to: str | None  # the text subtitle codec other text formats become (None: no subtitles)
    bitmap_copy: tuple[str, ...]  # bitmap subtitle codecs copied
    attachments: bool
    negative_dts: bool  # decode timestamps may start below zero (else the muxer shifts everything)
    negative_pts: bool  # packets may start before zero (an edit list hides them; else everything shifts)
    no_subtitles_why: str = ""
    strict_dts: bool = True  # decode timestamps must rise strictly (Matroska allows equal ones)
    audio_targets: tuple[str, ...] = ("aac", "opus", "flac")  # --audio conversions it holds (and reads back)


_PLAYABLE_MP4_AUDIO = ("aac", "mp3", "ac3", "eac3", "alac")
CONTAINERS: dict[str, ContainerRules] = {
    ".mkv": ContainerRules(".mkv", "matroska", None, "flac", "", ("subrip", "ass", "webvtt"), "subrip",
                           ("dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle"), True, True, False, strict_dts=False),
    ".mp4": ContainerRules(".mp4", "mp4", _PLAYABLE_MP4_AUDIO, "aac", "few players play {codec} in .mp4",
                           ("mov_text",), "mov_text", ("dvd_subtitle",), False, True, True),
    ".mov": ContainerRules(".mov", "mov", (*_PLAYABLE_MP4_AUDIO, "pcm_s16le", "pcm_s16be", "pcm_s24le",
                                           "pcm_s24be", "pcm_s32le", "pcm_s32be", "pcm_f32le", "pcm_f32be"),
                           "aac", "few players play {codec} in .mov", ("mov_text",), "mov_text", (), False, True, True,
                           audio_targets=("aac",)),
    ".avi": ContainerRules(".avi", "avi", None, "aac", "", (), None, (), False, False, False,
                           ".avi cannot hold subtitles", audio_targets=("aac", "flac")),
    # NUT reads E-AC-3 back as AC-3: only what it keeps as it is is copied.
    ".nut": ContainerRules(".nut", "nut", ("aac", "mp3", "ac3", "opus", "flac", "vorbis", "dts", "mp2", "pcm_s16le",
                                           "pcm_s24le", "pcm_s32le", "pcm_f32le"), "aac", "{codec} does not survive .nut",
                           (), None, (), False, False, False,
                           ".nut output keeps no subtitles (their durations are lost)",
                           audio_targets=("aac", "opus")),  # FLAC encoded into NUT does not decode back
}


@dataclass
class StreamDecision:
    """One input stream's fate."""

    index: int
    type: str  # video, audio, subtitle, attachment, data
    codec: str
    action: str  # copy, convert, drop
    to: str | None
    reason: str
    language: str | None = None
    title: str | None = None
    disposition: list[str] = field(default_factory=list)
    encoder: str | None = None  # FFmpeg's encoder for a conversion (libopus, srt, ...)
    # A copied stream whose packets start before zero (an AAC priming packet) that the output keeps
    # there: Matroska does for a stream that declares its codec delay, else it would move every stream.
    keeps_early: bool = False

    def to_dict(self) -> dict:
        """The JSON form (``--json``, the job's event)."""
        data = {"index": self.index, "type": self.type, "codec": self.codec, "action": self.action,
                "to": self.to, "reason": self.reason}
        if self.language:
            data["language"] = self.language
        if self.title:
            data["title"] = self.title
        if self.disposition:
            data["disposition"] = list(self.disposition)
        return data

    def describe(self) -> str:
        """One line: ``stream 1 audio truehd (eng): convert to aac: .mp4 cannot hold truehd``."""
        tags = ", ".join([t for t in (self.language, self.title and repr(self.title)) if t] + self.disposition)
        what = f"stream {self.index} {self.type} {self.codec}" + (f" ({tags})" if tags else "")
        action = f"convert to {self.to}" if self.action == "convert" else self.action
        return f"{what}: {action}" + (f": {self.reason}" if self.reason else "")


@dataclass
class StreamPlan:
    """Every input stream's decision, in input order, for one output."""

    output: str
    streams: list[StreamDecision]

    def to_list(self) -> list[dict]:
        return [s.to_dict() for s in self.streams]

    def lines(self) -> list[str]:
        return [s.describe() for s in self.streams]

    def side(self) -> list[StreamDecision]:
        """The non-video streams that reach the output."""
        return [s for s in self.streams if s.type != "video" and s.action != "drop"]

    def decision(self, index: int) -> StreamDecision:
        return next(s for s in self.streams if s.index == index)


def rules_for(output: Path) -> ContainerRules:
    suffix = output.suffix.lower()
    if suffix not in CONTAINERS:
        raise ArchivistError(f"{output}: unsupported output type {suffix or '(none)'}: allowed are "
                             f"{', '.join(CONTAINERS)}")
    return CONTAINERS[suffix]


def check_audio_choice(value: str | None) -> str | None:
    """``audio`` (``--audio``): None (the container's default) or one of :data:`AUDIO_CHOICES`."""
    if value is not None and value not in AUDIO_CHOICES:
        raise InvalidValue("audio", value, f"one of {', '.join(AUDIO_CHOICES)}")
    return value


def disposition_names(flags: int) -> list[str]:
    import av

    names = []
    for name in DISPOSITIONS:
        flag = getattr(av.stream.Disposition, name, None)
        if flag is not None and flags & int(flag):
            names.append(name)
    return names


def disposition_flags(names: list[str]) -> int:
    """The FFmpeg disposition flags for names from :func:`disposition_names`."""
    import av

    flags = 0
    for name in names:
        flags |= int(getattr(av.stream.Disposition, name))
    return flags


def _codec_of(stream) -> str:
    from engine.video.probe import codec_name

    return codec_name(stream)


def _properties(stream) -> int:
    try:
        return int(stream.codec_context.codec.properties)
    except Exception:  # noqa: BLE001 - no decoder: nothing known about it
        return 0


def _holds(fmt: str, template) -> str | None:
    """None when an empty ``fmt`` file takes a copy of ``template``, else FFmpeg's reason."""
    import av

    out = av.open(io.BytesIO(), "w", format=fmt)
    try:
        out.add_stream_from_template(template)
        out.start_encoding()
        return None
    except (ValueError, av.error.FFmpegError) as exc:
        return _reason(exc)
    finally:
        _close_quietly(out)


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '")[0].strip()


def _close_quietly(container) -> None:
    try:
        container.close()
    except Exception:  # noqa: BLE001 - an in-memory trial file
        pass


def plan_streams(source: str | Path, video_index: int, output: str | Path, video_to: str, video_why: str,
                 audio: str | None = None, sequence: bool = False) -> StreamPlan:
    """Decide every stream of ``source`` for ``output`` (see the module docstring); reads headers only.

    ``video_to``/``video_why`` describe the restored video stream (``h264``, ``restored, encoded
    with x264 crf 18``); ``audio`` is the ``--audio`` choice (None: the container's default);
    ``sequence``: the output is an image sequence, which holds pictures only.
    """
    from engine.video.probe import open_input

    check_audio_choice(audio)
    output = Path(output)
    rules = None if sequence else rules_for(output)
    decisions = []
    container = open_input(source)
    try:
        for s in container.streams:
            codec = _codec_of(s) if s.type != "attachment" else (s.name or "attachment")
            language = s.metadata.get("language")
            d = StreamDecision(s.index, s.type, codec, "drop", None, "",
                               language=None if language in (None, "", "und") else language,
                               title=s.metadata.get("title"),
                               disposition=disposition_names(int(s.disposition)))
            if s.index == video_index:
                d.action, d.to, d.reason = "convert", video_to, video_why
            elif sequence:
                d.reason = "an image sequence holds pictures only"
            elif s.type == "video":
                d.reason = ("a cover picture is not carried" if int(s.disposition) & _ATTACHED_PIC
                            else "only the first video stream is restored")
            elif s.type == "audio":
                _decide_audio(d, s, rules, audio)
                if d.action == "copy" and not rules.negative_pts:
                    d.keeps_early = _keeps_early(rules.format, container, s)
            elif s.type == "subtitle":
                _decide_subtitle(d, s, rules)
            elif s.type == "attachment":
                if rules.attachments:
                    d.action = "copy"
                else:
                    d.reason = f"{rules.suffix} cannot hold attachments"
            else:
                d.reason = "data streams (timecodes, metadata tracks) are not carried"
            decisions.append(d)
    finally:
        container.close()
    return StreamPlan(str(output), decisions)


def _keeps_early(fmt: str, container, stream) -> bool:
    """Does a ``fmt`` file keep this stream's first packet where it is, when that is before zero?

    Tried on the packet itself (demuxed, not decoded) in a file in memory, read back.
    """
    import av

    try:
        packet = next((p for p in container.demux(stream) if p.size), None)
    except av.error.FFmpegError:
        packet = None
    if packet is None or packet.pts is None or packet.pts >= 0:
        return True
    wanted = float(packet.pts * packet.time_base)
    buf = io.BytesIO()
    out = av.open(buf, "w", format=fmt)
    try:
        new = out.add_stream_from_template(stream)
        out.start_encoding()
        packet.stream = new
        out.mux(packet)
        out.close()
        with av.open(io.BytesIO(buf.getvalue())) as back:
            got = next((p for p in back.demux() if p.size), None)
            return got is not None and got.pts is not None and abs(float(got.pts * got.time_base) - wanted) < 1e-3
    except (ValueError, av.error.FFmpegError):
        return False
    finally:
        _close_quietly(out)


def _decide_audio(d: StreamDecision, s, rules: ContainerRules, choice: str | None) -> None:
    if choice == "drop":
        d.reason = "--audio drop"
        return
    held = _holds(rules.format, s)
    if choice == "copy":
        if held is not None:
            raise Conflict(("audio",), f"{{0}} copy: {rules.suffix} cannot hold {d.codec} (stream {d.index}: {held}); "
                           "choose {0} aac, flac, opus or drop")
        d.action = "copy"
        return
    if choice is not None:  # aac, opus, flac: everything in that codec
        target = "opus" if choice == "opus" else choice
        if d.codec == target and held is None:
            d.action, d.reason = "copy", f"already {target}"
            return
        _convert_audio(d, s, rules, choice, f"--audio {choice}")
        return
    if held is None and (rules.audio_copy is None or d.codec in rules.audio_copy):
        d.action = "copy"
        return
    if held is None:
        why = rules.audio_why.format(codec=d.codec)
    else:
        why = f"{rules.suffix} cannot hold {d.codec}"
    _convert_audio(d, s, rules, rules.audio_default, why)


def _convert_audio(d: StreamDecision, s, rules: ContainerRules, choice: str, why: str) -> None:
    import av

    try:
        av.Codec(d.codec, "r")
    except Exception:  # noqa: BLE001 - FFmpeg has no decoder for it
        d.reason = f"{why}, and no decoder here reads {d.codec} to convert it"
        return
    encoder = AUDIO_ENCODERS[choice]
    if choice not in rules.audio_targets:
        raise Conflict(("audio",), f"{{0}} {choice}: {rules.suffix} files cannot hold {choice} (stream {d.index}); "
                       f"allowed there: {', '.join(['copy', *rules.audio_targets, 'drop'])}")
    d.action, d.to, d.encoder, d.reason = "convert", choice, encoder, why


def _decide_subtitle(d: StreamDecision, s, rules: ContainerRules) -> None:
    props = _properties(s)
    if rules.text_to is None:
        d.reason = rules.no_subtitles_why
        return
    if props & _PROP_TEXT_SUB:
        if d.codec in rules.text_copy and _holds(rules.format, s) is None:
            d.action = "copy"
        else:
            d.action, d.to, d.encoder = "convert", rules.text_to, SUBTITLE_ENCODERS[rules.text_to]
            d.reason = f"{rules.suffix} cannot hold {d.codec}"
        return
    if props & _PROP_BITMAP_SUB:
        if d.codec in rules.bitmap_copy and _holds(rules.format, s) is None:
            d.action = "copy"
        else:
            d.reason = f"{rules.suffix} cannot hold {d.codec}, a bitmap subtitle (pictures cannot become text)"
        return
    d.reason = f"{d.codec} subtitles are neither text nor a known bitmap format"


# -- adding the planned streams to an output (the check and the final file use the same code) -------
def add_planned_streams(out, src, plan: StreamPlan) -> dict[int, tuple]:
    """Add the plan's side streams to ``out``; returns input index -> (decision, output stream, converter)."""
    from engine.video.convert import AudioConverter, SubtitleConverter

    added = {}
    for d in plan.side():
        s = src.streams[d.index]
        if d.type == "attachment":
            new = out.add_attachment(s.name, s.mimetype, s.data)
            added[d.index] = (d, new, None)
            continue
        converter = None
        if d.action == "copy":
            new = out.add_stream_from_template(s)
        elif d.type == "audio":
            converter = AudioConverter(s, out, d.encoder)
            new = converter.stream
        else:
            converter = SubtitleConverter(s, out, d.encoder)
            new = converter.stream
        for key, value in s.metadata.items():
            if key.lower() not in _STALE_TAGS:
                new.metadata[key] = value
        title = s.metadata.get("title") or s.metadata.get("handler_name")
        if title and out.format.name in ("mp4", "mov"):
            new.metadata["handler_name"] = title  # MP4 and MOV keep a track's name only there
        new.disposition = s.disposition
        added[d.index] = (d, new, converter)
    return added


def check_plan(plan: StreamPlan, source: str | Path | None, output: Path, add_video,
               encoder_opts: dict[str, str] | None = None) -> None:
    """Open ``output``'s container in memory with the planned streams and write its header.

    ``add_video(out)`` adds the video stream as the encoder will write it (opening the encoder
    too, so its options are checked). ``encoder_opts`` are the user's own encoder options
    (``--encoder-opt``): one the encoder does not know is refused (FFmpeg would leave it unused
    without a word), and an encoder that refuses to open with them names them. Raises one
    :class:`ArchivistError` naming what was refused.
    """
    import av

    from engine.video.probe import open_input

    rules = rules_for(output)
    # The encoder alone first: an encoder that refuses its size or options is named as such, not
    # blamed on the audio.
    encoder_opts = encoder_opts or {}
    alone = av.open(io.BytesIO(), "w", format=rules.format)
    said: list[str] = []
    try:
        with _encoder_messages(said):
            add_video(alone)
            alone.start_encoding()
        # avcodec_open2 hands back the options nobody consumed: the encoder does not have them.
        context = alone.streams.video[0].codec_context
        unused, encoder = [key for key in context.options if key in encoder_opts], context.name
    except (ValueError, av.error.FFmpegError) as exc:
        # The encoder's own words (x264: "invalid preset 'fast2'") say more than FFmpeg's error code.
        reason = said[-1] if said else _reason(exc)
        if encoder_opts:
            given = " ".join(f"{k}={v}" for k, v in encoder_opts.items())
            raise Conflict(("encoder_opts",), f"{output}: the video encoder cannot be opened with {{0}} {given} "
                           f"({reason}): check the option names and values") from None
        raise ArchivistError(f"{output}: the video encoder cannot be opened: {reason}") from None
    finally:
        _close_quietly(alone)
    if unused:
        key = unused[0]
        raise InvalidValue("encoder_opts", f"{key}={encoder_opts[key]}",
                           f"options that the {encoder} encoder has ({key} is not one of them; "
                           f"'ffmpeg -h encoder={encoder}' lists them)")
    # x264-params/x265-params entries the library does not know are warned about and skipped.
    skipped = [line for line in said if "option" in line.lower()]
    if skipped and encoder_opts:
        given = " ".join(f"{k}={v}" for k, v in encoder_opts.items())
        raise Conflict(("encoder_opts",), f"{output}: {{0}} {given}: the {encoder} encoder would skip a part of it "
                       f"({skipped[0]}); allowed: the options and parameters the encoder has")
    for line in said:
        log.info("%s encoder: %s", encoder, line)
    out = av.open(io.BytesIO(), "w", format=rules.format)
    src = open_input(source) if source is not None else None
    try:
        add_video(out)
        try:
            if src is not None:
                add_planned_streams(out, src, plan)
            out.start_encoding()
        except (ValueError, av.error.FFmpegError) as exc:
            culprit = _refused_stream(plan, src, rules) if src is not None else None
            what = f"{culprit.describe()}:" if culprit else "the planned streams"
            raise Conflict(("audio",), f"{output}: {what} cannot be written to a {rules.suffix} file ({_reason(exc)}); "
                           "choose another {0}, or {0} drop") from None
    finally:
        _close_quietly(out)
        if src is not None:
            src.close()


@contextmanager
def _encoder_messages(said: list[str]):
    """Collect what an encoder says while it is opened, instead of letting it reach the terminal.

    FFmpeg's own warnings come through its log (off by default in PyAV), and x264 prints a refused
    preset, tune or profile straight to file descriptor 2 before FFmpeg's log is in place: both are
    caught here, so a refusal is one line that quotes them. Used only for the in-memory trial open,
    which runs before any frame (no other thread of this process is writing then).
    """
    import av.logging

    sys.stderr.flush()
    saved_fd = os.dup(2)
    level = av.logging.get_level()
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        av.logging.set_level(av.logging.WARNING)
        try:
            with av.logging.Capture() as logs:
                yield said
        finally:
            av.logging.set_level(level)
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            caught.seek(0)
            printed = caught.read().decode("utf-8", "replace").splitlines()
            said.extend(line.strip() for line in printed if line.strip())
            said.extend(f"{name}: {text.strip()}" for _lvl, name, text in logs if text.strip())


def _refused_stream(plan: StreamPlan, src, rules: ContainerRules) -> StreamDecision | None:
    """The first planned stream that a file holding it alone refuses (to name it in the error)."""
    import av

    for d in plan.side():
        out = av.open(io.BytesIO(), "w", format=rules.format)
        try:
            add_planned_streams(out, src, StreamPlan(plan.output, [d]))
            out.start_encoding()
        except (ValueError, av.error.FFmpegError):
            return d
        finally:
            _close_quietly(out)
    return None
