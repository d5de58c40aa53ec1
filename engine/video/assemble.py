"""The final file: segments joined by stream copy, with the source's other streams as the stream plan
says (copied, converted or dropped), chapters and metadata, written under a temporary name and
renamed into place when complete.

Timing. Each segment is put back at its recorded first timestamp (a segment muxer may have moved
it: NUT starts a B-frame encode's decode timestamps at zero, which made x264/x265 output start two
frames late), and the joined video gets decode timestamps from
:class:`engine.video.timing.DecodeTimestamps`, which rise across every join. Copied streams keep
their timestamps, shifted by the cut; damaged ones are mended (:class:`PacketTimeline`) with one
warning per stream. Nothing is moved by the output muxer: packets that would start before zero in
a container that cannot hold that are left out (an AAC encoder's priming packet), and text
subtitles are trimmed to the cut instead.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from engine.errors import ArchivistError
from engine.video.probe import open_input
from engine.video.streams import StreamPlan, add_planned_streams, rules_for
from engine.video.timing import DecodeTimestamps, PacketTimeline

log = logging.getLogger(__name__)


@dataclass
class Segment:
    """One finished segment file, as recorded in ``state.json``: where it lies on the output's timeline.

    ``first_pts`` is the output timestamp of its first frame in the video time base; ``frames``
    its frame count; ``reorder`` the encoder's reorder depth (see :class:`SegmentWriter`).
    Boundaries come from the record, never from ``--segment-frames`` arithmetic, so a segment
    closed early (a pause) joins like any other.
    """

    path: Path
    first_pts: int
    frames: int
    reorder: int | None = 0


@dataclass
class VideoTrack:
    """How the restored video stream is declared in the final file."""

    time_base: Fraction  # of Segment.first_pts
    rate: Fraction  # declared frame rate (the source's)
    tags: dict  # colour primaries, transfer, matrix, range, sample aspect ratio, rotation
    disposition: int = 0
    metadata: dict | None = None  # the source video stream's language and title
    output_time_base: Fraction | None = None  # AVI counts frames: 1/rate there; else the source's


def assemble(segments: list[Segment], video: VideoTrack, output: Path, source: str | None = None,
             plan: StreamPlan | None = None, offset: float = 0.0, end: float | None = None, *,
             into: Path) -> None:
    """Join ``segments`` into the file ``into``, a hidden partial name of ``output`` (whose suffix
    chooses the container), with ``source``'s other streams as ``plan`` says. The caller gives it
    its final name (:func:`engine.ownership.place`); on failure ``into`` is removed.

    ``offset``/``end`` (seconds of the source) restrict the side streams to the restored range;
    they are shifted by ``-offset`` like the video.
    """
    import av

    tmp = Path(into)
    rules = rules_for(output)
    try:
        out = av.open(str(tmp), "w", format=rules.format)
    except (OSError, av.error.FFmpegError) as exc:
        raise ArchivistError(f"{output}: cannot write: {getattr(exc, 'strerror', None) or exc}") from None
    inputs = []
    try:
        first = av.open(str(segments[0].path))
        inputs.append(first)
        vout = _add_video(out, first.streams.video[0], video)
        src = None
        added: dict[int, tuple] = {}
        if source is not None:
            src = open_input(source)
            inputs.append(src)
            if plan is not None:
                added = add_planned_streams(out, src, plan)
            out.metadata.update({k: v for k, v in src.metadata.items() if k.lower() not in ("encoder", "duration")})
            chapters = _shift_chapters(src.chapters(), offset, end)
            if chapters:
                out.set_chapters(chapters)
        out.start_encoding()
        streams: list[Iterator] = [_segment_packets(segments, vout, video, inputs)]
        if any(d.type != "attachment" for d, _, _ in added.values()):
            streams.append(_side_packets(src, added, offset, end, rules.negative_pts, rules.strict_dts))
        for _, _, packet in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            out.mux(packet)
        out.close()
        _store_aspect(tmp, output, rules.format, (video.tags or {}).get("sample_aspect_ratio"))
    except BaseException as exc:
        _close_all([out, *inputs])
        tmp.unlink(missing_ok=True)
        if isinstance(exc, (OSError, av.error.FFmpegError)):
            import errno

            if getattr(exc, "errno", None) == errno.ENOSPC:
                raise ArchivistError(f"{output}: no space left on device while assembling") from None
            raise ArchivistError(f"{output}: assembling the final file failed: {exc}") from None
        raise
    _close_all(inputs)


def _add_video(out, template, video: VideoTrack):
    vout = out.add_stream_from_template(template)
    vout.time_base = video.output_time_base or video.time_base
    # The declared rate (Matroska's default duration) is the source's, not one derived from a
    # segment's time base (which read as 12,800 fps).
    vout.codec_context.framerate = video.rate
    tags = dict(video.tags or {})
    rotation = tags.pop("rotation", 0)
    for name, value in tags.items():
        if value is not None:
            setattr(vout.codec_context, name, value)
    if rotation:
        # Pixels stay as stored; the display matrix tells players to turn them, as in the source.
        vout.set_display_rotation(rotation)
    if video.disposition:
        vout.disposition = video.disposition
    for key, value in (video.metadata or {}).items():
        vout.metadata[key] = value
    if (video.metadata or {}).get("title") and out.format.name in ("mp4", "mov"):
        vout.metadata["handler_name"] = video.metadata["title"]
    return vout


def _store_aspect(path: Path, output: Path, fmt: str, sar) -> None:
    """Matroska keeps a sample aspect ratio only as the track's display size, which FFmpeg's muxer
    writes from a field PyAV cannot set: :mod:`engine.video.matroska` writes it into the header."""
    if fmt != "matroska" or not sar or Fraction(sar) == 1:
        return
    from engine.video.matroska import set_display_aspect

    if not set_display_aspect(path, Fraction(sar)):
        log.warning("%s: the sample aspect ratio %s could not be written into the Matroska header: players show "
                    "square pixels unless the codec stores it (x264/x265 do)", output, sar)


def _close_all(containers) -> None:
    for c in containers:
        try:
            c.close()
        except Exception:  # noqa: BLE001 - best effort while unwinding
            pass


def _rescale(value: int, src: Fraction, dst: Fraction) -> int:
    return int(round(value * src / dst))


def _segment_packets(segments: list[Segment], vout, video: VideoTrack, inputs) -> Iterator[tuple]:
    import av

    tb = Fraction(vout.time_base)  # the muxer's, known now that the header is written
    step = max(1, int(round(1 / (video.rate * tb))))
    # A segment recorded without its reorder depth gets H.264's largest, which is always safe.
    dts = DecodeTimestamps(max(16 if s.reorder is None else s.reorder for s in segments), step)
    for number, seg in enumerate(segments):
        container = av.open(str(seg.path))
        inputs.append(container)
        stream = container.streams.video[0]
        stb = Fraction(stream.time_base)
        first = seg.first_pts * video.time_base  # seconds, exact
        base = None
        count = 0
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            if base is None:
                # A segment starts with its first frame (a key frame, shown first): put it back where
                # the record says, whatever shift the segment's muxer applied.
                base = stamp
            pts = int(round((first + (stamp - base) * stb) / tb))  # one rounding, not two
            duration = _rescale(packet.duration, stb, tb) if packet.duration else 0
            packet.pts, packet.dts = pts, dts.next(pts)
            packet.duration = duration
            packet.time_base = tb
            packet.stream = vout
            count += 1
            yield (float(packet.dts * tb), 0, packet)
        container.close()
        inputs.remove(container)
        if count != seg.frames:
            log.warning("segment %d (%s) holds %d frames, its record says %d", number, seg.path, count, seg.frames)
        log.debug("copied segment %d (%s)", number, seg.path)


def _side_packets(src, added: dict[int, tuple], offset: float, end: float | None,
                  negative_pts: bool, strict_dts: bool = True) -> Iterator[tuple]:
    """The side streams' packets in output time: copied (cut, trimmed, mended) or converted.

    Without a cut, packets before zero stay only where the container keeps them there
    (``negative_pts``, or a copied stream the plan found kept); otherwise the muxer would move
    every stream, the video too, later.
    """
    streams = [src.streams[i] for i, (d, _, _) in added.items() if d.type != "attachment"]
    timelines = {i: PacketTimeline(strict_dts, equal_is_damage=d.type != "subtitle") for i, (d, _, _) in added.items()}
    for packet in src.demux(streams):
        index = packet.stream.index
        d, new, converter = added[index]
        if packet.size == 0:
            continue
        if converter is not None and d.type == "audio":
            pieces = converter.feed(packet, offset, end)
        else:
            pieces = converter.feed(packet) if converter is not None else [packet]
            text = d.type == "subtitle" and (converter is not None or _is_text(packet.stream))
            lower = offset if (offset > 0 or not (negative_pts or d.keeps_early)) else None
            pieces = [p for p in (_cut(p, offset, end, lower, text) for p in pieces) if p is not None]
        yield from _emit(pieces, new, timelines[index])
    for index, (d, new, converter) in added.items():
        if converter is not None and d.type == "audio":
            yield from _emit(converter.flush(offset, end), new, timelines[index])
    for index, timeline in timelines.items():
        d, _, converter = added[index]
        if timeline.fixed:
            log.warning("stream %d (%s %s): damaged timestamps: %d packet(s) moved to keep them rising, as "
                        "FFmpeg does", index, d.type, d.codec, timeline.fixed)
        if converter is not None and converter.skipped:
            log.warning("stream %d (%s %s): %d damaged packet(s) could not be decoded and were skipped",
                        index, d.type, d.codec, converter.skipped)


def _emit(packets, stream, timeline: PacketTimeline) -> Iterator[tuple]:
    tb = Fraction(stream.time_base)
    for packet in packets:
        ptb = Fraction(packet.time_base)
        if ptb != tb:
            # Into the output stream's time base first, so that "rising" holds after the muxer's rounding.
            if packet.pts is not None:
                packet.pts = _rescale(packet.pts, ptb, tb)
            if packet.dts is not None:
                packet.dts = _rescale(packet.dts, ptb, tb)
            if packet.duration:
                packet.duration = _rescale(packet.duration, ptb, tb)
            packet.time_base = tb
        timeline.mend(packet)
        packet.stream = stream
        yield (float(packet.dts * tb), 1, packet)


def _is_text(stream) -> bool:
    from engine.video.streams import _PROP_TEXT_SUB, _properties

    return bool(_properties(stream) & _PROP_TEXT_SUB)


def _cut(packet, offset: float, end: float | None, lower: float | None, text: bool):
    """``packet`` restricted to ``[lower, end)`` seconds and shifted by ``-offset``; None when outside.

    A text subtitle on screen across a cut is kept, trimmed to it; anything else must start
    inside the range (audio and bitmap subtitles cannot be cut inside a packet).
    """
    tb = Fraction(packet.time_base)
    start = packet.pts if packet.pts is not None else packet.dts
    if start is None:
        return None
    stop = start + (packet.duration or 0)
    if end is not None:
        end_ticks = int(round(Fraction(end) / tb))
        if start >= end_ticks:
            return None
        if text:
            stop = min(stop, end_ticks)
    if lower is not None:
        low = int(round(Fraction(lower) / tb))
        if start < low:
            if not (text and stop > low):
                return None
            start = low
    shift = int(round(Fraction(offset) / tb)) if offset else 0
    gap = (packet.pts - packet.dts) if (packet.pts is not None and packet.dts is not None) else 0
    packet.pts = start - shift
    packet.dts = packet.pts - max(0, gap)
    packet.duration = max(0, stop - start)
    return packet


def _shift_chapters(chapters: list[dict], offset: float, end: float | None) -> list[dict]:
    out = []
    for ch in chapters:
        tb = Fraction(ch["time_base"])
        start_s, end_s = float(ch["start"] * tb), float(ch["end"] * tb)
        if end is not None and start_s >= end:
            continue
        if end_s <= offset:
            continue
        shift = int(round(offset / tb))
        c = dict(ch)
        c["start"] = max(0, ch["start"] - shift)
        c["end"] = ch["end"] - shift
        out.append(c)
    return out
