"""The video stream as packets: an index of the source, segment bundles, and decoding a bundle.

A cluster run (:mod:`engine.cluster`) sends each worker the compressed packets of one segment, not
the file: the head builds a :class:`PacketIndex` by demuxing the video stream once (no decoding),
cuts the frames into segments on the same grid as a local run (:func:`plan_segments`), and reads
each segment's packets from the keyframe before it (:func:`read_bundle`). A worker decodes the
bundle with a bare decoder opened from the stream's codec parameters (:func:`decode_bundle`) and
gets the very frames, with the very timestamps, that the local decoder gives for that range.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from engine.document import Conflict
from engine.errors import ArchivistError
from engine.video.frames import SourceFrame, frame_pixels
from engine.video.probe import open_input, pick_video_stream

log = logging.getLogger(__name__)

# Codec context fields a bare decoder needs from the container (the bitstream may not repeat them).
_CODEC_FIELDS = ("width", "height", "pix_fmt", "colorspace", "color_range", "color_primaries", "color_trc")


@dataclass
class PacketIndex:
    """The video stream's packets in decode order: timestamps and keyframe flags, no payload."""

    path: Path
    codec: dict  # name, extradata and _CODEC_FIELDS: what opens a decoder without the file
    time_base: Fraction
    pts: list[int] = field(default_factory=list)
    dts: list[int | None] = field(default_factory=list)
    keyframe: list[bool] = field(default_factory=list)

    def frame_pts(self) -> list[int]:
        """Every frame's timestamp in presentation order (what the decoder will give)."""
        return sorted(set(self.pts))


@dataclass
class SegmentRange:
    """One segment of a cluster run: its frames' timestamps and the packets that decode them."""

    number: int
    first_pts: int
    last_pts: int
    frames: int
    first_packet: int  # decode-order positions in the index: [first_packet, end_packet)
    end_packet: int


def build_index(path: str | Path) -> PacketIndex:
    """Demux the video stream of ``path`` once and record every packet's timestamps.

    Raises :class:`ArchivistError` for a stream whose packets lack presentation timestamps (a
    segment's frames could not be told apart without decoding the whole file).
    """
    path = Path(path)
    container = open_input(path)
    try:
        stream = pick_video_stream(container, path)
        cc = stream.codec_context
        codec = {"name": cc.name, "extradata": bytes(cc.extradata) if cc.extradata else None}
        for name in _CODEC_FIELDS:
            codec[name] = getattr(cc, name)
        index = PacketIndex(path, codec, Fraction(stream.time_base))
        for packet in container.demux(stream):
            if not packet.size:
                continue
            if packet.pts is None:
                raise Conflict(("cluster",), f"{path}: video packets without timestamps: {{0}} cannot cut this file "
                               "into segments (restore it without {0}, or remux it to .mkv first)")
            index.pts.append(int(packet.pts))
            index.dts.append(None if packet.dts is None else int(packet.dts))
            index.keyframe.append(bool(packet.is_keyframe))
    finally:
        container.close()
    if not index.pts or not index.keyframe[0]:
        raise Conflict(("cluster",), f"{path}: the video stream does not start with a keyframe: {{0}} cannot cut it")
    return index


def plan_segments(index: PacketIndex, after_pts: int | None, frames_before: int, segment_frames: int,
                  first_number: int) -> list[SegmentRange]:
    """The segments still to do: frames after ``after_pts``, cut where a local run cuts them.

    A local run closes a segment whenever the count of frames done since the first frame is a
    multiple of ``segment_frames`` (also after a pause split one), so the same rule here gives the
    same segments and the same files.
    """
    frames = index.frame_pts()
    start = 0 if after_pts is None else bisect.bisect_right(frames, after_pts)
    keys = [i for i, k in enumerate(index.keyframe) if k]
    key_pts = [index.pts[i] for i in keys]
    # For each decode position, the smallest pts from there on: a segment's packets end where every
    # later packet shows after its last frame (B-frames arrive after the frames they precede).
    suffix_min = list(index.pts)
    for i in range(len(suffix_min) - 2, -1, -1):
        suffix_min[i] = min(suffix_min[i], suffix_min[i + 1])
    ranges = []
    done = frames_before
    number = first_number
    while start < len(frames):
        count = segment_frames - done % segment_frames
        chunk = frames[start:start + count]
        first, last = chunk[0], chunk[-1]
        # The last keyframe, in decode order, that shows at or before the segment's first frame.
        candidates = [keys[j] for j in range(len(keys)) if key_pts[j] <= first]
        first_packet = candidates[-1] if candidates else 0
        end_packet = first_packet
        while end_packet < len(suffix_min) and suffix_min[end_packet] <= last:
            end_packet += 1
        ranges.append(SegmentRange(number, first, last, len(chunk), first_packet, end_packet))
        start += len(chunk)
        done += len(chunk)
        number += 1
    return ranges


