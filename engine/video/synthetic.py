"""Small generated clips with known content and timestamps, for tests, benchmarks and ``doctor``."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def pattern_frame(index: int, width: int, height: int, high_bit_depth: bool = False) -> np.ndarray:
    """A moving colour pattern: gradients, a checkerboard and a bar that moves with ``index``."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = (x + index * 3) % width / max(width - 1, 1)
    g = y / max(height - 1, 1)
    b = (((x + index) // 8 + y // 8) % 2) * 0.6 + 0.2
    img = np.stack([r, g, b], axis=-1)
    bar = (np.abs(x - (index * 5) % width) < 3)
    img[bar] = (1.0, 1.0, 1.0)
    if high_bit_depth:
        return np.round(img * 65535).astype(np.uint16)
    return np.round(img * 255).astype(np.uint8)


def write_test_clip(path: str | Path, frames: int = 24, width: int = 64, height: int = 48, codec: str = "libx264",
                    pix_fmt: str = "yuv420p", rate: Fraction = Fraction(24), pts: list[int] | None = None,
                    time_base: Fraction | None = None, colorspace: int | None = 1, color_range: int = 1,
                    color_primaries: int | None = None, color_trc: int | None = None,
                    sample_aspect_ratio: Fraction | None = None, audio: bool = False,
                    subtitles: bool = False, chapters: bool = False, options: dict | None = None,
                    interlaced: bool = False, attachment: bool = False, rotation: int = 0,
                    gray: bool = False) -> Path:
    """Encode a pattern clip. ``pts`` (in ``time_base``) makes it variable-frame-rate.

    ``gray``: the pattern in black and white (three equal channels, converted to ``pix_fmt`` by
    FFmpeg as a gray film transferred to ``yuv420p`` would be).

    ``colorspace`` is the AVColorSpace used to make YUV and tagged on the stream (None: convert with
    BT.601 and tag nothing). ``audio`` adds a 440 Hz sine (AAC, 48 kHz) as long as the video,
    ``subtitles`` one SubRip cue, ``chapters`` two chapters, ``attachment`` a small font file (Matroska).
    """
    import av

    from engine.video.frames import _SWS_MATRIX

    path = Path(path)
    time_base = time_base or (1 / rate)
    if pts is None:
        step = int(round(1 / (rate * time_base)))
        pts = [i * step for i in range(frames)]
    frames = len(pts)
    high = av.VideoFormat(pix_fmt).components[0].bits > 8
    container = av.open(str(path), "w")
    opts = dict(options or {})
    if codec == "libx265":
        opts.setdefault("x265-params", "log-level=error")
    vs = container.add_stream(codec, rate=rate, options=opts)
    vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
    vs.time_base = time_base
    vs.codec_context.time_base = time_base
    cc = vs.codec_context
    if colorspace is not None:
        cc.colorspace = colorspace
    if color_primaries is not None:
        cc.color_primaries = color_primaries
    if color_trc is not None:
        cc.color_trc = color_trc
    cc.color_range = color_range
    if sample_aspect_ratio:
        cc.sample_aspect_ratio = sample_aspect_ratio
    if interlaced:
        cc.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
        cc.field_order = 2
    if rotation:
        vs.set_display_rotation(rotation)
    aus = None
    if audio:
        aus = container.add_stream("aac", rate=48000)
        aus.layout = "mono"
        aus.metadata["language"] = "fra"
    if subtitles:
        ss = container.add_mux_stream("subrip")
        ss.metadata["language"] = "eng"
    if attachment:
        container.add_attachment(name="font.ttf", mimetype="application/x-truetype-font", data=b"FONTDATA")
    if chapters:
        end = int(round(float((pts[-1] + 1) * time_base) * 1000))
        container.set_chapters([
            {"id": 1, "start": 0, "end": end // 2, "time_base": Fraction(1, 1000), "metadata": {"title": "One"}},
            {"id": 2, "start": end // 2, "end": end, "time_base": Fraction(1, 1000), "metadata": {"title": "Two"}},
        ])
    sws = _SWS_MATRIX.get(colorspace or 5, 5)
    for i, p in enumerate(pts):
        rgb = pattern_frame(i, width, height, high)
        if gray:
            rgb = np.repeat(np.round(rgb.astype(np.float32).mean(axis=2, keepdims=True)).astype(rgb.dtype), 3, axis=2)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if high else "rgb24")
        if not av.VideoFormat(pix_fmt).is_rgb:
            frame = frame.reformat(format=pix_fmt, src_colorspace=sws, dst_colorspace=sws, src_color_range=2,
                                   dst_color_range=color_range)
        else:
            frame = frame.reformat(format=pix_fmt)
        frame.pts = p
        frame.time_base = time_base
        container.mux(vs.encode(frame))
    container.mux(vs.encode(None))
    if aus is not None:
        seconds = float((pts[-1] + step_of(pts)) * time_base)
        total = int(seconds * 48000)
        t = 0
        while t < total:
            n = min(1024, total - t)
            samples = (0.3 * np.sin(2 * np.pi * 440 * (np.arange(t, t + n) / 48000))).astype(np.float32)
            af = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
            af.sample_rate = 48000
            af.pts = t
            af.time_base = Fraction(1, 48000)
            container.mux(aus.encode(af))
            t += n
        container.mux(aus.encode(None))
    if subtitles:
        _mux_subtitle(container, ss)
    container.close()
    return path


def step_of(pts: list[int]) -> int:
    return pts[-1] - pts[-2] if len(pts) > 1 else 1


def _mux_subtitle(container, stream) -> None:
    import av

    text = b"Hello"
    packet = av.Packet(text)
    packet.stream = stream
    packet.time_base = Fraction(1, 1000)
    packet.pts = 0
    packet.dts = 0
    packet.duration = 200
    container.mux(packet)


def write_sync_clip(path: str | Path, rate: Fraction = Fraction(24), seconds: float = 2.0, width: int = 128,
                    height: int = 96, codec: str = "libx264", time_base: Fraction | None = None,
                    pts: list[int] | None = None, flash: float = 1.0, audio_codec: str | None = "aac",
                    sample_rate: int = 48000, options: dict | None = None) -> Path:
    """A sync test: black frames with one white frame at ``flash`` seconds, and a 1 kHz tone from there.

    ``pts`` (in ``time_base``) gives variable-rate frame times; the white frame is the first at or
    after ``flash``. The muxer picks its own time base where the container insists (MP4), so read
    the file back for the exact timestamps. ``audio_codec`` None writes no audio.
    """
    import av

    path = Path(path)
    time_base = time_base or (1 / rate)
    if pts is None:
        pts = [int(round(i / (rate * time_base))) for i in range(int(round(seconds * rate)))]
    seconds = float(pts[-1] * time_base) + float(1 / rate)
    container = av.open(str(path), "w")
    opts = dict(options or {})
    if codec == "libx265":
        opts.setdefault("x265-params", "log-level=error")
    vs = container.add_stream(codec, rate=rate, options=opts)
    vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
    vs.time_base = time_base
    vs.codec_context.time_base = time_base
    aus = None
    if audio_codec is not None:
        aus = container.add_stream(audio_codec, rate=sample_rate)
        aus.layout = "mono"
    flashed = False
    for p in pts:
        white = not flashed and float(p * time_base) >= flash - 1e-9
        flashed = flashed or white
        rgb = np.full((height, width, 3), 255 if white else 0, np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = p
        frame.time_base = time_base
        container.mux(vs.encode(frame))
    container.mux(vs.encode(None))
    if aus is not None:
        total = int(seconds * sample_rate)
        onset = int(round(flash * sample_rate))
        t = 0
        while t < total:
            n = min(1024, total - t)
            k = np.arange(t, t + n)
            samples = np.where(k >= onset, 0.5 * np.sin(2 * np.pi * 1000 * k / sample_rate), 0.0).astype(np.float32)
            af = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
            af.sample_rate = sample_rate
            af.pts = t
            af.time_base = Fraction(1, sample_rate)
            container.mux(aus.encode(af))
            t += n
        container.mux(aus.encode(None))
    container.close()
    return path


# A minimal ASS script header: the ASS encoder needs one, and it becomes Matroska's codec private data.
ASS_HEADER = (b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
              b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
              b"Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
              b"Alignment, MarginL, MarginR, MarginV, Encoding\n"
              b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
              b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n")


def write_streams_clip(path: str | Path, frames: int = 24, rate: Fraction = Fraction(24), width: int = 64,
                       height: int = 48, audio: list[dict] | None = None, subtitles: list[dict] | None = None,
                       attachment: bool = False, video: dict | None = None) -> Path:
    """A clip with any mix of audio and subtitle streams, each with its tags and dispositions.

    ``audio``: dicts with ``codec`` (an FFmpeg encoder: aac, flac, libopus, ac3, pcm_s16le ...),
    optional ``language``, ``title``, ``disposition`` (names: default, forced, ...), ``rate``; the
    sound is a 1 kHz tone from 0.5 s. ``subtitles``: dicts with ``codec`` (srt, ass, webvtt,
    mov_text; or dvb_subtitle / dvd_subtitle / hdmv_pgs_subtitle, written as opaque packets),
    ``cues`` [(start s, end s, ASS text)], tags and dispositions as for audio. ``video``: the
    video stream's tags and dispositions.
    """
    import av

    path = Path(path)
    container = av.open(str(path), "w")
    vs = container.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
    vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
    vs.time_base = 1 / rate
    vs.codec_context.time_base = 1 / rate

    def tag(stream, spec):
        for key in ("language", "title"):
            if spec.get(key):
                stream.metadata[key] = spec[key]
        flags = 0
        for name in spec.get("disposition", ()):
            flags |= int(getattr(av.stream.Disposition, name))
        stream.disposition = flags

    tag(vs, video or {})
    astreams = []
    for spec in audio or []:
        s = container.add_stream(spec["codec"], rate=spec.get("rate", 48000))
        s.layout = spec.get("layout", "stereo")
        tag(s, spec)
        astreams.append(s)
    sstreams = []
    for spec in subtitles or []:
        if spec["codec"] in ("dvb_subtitle", "dvd_subtitle", "hdmv_pgs_subtitle"):
            s = container.add_mux_stream(spec["codec"])
        else:
            s = container.add_stream(spec["codec"])
            s.codec_context.subtitle_header = ASS_HEADER  # every text encoder reads its styles from it
        s.time_base = Fraction(1, 1000)
        tag(s, spec)
        sstreams.append((s, spec))
    if attachment:
        container.add_attachment(name="font.ttf", mimetype="application/x-truetype-font", data=b"FONTDATA")
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(pattern_frame(i, width, height), format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        frame.time_base = 1 / rate
        container.mux(vs.encode(frame))
    container.mux(vs.encode(None))
    seconds = frames / rate
    for s in astreams:
        sr = s.codec_context.sample_rate
        channels = s.codec_context.layout.nb_channels
        total, t = int(seconds * sr), 0
        while t < total:
            n = min(1024, total - t)
            k = np.arange(t, t + n)
            tone = np.where(k >= sr // 2, 0.5 * np.sin(2 * np.pi * 1000 * k / sr), 0.0).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(np.repeat(tone[None], channels, axis=0), format="fltp",
                                               layout=s.codec_context.layout)
            frame.sample_rate = sr
            frame.pts = t
            frame.time_base = Fraction(1, sr)
            container.mux(s.encode(frame))
            t += n
        container.mux(s.encode(None))
    for s, spec in sstreams:
        for start, end, text in spec.get("cues", [(0.2, 0.6, "Hello")]):
            ms = int(round(start * 1000)), int(round(end * 1000))
            if s.codec_context is None:  # a bitmap format: opaque bytes, the muxer does not look inside
                packet = av.Packet(b"\x0f\x10\x00\x06\x00\x00\x00\x00\x00\x00\xff")
            else:
                cue = av.subtitles.subtitle.SubtitleSet.create(f"0,0,Default,,0,0,0,,{text}".encode(), 0,
                                                               ms[1] - ms[0], ms[0] * 1000)
                packet = s.codec_context.encode_subtitle(cue)
            packet.stream = s
            packet.time_base = Fraction(1, 1000)
            packet.pts = packet.dts = ms[0]
            packet.duration = ms[1] - ms[0]
            container.mux(packet)
    container.close()
    return path
