"""restore_video(): frames, timestamps, audio, colour, bit depth, segments, pause/resume, sequences."""

from __future__ import annotations

import json
import os
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from engine.errors import ArchivistError
from engine.video.options import VideoOptions
from engine.video.restore import restore_video
from engine.video.synthetic import pattern_frame
from tests.video.conftest import packets, read_video, rgb_close, seconds


def test_frame_count_and_timestamps_cfr(clip, chain, tmp_path):
    src = clip("cfr.mkv", frames=20)
    segs = []
    result = restore_video(src, tmp_path / "out.mkv", chain, VideoOptions(segment_frames=6),
                           on_segment=lambda i, n: segs.append((i, n)))
    assert result.status == "done" and result.frames == 20
    assert segs == [(1, 4), (2, 4), (3, 4), (4, 4)]
    pts_in, tb_in, _, _ = read_video(src)
    pts_out, tb_out, frames, facts = read_video(tmp_path / "out.mkv")
    assert facts["codec"] == "ffv1" and facts["pix_fmt"] == "bgr0"
    assert seconds(pts_out, tb_out) == seconds(pts_in, tb_in)
    assert len(frames) == 20
    assert not result.job_dir.exists()  # segments removed once assembled
    assert not list(tmp_path.glob(".*partial*"))


def test_vfr_timestamps_survive(clip, identity_chain, tmp_path):
    pts = [0, 2, 4, 7, 8, 13, 14, 16, 30, 31]
    src = clip("vfr.nut", codec="ffv1", pix_fmt="bgr0", pts=pts, time_base=Fraction(1, 48))
    for out in ("out.mkv", "out.mp4"):
        codec = "x264" if out.endswith("mp4") else None
        restore_video(src, tmp_path / out, identity_chain, VideoOptions(segment_frames=4, codec=codec))
        got, tb, _, _ = read_video(tmp_path / out)
        assert seconds(got, tb) == [round(p / 48, 3) for p in pts]


def test_identity_is_lossless_with_ffv1(clip, identity_chain, tmp_path):
    src = clip("rgb.nut", codec="ffv1", pix_fmt="bgr0", frames=6)
    restore_video(src, tmp_path / "out.mkv", identity_chain, VideoOptions(segment_frames=4))
    _, _, frames, _ = read_video(tmp_path / "out.mkv")
    for i, f in enumerate(frames):
        assert np.array_equal(f, pattern_frame(i, 64, 48))


def test_audio_subtitles_chapters_kept(clip, chain, tmp_path):
    src = clip("av.mkv", frames=24, audio=True, subtitles=True, chapters=True, attachment=True)
    out = tmp_path / "out.mkv"
    restore_video(src, out, chain, VideoOptions(segment_frames=10))
    with av.open(str(src)) as a, av.open(str(out)) as b:
        assert [s.type for s in b.streams] == ["video", "audio", "subtitle", "attachment"]
        assert (b.streams[3].name, b.streams[3].data) == ("font.ttf", b"FONTDATA")
        assert b.streams.audio[0].metadata.get("language") == "fra"
        assert b.streams.subtitles[0].metadata.get("language") == "eng"
        assert [c["metadata"] for c in b.chapters()] == [c["metadata"] for c in a.chapters()]
        audio_in = [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size]
    with av.open(str(out)) as b:
        got = [(p.stream.type, bytes(p)) for p in b.demux(b.streams.audio[0], b.streams.subtitles[0]) if p.size]
    audio_out = [data for kind, data in got if kind == "audio"]
    sub = [data for kind, data in got if kind == "subtitle"]
    assert audio_out == audio_in  # stream copy: unchanged
    assert sub == [b"Hello"]
    with av.open(str(out)) as b:
        asec = sum(float(f.samples) / f.sample_rate for f in b.decode(b.streams.audio[0]))
    assert abs(asec - 24 / 24) <= 1 / 24 + 1024 / 48000


