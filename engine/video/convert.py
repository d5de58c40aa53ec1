"""Converting a side stream while the final file is assembled: audio re-encoded, text subtitles re-written.

:class:`AudioConverter` decodes the source's audio and encodes it with AAC, Opus or FLAC. The
audio is cut to the restored range sample-exactly and comes out continuous from its first sample
(damaged or jumping input timestamps do not reach the output). :class:`SubtitleConverter` turns
one text subtitle format into another through FFmpeg's ASS events; each cue keeps its source
packet's time and duration.
"""

from __future__ import annotations

import logging
from fractions import Fraction

import numpy as np

log = logging.getLogger(__name__)

_OPUS_RATES = (48000, 24000, 16000, 12000, 8000)
_USUAL_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


class AudioConverter:
    """Decode one source audio stream and encode it into a new stream of ``out``."""

    def __init__(self, src_stream, out, encoder: str):
        cc = src_stream.codec_context
        self.src = src_stream
        rate = cc.sample_rate or 48000
        if encoder == "libopus" and rate not in _OPUS_RATES:
            rate = 48000
        self.rate = rate
        channels = cc.channels or 2
        stream = out.add_stream(encoder, rate=rate)
        stream.layout = _native_layout(cc.layout, channels)
        if encoder == "flac":
            # Deeper than 16 bits stays deeper (TrueHD and most FLAC masters are 24-bit).
            deep = (cc.format is not None and cc.format.bytes > 2) or (getattr(cc, "bits_per_raw_sample", 0) or 0) > 16
            stream.format = "s32" if deep else "s16"
        elif encoder == "libopus":
            stream.format = "flt"
        else:
            stream.bit_rate = 64000 * max(2, channels)
        if encoder == "libopus":
            stream.bit_rate = 64000 * max(2, channels)
        stream.time_base = Fraction(1, rate)
        self.stream = stream
        self.resampler = None
        self.next_pts: int | None = None  # in 1/rate, output time
        self.skipped = 0

    def feed(self, packet, offset: float, end: float | None) -> list:
        """Decode ``packet`` and return the encoded packets for the part inside ``[offset, end)`` seconds.

        A packet the decoder refuses (damaged) is skipped and counted in ``skipped``, as FFmpeg's
        command line goes on past one: the restore is not lost for a click.
        """
        import av

        try:
            frames = self.src.codec_context.decode(packet)
        except av.error.FFmpegError:
            self.skipped += 1
            return []
        return self._encode(frames, offset, end)

    def flush(self, offset: float, end: float | None) -> list:
        """The last packets (decoder and encoder drained)."""
        try:
            frames = self.src.codec_context.decode(None)
        except Exception:  # noqa: BLE001 - some decoders refuse a flush packet; nothing is held back then
            frames = []
        packets = self._encode(frames, offset, end)
        packets += self._encode_frames(self._resample(None))
        packets += list(self.stream.encode(None))
        return packets

    def _encode(self, frames, offset: float, end: float | None) -> list:
        packets = []
        for frame in frames:
            rate = frame.sample_rate
            if frame.pts is not None and frame.time_base is not None:
                t0 = float(frame.pts * frame.time_base)
            elif self.next_pts is not None:
                t0 = None
            else:
                t0 = offset
            if t0 is not None:
                a = max(0, int(round((offset - t0) * rate)))
                b = frame.samples if end is None else min(frame.samples, int(round((end - t0) * rate)))
                if b <= a:
                    continue
                if (a, b) != (0, frame.samples):
                    frame = _slice(frame, a, b)
                if self.next_pts is None:
                    self.next_pts = int(round((max(t0, offset) - offset) * self.rate))
            frame.pts = None
            resampled = self._resample(frame)
            packets += self._encode_frames(resampled)
        return packets

    def _resample(self, frame):
        import av

        if self.resampler is None:
            cc = self.stream.codec_context
            self.resampler = av.AudioResampler(format=cc.format, layout=cc.layout, rate=self.rate)
        return self.resampler.resample(frame)

    def _encode_frames(self, frames) -> list:
        packets = []
        for f in frames:
            if self.next_pts is None:
                self.next_pts = 0
            f.pts = self.next_pts
            f.time_base = Fraction(1, self.rate)
            self.next_pts += f.samples
            packets += self.stream.encode(f)
        return packets


def _native_layout(layout, channels: int):
    """The source's channel layout, or the usual one for its channel count where it names none (PCM in Matroska)."""
    if layout is not None and layout.nb_channels and not layout.name.endswith("channels"):
        return layout
    count = channels or (layout.nb_channels if layout is not None else 2)
    return _USUAL_LAYOUTS.get(count, "7.1")


def _slice(frame, a: int, b: int):
    """Samples ``[a, b)`` of an audio frame, as a new frame of the same format."""
    import av

    data = frame.to_ndarray()
    if frame.format.is_planar:
        part = data[:, a:b]
    else:
        channels = frame.layout.nb_channels
        part = data[:, a * channels:b * channels]
    out = av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format=frame.format.name, layout=frame.layout)
    out.sample_rate = frame.sample_rate
    out.time_base = frame.time_base
    return out


class SubtitleConverter:
    """Re-write one text subtitle stream in another text format (``srt``, ``ass``, ``mov_text``, ``webvtt``)."""

    def __init__(self, src_stream, out, encoder: str):
        self.src = src_stream
        decoder = src_stream.codec_context
        decoder.open(strict=False)  # the decoder's ASS header exists only once it is open
        stream = out.add_stream(encoder)
        stream.time_base = Fraction(1, 1000)
        header = decoder.subtitle_header
        if header:
            stream.codec_context.subtitle_header = header
        self.stream = stream
        self.skipped = 0

    def feed(self, packet) -> list:
        """The re-written cue of ``packet`` (time, duration and time base of the source packet), or nothing."""
        import av

        if packet.pts is None and packet.dts is None:
            return []
        try:
            cues = self.src.codec_context.decode2(packet)
            if cues is None or len(cues) == 0:
                return []
            new = self.stream.codec_context.encode_subtitle(cues)
        except av.error.FFmpegError:  # a damaged cue is skipped (and counted), not the whole file
            self.skipped += 1
            return []
        new.pts = packet.pts if packet.pts is not None else packet.dts
        new.dts = new.pts
        duration = packet.duration or 0
        if not duration and cues.end_display_time > cues.start_display_time:
            duration = int(round(Fraction(cues.end_display_time - cues.start_display_time, 1000) / packet.time_base))
        new.duration = duration
        new.time_base = packet.time_base
        return [new]
