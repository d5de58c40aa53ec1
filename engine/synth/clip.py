"""A short clean clip of procedural cel animation with a little tune, for the demo and the tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.synth.cel import cel_frame

SAMPLE_RATE = 48000
# A few bars of a music-hall tune (Hz, beats): cartoons of the era were never silent.
TUNE = [(392, 1), (440, 1), (494, 1), (523, 2), (494, 1), (440, 1), (392, 2), (330, 1), (349, 1), (392, 2)]


def _tune(seconds: float) -> np.ndarray:
    total = int(seconds * SAMPLE_RATE)
    out = np.zeros(total, np.float32)
    beat = int(0.25 * SAMPLE_RATE)
    pos, i = 0, 0
    while pos < total:
        freq, beats = TUNE[i % len(TUNE)]
        n = min(beat * beats, total - pos)
        t = np.arange(n) / SAMPLE_RATE
        envelope = np.minimum(1, np.arange(n) / 400) * np.exp(-3 * t)
        out[pos:pos + n] = 0.25 * envelope * (np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(4 * np.pi * freq * t))
        pos += n
        i += 1
    return out


def write_cel_clip(path: str | Path, seconds: float = 4.0, width: int = 320, height: int = 240,
                   fps: int = 24, seed: int = 0, progress=None) -> Path:
    """Encode ``seconds`` of cel animation as lossless FFV1 (RGB) with a FLAC tune, in Matroska."""
    import av

    path = Path(path)
    frames = int(round(seconds * fps))
    container = av.open(str(path), "w")
    try:
        video = container.add_stream("ffv1", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "bgr0"
        video.time_base = Fraction(1, fps)
        audio = container.add_stream("flac", rate=SAMPLE_RATE)
        audio.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(cel_frame(seed, width, height, t=float(i)), format="rgb24")
            frame = frame.reformat(format="bgr0")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))
            if progress:
                progress(i + 1, frames)
        container.mux(video.encode(None))
        samples = _tune(frames / fps)
        for start in range(0, len(samples), 4096):
            chunk = samples[start:start + 4096]
            af = av.AudioFrame.from_ndarray(chunk[None], format="flt", layout="mono")
            af.sample_rate = SAMPLE_RATE
            af.pts = start
            af.time_base = Fraction(1, SAMPLE_RATE)
            container.mux(audio.encode(af))
        container.mux(audio.encode(None))
    finally:
        container.close()
    return path