def test_ten_bit_in_ten_bit_out(clip, identity_chain, tmp_path):
    src = clip("ten.mkv", codec="libx265", pix_fmt="yuv420p10le", frames=8)
    restore_video(src, tmp_path / "x265.mkv", identity_chain, VideoOptions(codec="x265", crf=10, preset="ultrafast"))
    _, _, frames, facts = read_video(tmp_path / "x265.mkv")
    assert facts["pix_fmt"] == "yuv420p10le" and frames[0].dtype == np.uint16
    restore_video(src, tmp_path / "ffv1.mkv", identity_chain, VideoOptions())
    _, _, lossless, facts = read_video(tmp_path / "ffv1.mkv")
    assert facts["pix_fmt"] == "gbrp16le"
    # The 16-bit path keeps the 10-bit detail: the RGB we read back equals the decoded source.
    _, _, source, _ = read_video(src)
    assert rgb_close(lossless[3], source[3]) <= 2


@pytest.mark.parametrize("matrix", [1, 6])
def test_matrix_of_the_source_is_used(clip, identity_chain, tmp_path, matrix):
    """BT.709 (HD) and BT.601 (SD) sources: decoding with the declared matrix gives back the RGB."""
    from engine.video.frames import frame_to_rgb

    src = clip(f"m{matrix}.mkv", codec="ffv1", pix_fmt="yuv444p", frames=2, colorspace=matrix)
    with av.open(str(src)) as c:
        frame = next(c.decode(video=0))
        good = frame_to_rgb(frame, False)
        wrong = frame.reformat(format="rgb24", src_colorspace=5 if matrix == 1 else 1, src_color_range=1,
                               dst_color_range=2).to_ndarray()
    truth = pattern_frame(0, 64, 48)
    assert rgb_close(good, truth) <= 3
    assert rgb_close(wrong, truth) > 10
    # And back: the restored file decodes to the same RGB.
    restore_video(src, tmp_path / "o.mp4", identity_chain, VideoOptions(codec="x264", crf=0, preset="ultrafast",
                                                                          encoder_opts={"x264-params": "qp=0"}))
    _, _, frames, facts = read_video(tmp_path / "o.mp4")
    assert facts["colorspace"] == matrix
    # 4:2:0 smears colour at the pattern's sharp edges; on average the RGB comes back, and only
    # with the matrix the output was written (and tagged) with.
    with av.open(str(tmp_path / "o.mp4")) as c:
        frame = next(c.decode(video=0))
        other = frame.reformat(format="rgb24", src_colorspace=5 if matrix == 1 else 1, src_color_range=1,
                               dst_color_range=2).to_ndarray()
    right_err = np.abs(frames[0].astype(float) - truth).mean()
    assert right_err < 6
    assert np.abs(other.astype(float) - truth).mean() > right_err + 2


def test_untagged_sd_source_uses_bt601(clip):
    from engine.video.frames import default_matrix, frame_to_rgb

    assert default_matrix(720, 576) == 6 and default_matrix(1920, 1080) == 1
    src = clip("sd.mkv", codec="ffv1", pix_fmt="yuv444p", frames=1, colorspace=None)
    with av.open(str(src)) as c:
        frame = next(c.decode(video=0))
    assert rgb_close(frame_to_rgb(frame, False), pattern_frame(0, 64, 48)) <= 3


def test_colour_metadata_and_aspect_ratio_kept(clip, identity_chain, tmp_path):
    src = clip("tags.mkv", frames=6, colorspace=1, color_primaries=1, color_trc=1, color_range=1,
               sample_aspect_ratio=Fraction(16, 15))
    out = tmp_path / "tags.mp4"
    restore_video(src, out, identity_chain, VideoOptions(codec="x264", preset="ultrafast"))
    _, _, _, facts = read_video(out)
    assert (facts["colorspace"], facts["color_primaries"], facts["color_trc"], facts["color_range"]) == (1, 1, 1, 1)
    assert facts["sar"] == Fraction(16, 15)
    restore_video(src, tmp_path / "tags-restored.mkv", identity_chain, VideoOptions())  # never over its source
    _, _, _, facts = read_video(tmp_path / "tags-restored.mkv")
    # FFV1 holds RGB: the matrix tag says so, primaries and transfer are carried over.
    assert (facts["colorspace"], facts["color_primaries"], facts["color_trc"], facts["color_range"]) == (0, 1, 1, 2)
    assert facts["sar"] == Fraction(16, 15)