def read_bundle(index: PacketIndex, segment: SegmentRange) -> list[tuple[bytes, int, int | None, bool, int]]:
    """The packets ``[first_packet, end_packet)`` of the index as (payload, pts, dts, keyframe, duration)."""
    import av

    container = open_input(index.path)
    try:
        stream = pick_video_stream(container, index.path)
        want_pts = index.pts[segment.first_packet]
        bundle: list = []
        # A seek may land after the keyframe (MPEG-TS is searched by bytes): then seek 1, 4, 16... s earlier.
        tb = Fraction(stream.time_base)
        aims = [want_pts] + [want_pts - int(back / tb) for back in (1, 4, 16, 64, 256, 1024)
                             if want_pts - int(back / tb) > 0] + [0]
        for aim in aims:
            try:
                container.seek(aim, stream=stream, backward=True)
            except av.error.FFmpegError:
                container.seek(0, stream=stream)
            bundle, position, late = [], None, False
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                if position is None:
                    if packet.pts is not None and packet.pts > want_pts and aim:
                        late = True
                        break
                    if not (packet.is_keyframe and packet.pts == want_pts):
                        continue  # the seek landed earlier: skip to the segment's keyframe
                    position = segment.first_packet
                bundle.append((bytes(packet), int(packet.pts), None if packet.dts is None else int(packet.dts),
                               bool(packet.is_keyframe), int(packet.duration or 0)))
                position += 1
                if position >= segment.end_packet:
                    break
            if not late:
                break
    finally:
        container.close()
    if len(bundle) != segment.end_packet - segment.first_packet:
        raise ArchivistError(f"{index.path}: segment {segment.number + 1}: read {len(bundle)} packets, the index "
                             f"says {segment.end_packet - segment.first_packet} (the file changed?)")
    return bundle


def decode_bundle(codec: dict, time_base: Fraction, bundle, segment: SegmentRange, first_index: int,
                  high_bit_depth: bool, gray: bool, threads: int = 0) -> Iterator[SourceFrame]:
    """Decode a segment's packets and yield its frames (``first_pts``..``last_pts``) as :class:`SourceFrame`.

    Frames before the segment (from its keyframe on) are decoded for their references and dropped.
    Raises :class:`ArchivistError` when the decoder gives another number of frames than the index.
    """
    import av

    decoder = av.CodecContext.create(codec["name"], "r")
    if codec.get("extradata"):
        decoder.extradata = codec["extradata"]
    for name in _CODEC_FIELDS:
        if codec.get(name) is not None:
            setattr(decoder, name, codec[name])
    decoder.thread_type = "AUTO"
    decoder.thread_count = threads
    index = first_index
    previous = None

    def take(frames):
        nonlocal index, previous
        for frame in frames:
            pts = frame.pts if frame.pts is not None else frame.dts
            if pts is None or pts < segment.first_pts or pts > segment.last_pts:
                continue
            if previous is not None and pts <= previous:
                continue  # as the local decoder's timeline drops a frame that does not advance
            previous = pts
            yield SourceFrame(index, int(pts), time_base, frame_pixels(frame, high_bit_depth, gray),
                              int(frame.duration or 0))
            index += 1

    try:
        for payload, pts, dts, keyframe, duration in bundle:
            packet = av.Packet(payload)
            packet.pts, packet.dts, packet.time_base = pts, dts, time_base
            packet.duration = duration
            if keyframe:
                packet.is_keyframe = True
            yield from take(decoder.decode(packet))
        yield from take(decoder.decode(None))
    except av.error.FFmpegError as exc:
        raise ArchivistError(f"segment {segment.number + 1}: decoding failed ({exc})") from None
    if index - first_index != segment.frames:
        raise ArchivistError(f"segment {segment.number + 1}: decoded {index - first_index} frames, the index says "
                             f"{segment.frames}")
