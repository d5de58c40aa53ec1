"""Fixtures for the video tests: small generated clips and a tiny real restoration chain."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from engine.video.synthetic import write_test_clip


@pytest.fixture
def clip(tmp_path):
    """Factory: ``clip("name.mkv", **write_test_clip kwargs)`` -> path of a generated clip."""

    def make(name: str = "clip.mkv", **kwargs):
        kwargs.setdefault("frames", 12)
        return write_test_clip(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def chain(tiny_compact):
    """A real Chain over a tiny Compact (nf 8, nc 2) on the CPU."""
    from engine.inference.chain import Chain, Stage

    path, _ = tiny_compact
    return Chain.load([Stage(str(path))], device="cpu", precision="fp32")


class Identity:
    """A chain that returns its input: makes pixel-exact checks of the I/O path possible."""

    scale = 1

    def run_batch(self, images):
        return images

    def identity(self):
        return [{"model": "identity"}]


@pytest.fixture
def identity_chain():
    return Identity()


def read_video(path):
    """(pts list, time base, RGB frames as arrays, the video stream's codec context facts)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        cc = v.codec_context
        facts = {"pix_fmt": cc.pix_fmt, "colorspace": cc.colorspace, "color_range": cc.color_range,
                 "color_primaries": cc.color_primaries, "color_trc": cc.color_trc,
                 "sar": v.sample_aspect_ratio, "codec": cc.name}
        pts, frames = [], []
        tb = Fraction(v.time_base)
        for f in c.decode(v):
            pts.append(f.pts)
            high = f.format.components[0].bits > 8
            frames.append(f.to_ndarray(format="rgb48le" if high else "rgb24"))
    return pts, tb, frames, facts


def packets(path):
    """Raw bytes and timestamps of every video packet: for bit-identity checks."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return [(p.pts, p.dts, bytes(p)) for p in c.demux(v) if p.size]


def seconds(pts, tb):
    return [round(float(p * tb), 3) for p in pts]


def rgb_close(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())