@pytest.mark.parametrize("codec", ["ffv1", "prores", "x264"])
def test_sample_aspect_ratio_kept_in_matroska(clip, identity_chain, tmp_path, codec):
    """FFV1 and ProRes carry no ratio Matroska readers use: the track's display size says 8:9."""
    import struct
    import zlib

    from engine.video.frames import VideoSource, from_float
    from engine.video.matroska import ID_CRC32, ID_TRACKS, _children
    from engine.video.probe import probe

    src = clip("anamorphic.mkv", frames=5, sample_aspect_ratio=Fraction(8, 9))  # x264: the ratio is in its bitstream
    assert probe(src).sample_aspect_ratio == Fraction(8, 9)
    out = tmp_path / "out.mkv"
    restore_video(src, out, identity_chain, VideoOptions(codec=codec, preset="ultrafast" if codec == "x264" else None))
    info = probe(out)
    assert info.sample_aspect_ratio == Fraction(8, 9)
    pts, tb, frames, facts = read_video(out)
    assert seconds(pts, tb) == seconds(*read_video(src)[:2]) and len(frames) == 5
    if codec == "ffv1":  # the header was mended in place: the lossless pictures are untouched
        expected = [from_float(f.rgb, False) for f in VideoSource(probe(src))]
        assert all(np.array_equal(a, b) for a, b in zip(frames, expected, strict=True))
    data = out.read_bytes()
    segment = [e for e in _children(data, 0, len(data))][1]
    tracks = next(e for e in _children(data, segment.data, len(data)) if e.id == ID_TRACKS)
    crc = next(_children(data, tracks.data, tracks.end))
    assert crc.id == ID_CRC32
    assert struct.unpack_from("<I", data, crc.data)[0] == zlib.crc32(data[crc.end:tracks.end])


def test_matroska_header_left_alone_when_it_is_not_as_expected(clip, tmp_path):
    from engine.video.matroska import set_display_aspect

    path = clip("plain.mkv", codec="ffv1", pix_fmt="bgr0", frames=2)
    data = bytearray(path.read_bytes())
    seek_entry = data.index(bytes.fromhex("1654ae6b"))  # the seek head names Tracks first
    at = data.index(bytes.fromhex("1654ae6b"), seek_entry + 4) + 8  # inside Tracks' checksum: no longer matches
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    assert set_display_aspect(path, Fraction(8, 9)) is False
    assert path.read_bytes() == bytes(data)


def test_display_rotation_kept(clip, identity_chain, tmp_path):
    from engine.video.probe import probe

    src = clip("phone.mp4", frames=3, rotation=90)
    assert probe(src).rotation == 90
    restore_video(src, tmp_path / "r.mkv", identity_chain, VideoOptions())
    assert probe(tmp_path / "r.mkv").rotation == 90


def _stop_after(n: int) -> dict:
    """``progress`` and ``should_stop`` for restore_video: stop once ``n`` frames (counted from the
    first frame of the video) are written."""
    written = [0]

    def progress(done, total):
        written[0] = done

    return {"progress": progress, "should_stop": lambda: written[0] >= n}


def test_pause_then_resume_is_bit_identical(clip, chain, tmp_path):
    """A pause in the middle of a segment closes it early with the frames written so far; the
    resumed run closes the next one back on the 5-frame grid, and the FFV1 packets equal an
    uninterrupted run's."""
    src = clip("p.mkv", frames=17, audio=True)
    whole = tmp_path / "whole.mkv"
    restore_video(src, whole, chain, VideoOptions(segment_frames=5))
    whole_pts = read_video(whole)[0]

    out = tmp_path / "part.mkv"
    paused = restore_video(src, out, chain, VideoOptions(segment_frames=5), **_stop_after(7))
    assert paused.status == "paused" and paused.segments_done == 2 and paused.frames == 7
    assert not out.exists() and not list(tmp_path.glob(".part*"))
    state = json.loads((paused.job_dir / "state.json").read_text())
    assert [s["frames"] for s in state["segments"]] == [5, 2]
    # The actual boundaries: first and last presentation timestamps of each closed segment.
    assert [(s["first_pts"], s["last_pts"]) for s in state["segments"]] == [(whole_pts[0], whole_pts[4]),
                                                                          (whole_pts[5], whole_pts[6])]
    assert not list(paused.job_dir.glob("*.partial"))

    segs = []
    done = restore_video(src, out, chain, VideoOptions(segment_frames=5, resume=True),
                         on_segment=lambda i, n: segs.append((i, n)))
    assert done.status == "done" and done.resumed_from == 7 and done.frames == 17
    assert segs == [(3, 5), (4, 5), (5, 5)]  # 3 frames back to the grid, then 5, then the last 2
    assert packets(out) == packets(whole)


