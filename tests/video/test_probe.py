"""probe(): geometry, timing, colour, side streams, chapters, VFR, and one clear error per bad file."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from engine.errors import ArchivistError
from engine.video.probe import probe


def test_probe_reports_the_facts(clip):
    path = clip("a.mkv", frames=12, audio=True, subtitles=True, chapters=True,
                sample_aspect_ratio=Fraction(4, 3), color_primaries=1, color_trc=1)
    info = probe(path)
    assert (info.width, info.height, info.codec, info.pix_fmt) == (64, 48, "h264", "yuv420p")
    assert info.frame_count == 12 and not info.frame_count_estimated
    assert info.average_rate == 24 and not info.variable_frame_rate
    assert info.sample_aspect_ratio == Fraction(4, 3)
    assert (info.colorspace, info.color_range, info.color_primaries, info.color_trc) == (1, 1, 1, 1)
    assert info.bit_depth == 8 and not info.interlaced
    kinds = {(s.kind, s.language) for s in info.streams}
    assert kinds == {("audio", "fra"), ("subtitle", "eng")}
    assert [c["metadata"]["title"] for c in info.chapters] == ["One", "Two"]
    assert info.to_dict()["time_base"] == "1/1000"


def test_probe_detects_vfr_and_10_bit(clip):
    pts = [0, 2, 4, 7, 8, 13, 14, 16]
    info = probe(clip("vfr.mkv", codec="ffv1", pix_fmt="yuv420p10le", pts=pts, time_base=Fraction(1, 48)))
    assert info.variable_frame_rate
    assert info.bit_depth == 10 and info.high_bit_depth
    assert info.frame_count == len(pts)


def test_probe_interlaced_flag(clip):
    info = probe(clip("int.mkv", interlaced=True, frames=6, height=64))
    assert info.interlaced


def _error(path) -> str:
    with pytest.raises(ArchivistError) as exc:
        probe(path)
    message = str(exc.value)
    assert "\n" not in message and str(path) in message
    return message


def test_bad_inputs_give_one_line(tmp_path, clip):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert "empty" in _error(empty)
    text = tmp_path / "notes.mkv"
    text.write_text("this is not a video\n" * 50)
    assert "not a readable video" in _error(text)
    assert "no such file" in _error(tmp_path / "missing.mkv")

    audio_only = tmp_path / "sound.mka"
    with av.open(str(audio_only), "w") as c:
        s = c.add_stream("flac", rate=8000)
        s.layout = "mono"
        import numpy as np
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        frame.pts = 0
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
    assert "no video stream" in _error(audio_only)

    mp4 = clip("cut.mp4", frames=12)
    data = mp4.read_bytes()
    mp4.write_bytes(data[: len(data) // 2])  # the moov atom sits at the end: it is gone
    assert "not a readable video" in _error(mp4)


def test_a_matroska_file_whose_first_frame_is_late_is_not_called_truncated(clip):
    """Matroska's duration runs from time 0: a capture whose frames run from 10 s to 12 s says 12 s, and
    adding its start to that read as a file cut at 12 of 22 s ("truncated or damaged"). Its duration is
    its 2 s of frames, and --start picks frames by their time; a file really cut short is still refused."""
    from engine.video.frames import VideoSource

    late = clip("late.mkv", frames=48, rate=Fraction(24), pts=[240 + i for i in range(48)], time_base=Fraction(1, 24))
    info = probe(late)
    assert (info.start_time, info.duration, info.frame_count) == (10.0, 2.0, 48)
    assert len(list(VideoSource(info, start=10.5))) == 36
    whole = clip("long.mkv", frames=96, rate=Fraction(24), pts=[240 + i for i in range(96)],
                 time_base=Fraction(1, 24), codec="ffv1", pix_fmt="bgr0")
    data = whole.read_bytes()
    whole.write_bytes(data[: len(data) // 2])
    assert "truncated or damaged: its data stops at 11.96 s" in _error(whole)
