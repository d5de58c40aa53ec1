"""The final file: segments joined by stream copy, with the source's audio, subtitles, attachments,
chapters and metadata, written under a temporary name and renamed into place when complete."""

from __future__ import annotations

import heapq
import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from engine.errors import ArchivistError
from engine.video.probe import open_input

log = logging.getLogger(__name__)

# Codecs a container cannot hold are dropped with a warning (re-encoding text subtitles is left out).
_SUBTITLE_OK = {
    ".mp4": ("mov_text",),
    ".mov": ("mov_text",),
}


def temp_output_path(output: Path) -> Path:
    """``dir/.name.partial.ext``: the file being written; never looks finished."""
    return output.with_name(f".{output.stem}.partial{output.suffix}")


def assemble(segments: list[Path], source: str | None, output: Path, pts_offset: float = 0.0,
             end_time: float | None = None, video_tags: dict | None = None) -> None:
    """Join ``segments`` (NUT files with one video stream each) into ``output``.

    Audio, subtitle and attachment streams, chapters and global metadata come from ``source``
    (when given), restricted to ``[pts_offset, end_time)`` seconds and shifted by ``-pts_offset``.
    ``video_tags`` (colour primaries, transfer, matrix, range, sample aspect ratio, rotation) are set on the
    video stream, since the NUT segments do not carry them.
    """
    import av

    tmp = temp_output_path(output)
    try:
        out = av.open(str(tmp), "w")
    except (OSError, av.error.FFmpegError) as exc:
        raise ArchivistError(f"{output}: cannot write: {getattr(exc, 'strerror', None) or exc}") from None
    inputs = []
    try:
        first = av.open(str(segments[0]))
        inputs.append(first)
        vin = first.streams.video[0]
        vout = out.add_stream_from_template(vin)
        vout.time_base = vin.time_base
        tags = dict(video_tags or {})
        rotation = tags.pop("rotation", 0)
        for name, value in tags.items():
            if value is not None:
                setattr(vout.codec_context, name, value)
        if rotation:
            # Pixels stay as stored; the display matrix tells players to turn them, as in the source.
            vout.set_display_rotation(rotation)
        src = None
        side: list[tuple] = []
        if source is not None:
            src = open_input(source)
            inputs.append(src)
            side = _add_side_streams(out, src, output)
            out.metadata.update({k: v for k, v in src.metadata.items() if k.lower() not in ("encoder", "duration")})
            chapters = _shift_chapters(src.chapters(), pts_offset, end_time)
            if chapters:
                out.set_chapters(chapters)
        out.start_encoding()
        streams: list[Iterator] = [_segment_packets(segments, vout, inputs)]
        if side:
            streams.append(_side_packets(src, side, pts_offset, end_time))
        for _, _, packet in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            out.mux(packet)
        out.close()
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
    os.replace(tmp, output)


def _close_all(containers) -> None:
    for c in containers:
        try:
            c.close()
        except Exception:  # noqa: BLE001 - best effort while unwinding
            pass


def _segment_packets(segments: list[Path], vout, inputs) -> Iterator[tuple]:
    import av

    for number, path in enumerate(segments):
        container = av.open(str(path))
        inputs.append(container)
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.dts is None and packet.pts is None:
                continue
            stamp = packet.dts if packet.dts is not None else packet.pts
            t = float(stamp * packet.time_base)
            packet.stream = vout
            yield (t, 0, packet)
        container.close()
        inputs.remove(container)
        log.debug("copied segment %d (%s)", number, path)


def _add_side_streams(out, src, output: Path) -> list[tuple]:
    suffix = output.suffix.lower()
    pairs = []
    for s in src.streams:
        if s.type not in ("audio", "subtitle", "attachment", "data"):
            continue
        if s.type == "data":
            continue
        if s.type == "attachment" and suffix not in (".mkv",):
            log.warning("attachment stream %d dropped: %s files cannot hold attachments", s.index, suffix)
            continue
        codec = s.codec_context.name if s.codec_context is not None else None
        if s.type == "subtitle" and suffix in _SUBTITLE_OK and codec not in _SUBTITLE_OK[suffix]:
            log.warning("subtitle stream %d (%s) dropped: %s files cannot hold it", s.index, codec, suffix)
            continue
        try:
            if s.type == "attachment":
                new = out.add_attachment(s.name, s.mimetype, s.data)
            else:
                new = out.add_stream_from_template(s)
        except Exception as exc:  # noqa: BLE001 - an FFmpeg refusal for one side stream is not fatal
            log.warning("stream %d (%s %s) dropped: %s", s.index, s.type, codec, exc)
            continue
        for key, value in s.metadata.items():
            new.metadata[key] = value
        pairs.append((s, new))
    return pairs


def _side_packets(src, pairs, offset: float, end: float | None) -> Iterator[tuple]:
    mapping = {s.index: new for s, new in pairs if s.type != "attachment"}
    if not mapping:
        return
    streams = [s for s, _ in pairs if s.type != "attachment"]
    shift_cache: dict[int, int] = {}
    for packet in src.demux(streams):
        if packet.dts is None and packet.pts is None:
            continue
        new = mapping[packet.stream.index]
        tb = packet.time_base
        stamp = packet.pts if packet.pts is not None else packet.dts
        t = float(stamp * tb)
        if (offset and t < offset - 1e-6) or (end is not None and t >= end - 1e-6):
            continue
        if offset:
            shift = shift_cache.setdefault(packet.stream.index, int(round(offset / Fraction(tb))))
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
        packet.stream = new
        dts = packet.dts if packet.dts is not None else packet.pts
        yield (float(dts * tb), 1, packet)


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