def test_two_pauses_in_one_segment_keep_every_frame(clip, identity_chain, tmp_path):
    src = clip("p2.mkv", frames=12)
    whole = tmp_path / "whole.mkv"
    restore_video(src, whole, identity_chain, VideoOptions(segment_frames=8))
    out = tmp_path / "o.mkv"
    first = restore_video(src, out, identity_chain, VideoOptions(segment_frames=8), **_stop_after(3))
    second = restore_video(src, out, identity_chain, VideoOptions(segment_frames=8, resume=True),
                           **_stop_after(4))
    assert (first.frames, second.frames) == (3, 4)
    state = json.loads((second.job_dir / "state.json").read_text())
    assert [s["frames"] for s in state["segments"]] == [3, 1]
    restore_video(src, out, identity_chain, VideoOptions(segment_frames=8, resume=True))
    assert packets(out) == packets(whole)


def test_a_paused_image_sequence_keeps_every_frame(clip, identity_chain, tmp_path):
    src = clip("seqp.mkv", codec="ffv1", pix_fmt="bgr0", frames=9)
    out = str(tmp_path / "frames") + "/"
    paused = restore_video(src, out, identity_chain, VideoOptions(segment_frames=4), **_stop_after(6))
    assert paused.status == "paused" and paused.frames == 6
    state = json.loads((paused.job_dir / "state.json").read_text())
    assert [s["frames"] for s in state["segments"]] == [4, 2]
    done = restore_video(src, out, identity_chain, VideoOptions(segment_frames=4, resume=True))
    assert done.resumed_from == 6
    files = sorted((tmp_path / "frames").iterdir())
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(1, 10)]
    assert np.array_equal(cv2.imread(str(files[6]))[..., ::-1], pattern_frame(6, 64, 48))


class HeldChain:
    """An identity chain that holds the frame numbered ``hold`` inside the model until the test releases it."""

    scale = 1

    def __init__(self, hold: int):
        import threading

        self.hold, self.seen = hold, 0
        self.held, self.release = threading.Event(), threading.Event()

    def run_batch(self, images):
        self.seen += len(images)
        if self.seen > self.hold and not self.release.is_set():
            self.held.set()
            self.release.wait(60)
        return images

    def identity(self):
        return [{"model": "identity"}]


def test_a_pause_while_the_model_works_does_not_wait_for_it(clip, identity_chain, tmp_path):
    """The model is busy with frame 9 (held by the test) when the pause comes: the 8 frames already
    written are closed into a segment at once, before the model is done, and the run stops there."""
    import threading

    src = clip("m.mkv", frames=16)
    whole = tmp_path / "whole.mkv"
    restore_video(src, whole, identity_chain, VideoOptions(segment_frames=10))
    chain, asked, written, result = HeldChain(hold=8), threading.Event(), [], []
    out = tmp_path / "o.mkv"
    worker = threading.Thread(target=lambda: result.append(restore_video(
        src, out, chain, VideoOptions(segment_frames=10), progress=lambda done, total: written.append(done),
        should_stop=asked.is_set)))
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (chain.held.is_set() and written and written[-1] == 8):
            time.sleep(0.01)
        assert chain.held.is_set() and written[-1] == 8
        asked.set()
        state = None
        while time.monotonic() < deadline and state is None:
            for path in Path(os.environ["ARCHIVIST_HOME"], "jobs").glob("*/state.json"):
                state = json.loads(path.read_text())
            time.sleep(0.01)
        assert state is not None, "the segment was not closed while the model was busy"
        assert chain.held.is_set() and not chain.release.is_set()
        assert [s["frames"] for s in state["segments"]] == [8]
    finally:
        chain.release.set()
        worker.join(60)
    assert result[0].status == "paused" and result[0].frames == 8
    restore_video(src, out, identity_chain, VideoOptions(segment_frames=10, resume=True))
    assert packets(out) == packets(whole)


