"""Timestamps: damaged input timestamps mended as FFmpeg mends them, and decode timestamps for joined segments.

Three small rules, each in one class:

- :class:`FrameTimeline`: decoded video frames in presentation order. A frame without a
  timestamp gets the previous one plus one frame; a frame whose timestamp does not come after the
  previous frame's (a duplicate or a step back) is dropped, as FFmpeg's ``-fps_mode vfr`` does.
- :class:`PacketTimeline`: packets of a stream copied (or converted) into the output. Their
  decode timestamps must rise; one that does not is moved just after the previous one (and its
  presentation timestamp with it where needed), as FFmpeg's muxing stage does.
- :class:`DecodeTimestamps`: the decode timestamps of the joined video. Segments are separate
  encodes, and an encoder with B-frames starts each one with decode timestamps below its first
  presentation timestamp, so where two segments meet they would step back. Here every packet's
  decode timestamp is the presentation timestamp of the frame ``delay`` places earlier in display
  order (the stream's reorder depth), which always rises and never passes the packet's own
  presentation timestamp, across every join.

Each class counts what it mended; the caller logs one warning per stream with the counts.
"""

from __future__ import annotations

import heapq
import logging

log = logging.getLogger(__name__)


class FrameTimeline:
    """Mends the presentation timestamps of decoded frames (see the module docstring).

    ``step`` is one frame in the stream's time base (at least 1); ``previous`` the timestamp of
    the frame before the first one seen (None at the start of the stream).
    """

    def __init__(self, step: int, previous: int | None = None):
        self.step = max(1, int(step))
        self.previous = previous
        self.filled = 0
        self.dropped = 0

    def accept(self, pts: int | None) -> int | None:
        """The timestamp to give this frame, or None to drop it."""
        if pts is None:
            if self.previous is None:
                pts = 0
            else:
                pts = self.previous + self.step
            self.filled += 1
        elif self.previous is not None and pts <= self.previous:
            self.dropped += 1
            return None
        self.previous = pts
        return pts

    @property
    def mended(self) -> int:
        return self.filled + self.dropped

    def describe(self) -> str:
        parts = []
        if self.dropped:
            parts.append(f"{self.dropped} frame(s) dropped (timestamp not after the previous frame's)")
        if self.filled:
            parts.append(f"{self.filled} frame(s) without a timestamp given the previous one plus one frame")
        return ", ".join(parts)


class PacketTimeline:
    """Keeps one output stream's decode timestamps rising (see the module docstring).

    ``strict``: each must be above the one before (MP4, MOV); otherwise equal ones are allowed
    (Matroska, where TrueHD's 0.8 ms frames share millisecond timestamps).
    """

    def __init__(self, strict: bool = True, equal_is_damage: bool = True):
        self.strict = strict
        # Two subtitle cues may start together: moving the second by one tick is no repair.
        self.equal_is_damage = equal_is_damage
        self.last_dts: int | None = None
        self.last_duration = 0
        self.fixed = 0

    def mend(self, packet) -> None:
        """Set ``packet.dts`` (and ``pts`` where needed) so that the stream's decode timestamps rise."""
        dts, pts = packet.dts, packet.pts
        if dts is None:
            dts = pts
        if dts is None:
            dts = 0 if self.last_dts is None else self.last_dts + max(1, self.last_duration)
            self.fixed += 1
        floor = None if self.last_dts is None else self.last_dts + (1 if self.strict else 0)
        if floor is not None and dts < floor:
            if dts < self.last_dts or self.equal_is_damage:
                self.fixed += 1
            dts = floor
        if pts is None or pts < dts:
            pts = dts
        packet.dts, packet.pts = dts, pts
        self.last_dts = dts
        self.last_duration = packet.duration or 0


class DecodeTimestamps:
    """Decode timestamps for a video stream given its packets' presentation timestamps in decode order.

    ``delay`` is the stream's reorder depth in frames (0 for intra-only codecs, 2 for x264/x265
    with B-pyramids); a larger value is also correct, only later. ``step`` is one frame in the
    stream's time base: the first ``delay`` packets get decode timestamps that many frames before
    the first presentation timestamp, as the encoders themselves write them. The first packet must
    be the first frame shown (a key frame), as every encode starts.
    """

    def __init__(self, delay: int, step: int):
        self.delay = max(0, int(delay))
        self.step = max(1, int(step))
        self.pending: list[int] = []
        self.count = 0
        self.first: int | None = None
        self.last: int | None = None

    def next(self, pts: int) -> int:
        """The decode timestamp of the next packet (in decode order), whose presentation timestamp is ``pts``."""
        heapq.heappush(self.pending, pts)
        if self.first is None:
            self.first = pts
        index = self.count
        self.count += 1
        if index < self.delay:
            dts = self.first - (self.delay - index) * self.step
        else:
            # Every frame shown at or before position index - delay has been seen by now (that is
            # what a reorder depth of `delay` means), so the smallest timestamp not yet used is its.
            dts = heapq.heappop(self.pending)
        if self.last is not None and dts <= self.last:  # only if the stated delay was too small
            dts = self.last + 1
        self.last = dts
        return dts
