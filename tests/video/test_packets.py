"""The packet index and segment bundles a cluster run sends: decoding them gives the local decoder's frames.

No Ray here: each segment's packets are read from the index and decoded with a bare decoder, as a
worker does, and the frames (pixels and timestamps) are compared with :class:`VideoSource`'s.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from engine.errors import ArchivistError
from engine.video.frames import VideoSource
from engine.video.packets import build_index, decode_bundle, plan_segments, read_bundle
from engine.video.probe import probe

SOURCES = {
    # keyframes off the segment grid, B-frames (decode order differs from display order)
    "x264 B-frames": ("b.mp4", {"frames": 23, "options": {"g": "7", "bf": "2"}}),
    # open GOPs: B-frames after a keyframe that show before it
    "x264 open GOP": ("o.mkv", {"frames": 23, "options": {"g": "6", "bf": "3", "x264-params": "open-gop=1"}}),
    "x265 10-bit": ("t.mkv", {"frames": 13, "codec": "libx265", "pix_fmt": "yuv420p10le",
                              "options": {"x265-params": "keyint=5:log-level=error"}}),
    "variable frame rate": ("v.nut", {"codec": "ffv1", "pix_fmt": "bgr0", "pts": [0, 2, 4, 7, 8, 13, 14, 16, 30, 31],
                                      "time_base": Fraction(1, 48)}),
    "black and white": ("g.mkv", {"frames": 11, "gray": True}),
    # searched by bytes: a seek to a keyframe can land a GOP or more after it
    "MPEG-TS": ("c.ts", {"frames": 50, "rate": Fraction(25), "options": {"g": "12"}}),
}


def _segments_decoded(src, segment_frames, after_pts=None, frames_before=0, gray=False):
    info = probe(src)
    index = build_index(src)
    ranges = plan_segments(index, after_pts, frames_before, segment_frames, 0)
    frames, sizes = [], []
    first = frames_before
    for seg in ranges:
        got = list(decode_bundle(index.codec, index.time_base, read_bundle(index, seg), seg, first,
                                 info.high_bit_depth, gray))
        assert [f.pts for f in got][0] == seg.first_pts and got[-1].pts == seg.last_pts
        frames += got
        sizes.append(len(got))
        first += len(got)
    return frames, sizes


@pytest.mark.parametrize("name", list(SOURCES))
def test_segment_bundles_decode_to_the_local_frames(clip, name):
    file, kwargs = SOURCES[name]
    src = clip(file, **kwargs)
    gray = bool(kwargs.get("gray"))
    local = list(VideoSource(probe(src), gray=gray))
    frames, sizes = _segments_decoded(src, 4, gray=gray)
    assert [f.pts for f in frames] == [f.pts for f in local]
    assert [f.index for f in frames] == list(range(len(local)))
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(frames, local))
    assert sizes == [4] * (len(local) // 4) + ([len(local) % 4] if len(local) % 4 else [])


def test_a_resumed_plan_returns_to_the_grid(clip):
    """After a pause that left 7 frames (segments of 5 and 2), the next segment takes 3 and the
    rest 5 each, as a local resume cuts them."""
    src = clip("r.mp4", frames=23, options={"g": "7", "bf": "2"})
    local = list(VideoSource(probe(src)))
    frames, sizes = _segments_decoded(src, 5, after_pts=local[6].pts, frames_before=7)
    assert sizes == [3, 5, 5, 3]
    assert [f.pts for f in frames] == [f.pts for f in local[7:]]
    assert [f.index for f in frames] == list(range(7, 23))
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(frames, local[7:]))


def test_a_segment_that_decodes_to_another_count_is_an_error(clip):
    src = clip("c.mp4", frames=8)
    info = probe(src)
    index = build_index(src)
    seg = plan_segments(index, None, 0, 4, 0)[0]
    bundle = read_bundle(index, seg)[:2]  # packets lost on the way
    with pytest.raises(ArchivistError, match="segment 1: decoded 2 frames, the index says 4"):
        list(decode_bundle(index.codec, index.time_base, bundle, seg, 0, info.high_bit_depth, False))