@pytest.mark.parametrize("codec,suffix", [("x264", ".mp4"), ("x265", ".mkv")])
def test_pause_in_a_segment_of_a_lossy_codec_keeps_every_frame_and_timestamp(clip, identity_chain, tmp_path,
                                                                            codec, suffix):
    """B-frames and a segment split by a pause: the same frames at the same times as an uninterrupted run."""
    src = clip("l.mkv", frames=20, audio=True)
    opts = {"codec": codec, "segment_frames": 8, "preset": "ultrafast" if codec == "x265" else "veryfast"}
    whole = tmp_path / f"whole{suffix}"
    restore_video(src, whole, identity_chain, VideoOptions(**opts))
    out = tmp_path / f"o{suffix}"
    paused = restore_video(src, out, identity_chain, VideoOptions(**opts), **_stop_after(11))
    assert paused.frames == 11
    restore_video(src, out, identity_chain, VideoOptions(resume=True, **opts))
    pts, tb, frames, _ = read_video(out)
    w_pts, w_tb, w_frames, _ = read_video(whole)
    assert len(frames) == len(w_frames) == 20
    assert seconds(pts, tb) == seconds(w_pts, w_tb)
    # The same picture in each place, lossily: each frame is nearer its own counterpart than the next one.
    mean = [[float(np.abs(a.astype(np.float64) - b).mean()) for b in w_frames] for a in frames]
    assert all(int(np.argmin(row)) == i for i, row in enumerate(mean)), [np.round(r, 1) for r in mean]
    with av.open(str(out)) as c, av.open(str(whole)) as w:
        assert c.streams.audio[0].frames == w.streams.audio[0].frames


def test_resume_without_state_simply_starts(clip, identity_chain, tmp_path):
    src = clip("r.mkv", frames=5)
    result = restore_video(src, tmp_path / "o.mkv", identity_chain, VideoOptions(resume=True))
    assert result.status == "done" and result.resumed_from == 0 and result.frames == 5


def test_start_and_duration(clip, identity_chain, tmp_path):
    src = clip("long.mkv", frames=48, audio=True)
    out = tmp_path / "trial.mkv"
    restore_video(src, out, identity_chain, VideoOptions(start=0.5, duration=0.5, segment_frames=5))
    pts, tb, frames, _ = read_video(out)
    assert len(frames) == 12
    assert seconds(pts, tb)[0] == 0.0
    with av.open(str(out)) as c:
        asec = sum(float(f.samples) / f.sample_rate for f in c.decode(c.streams.audio[0]))
    assert abs(asec - 0.5) < 0.1


def test_a_seek_that_lands_late_goes_back_so_no_frame_is_lost(clip, identity_chain, tmp_path):
    """MPEG-TS is searched by bytes and timestamps: FFmpeg's seek to 0.5 s came out at 1.68 s and
    `--start 0.5` restored 10 frames instead of 39, and a resumed segment would have a gap. The frames
    start where asked (the first frame here is at 0.08 s: 2/25)."""
    from engine.video.frames import VideoSource
    from engine.video.probe import probe

    src = clip("c.ts", frames=50, rate=Fraction(25), options={"g": "12"})
    info = probe(src)
    times = [round(float(f.pts * f.time_base), 2) for f in VideoSource(info)]
    assert len(times) == 50 and times[0] == 0.08
    for start in (0.5, 1.0, 1.9):
        got = [round(float(f.pts * f.time_base), 2) for f in VideoSource(info, start=start)]
        assert got == [t for t in times if t >= start], start
    after = [f.pts for f in VideoSource(info)][30]  # a resumed segment continues after frame 30
    assert [f.index for f in VideoSource(info, resume_after_pts=after, first_index=31)] == list(range(31, 50))
    assert len([f for f in VideoSource(info, resume_after_pts=after)]) == 19

    out = tmp_path / "trial.mkv"
    restore_video(src, out, identity_chain, VideoOptions(start=0.5, segment_frames=8))
    frames = read_video(out)[2]
    assert len(frames) == 39
    mean = [float(np.abs(frames[0].astype(np.float64) - pattern_frame(i, 64, 48)).mean()) for i in range(8, 15)]
    assert int(np.argmin(mean)) + 8 == 11  # the frame at 0.52 s, the first at or after 0.5 s


def test_image_sequence_out_and_in(clip, identity_chain, tmp_path):
    src = clip("seq.mkv", codec="ffv1", pix_fmt="bgr0", frames=7)
    restore_video(src, str(tmp_path / "frames") + "/", identity_chain, VideoOptions(segment_frames=3))
    files = sorted((tmp_path / "frames").iterdir())
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(1, 8)]
    back = tmp_path / "back.mkv"
    result = restore_video(tmp_path / "frames", back, identity_chain, VideoOptions(fps=Fraction(12)))
    pts, tb, frames, _ = read_video(back)
    assert result.frames == 7 and seconds(pts, tb) == [round(i / 12, 3) for i in range(7)]
    assert np.array_equal(frames[6], pattern_frame(6, 64, 48))


def test_image_sequence_pattern_input(identity_chain, tmp_path):
    from engine.inference.imageio import write_picture

    folder = tmp_path / "scans"
    folder.mkdir()
    for i in (3, 1, 2, 10):
        write_picture(folder / f"f{i:04d}.png", pattern_frame(i, 32, 24).astype(np.float32) / 255)
    (folder / "notes.txt").write_text("ignored")
    result = restore_video(str(folder / "f%04d.png"), tmp_path / "s.mkv", identity_chain,
                           VideoOptions(fps=Fraction(24000, 1001)))
    pts, tb, frames, _ = read_video(tmp_path / "s.mkv")
    assert result.frames == 4
    assert np.array_equal(frames[3], pattern_frame(10, 32, 24))  # numeric order: 1, 2, 3, 10


def test_deinterlace_keeps_frame_count(clip, identity_chain, tmp_path):
    src = clip("tv.mkv", interlaced=True, frames=8, height=64)
    restore_video(src, tmp_path / "p.mkv", identity_chain, VideoOptions(deinterlace=True))
    pts, tb, frames, _ = read_video(tmp_path / "p.mkv")
    assert len(frames) == 8


def test_ivtc_drops_one_frame_in_five(clip, identity_chain, tmp_path):
    src = clip("tc.mkv", frames=30, rate=Fraction(30000, 1001), height=64)
    result = restore_video(src, tmp_path / "f.mkv", identity_chain, VideoOptions(ivtc=True, segment_frames=7))
    pts, tb, frames, _ = read_video(tmp_path / "f.mkv")
    assert result.frames == len(frames) == 24
    step = np.diff(seconds(pts, tb))
    assert np.allclose(step, 1001 / 24000, atol=0.0011)


@pytest.mark.parametrize("codec,suffix", [("prores", ".mov"), ("x265", ".mkv"), ("tiff", "/")])
def test_other_encoders(clip, identity_chain, tmp_path, codec, suffix):
    src = clip("e.mkv", frames=4)
    out = str(tmp_path / "enc") + suffix
    extra = {"preset": "ultrafast"} if codec == "x265" else {}
    result = restore_video(src, out, identity_chain, VideoOptions(codec=codec, **extra))
    assert result.frames == 4
    if suffix == "/":
        assert len(list((tmp_path / "enc").glob("*.tiff"))) == 4
    else:
        assert len(read_video(out)[2]) == 4


def test_encoder_option_errors(clip, identity_chain, tmp_path):
    src = clip("e.mkv", frames=2)
    # The engine names the options' keys; the command line shows its flags (tests/cli/test_keys_and_flags.py).
    with pytest.raises(ArchivistError, match=r"^codec = 'ffv1' invalid: allowed x264, x265 \(what a .mp4 file holds\)$"):
        restore_video(src, tmp_path / "o.mp4", identity_chain, VideoOptions(codec="ffv1"))
    with pytest.raises(ArchivistError, match=r"^crf applies to x264 and x265; this output is encoded with ffv1 \(choose codec x264 or x265\)$"):
        restore_video(src, tmp_path / "o.mkv", identity_chain, VideoOptions(crf=20))
    with pytest.raises(ArchivistError, match="unsupported output type"):
        restore_video(src, tmp_path / "o.xyz", identity_chain, VideoOptions())
    assert not list(tmp_path.glob("o*"))


def test_resume_with_a_filter_is_bit_identical(clip, identity_chain, tmp_path):
    src = clip("i.mkv", interlaced=True, frames=14, height=64)
    opts = {"deinterlace": True, "segment_frames": 4}
    restore_video(src, tmp_path / "whole.mkv", identity_chain, VideoOptions(**opts))
    paused = restore_video(src, tmp_path / "p.mkv", identity_chain, VideoOptions(**opts), should_stop=lambda: True)
    assert paused.status == "paused" and paused.segments_done == 1
    restore_video(src, tmp_path / "p.mkv", identity_chain, VideoOptions(resume=True, **opts))
    assert packets(tmp_path / "p.mkv") == packets(tmp_path / "whole.mkv")
