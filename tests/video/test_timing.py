"""Exact timing in every output (issue 15): the source's timestamps, picture and sound in sync, every join.

Sources are generated sync clips (black, one white frame at 1.000 s, a 1 kHz tone from 1.000 s)
at 24, 25 and 23.976 fps in Matroska (1/1000 time base) and MP4 (the muxer's time base), and a
variable-rate one; each goes through every output in several segments. A representative subset
runs in CI; the whole matrix is marked slow.
"""

from __future__ import annotations

import logging
from fractions import Fraction

import av
import numpy as np
import pytest

from engine.video.options import VideoOptions
from engine.video.probe import probe
from engine.video.restore import restore_video
from engine.video.synthetic import write_sync_clip

# 48 frames at 24 fps with durations of 33 to 58 ms (a variable-rate capture), in milliseconds.
VFR_PTS = list(np.cumsum([0] + [33, 50, 42, 58, 42, 33, 50, 42] * 6)[:48])
SOURCES = {
    "24-mkv": {"rate": Fraction(24), "suffix": ".mkv", "time_base": Fraction(1, 1000)},
    "25-mkv": {"rate": Fraction(25), "suffix": ".mkv", "time_base": Fraction(1, 1000)},
    "23.976-mkv": {"rate": Fraction(24000, 1001), "suffix": ".mkv", "time_base": Fraction(1, 1000)},
    "24-mp4": {"rate": Fraction(24), "suffix": ".mp4"},
    "25-mp4": {"rate": Fraction(25), "suffix": ".mp4"},
    "23.976-mp4": {"rate": Fraction(24000, 1001), "suffix": ".mp4"},
    "vfr-mkv": {"rate": Fraction(24), "suffix": ".mkv", "time_base": Fraction(1, 1000),
                "pts": [int(p) for p in VFR_PTS]},
}
OUTPUTS = {
    "ffv1-mkv": ("ffv1", ".mkv"),
    "x264-mp4": ("x264", ".mp4"),
    "x264-mkv": ("x264", ".mkv"),
    "x265-mkv": ("x265", ".mkv"),
    "prores-mov": ("prores", ".mov"),
}
# The inner loop (-m "not slow") keeps one pair; CI runs every pair.
FAST = {("24-mkv", "x264-mp4")}
CASES = [pytest.param(s, o, id=f"{s}-to-{o}", marks=() if (s, o) in FAST else pytest.mark.slow)
         for s in SOURCES for o in OUTPUTS]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Each sync clip made once per module (x264 with B-frames, AAC)."""
    folder = tmp_path_factory.mktemp("sync")
    made = {}

    def get(name):
        if name not in made:
            spec = dict(SOURCES[name])
            suffix = spec.pop("suffix")
            made[name] = write_sync_clip(folder / f"{name}{suffix}", seconds=2.0, width=64, height=48, **spec)
        return made[name]

    return get


def measure(path):
    """(frame times in s, the white frame's time, the tone's onset, declared rate, time base)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        tb = Fraction(v.time_base)
        frames = [(f.pts, float(f.to_ndarray(format="gray").mean())) for f in c.decode(v)]
        rate = v.average_rate
    times = [p * tb for p, _ in frames]
    flash = times[int(np.argmax([m for _, m in frames]))]
    onset = None
    with av.open(str(path)) as c:
        if c.streams.audio:
            for f in c.decode(c.streams.audio[0]):
                hit = np.nonzero(np.abs(f.to_ndarray()[0]) > 0.1)[0]
                if len(hit):
                    onset = float(f.pts * f.time_base) + hit[0] / f.sample_rate
                    break
    return times, flash, onset, rate, tb


@pytest.mark.parametrize("source,output", CASES)
def test_output_timing_equals_the_source(sources, chain, tmp_path, source, output):
    src = sources(source)
    codec, suffix = OUTPUTS[output]
    out = tmp_path / f"out{suffix}"
    segments = []
    result = restore_video(src, out, chain, VideoOptions(codec=codec, segment_frames=10),
                           on_segment=lambda i, n: segments.append(i))
    assert result.status == "done" and len(segments) >= 2

    times_in, flash_in, onset_in, rate_in, _ = measure(src)
    times, flash, onset, rate, _ = measure(out)
    assert len(times) == len(times_in)
    # Every frame where the source shows it (within the coarser container's rounding: 0.5 ms).
    assert times[0] == times_in[0] == 0
    worst = max(abs(float(a - b)) for a, b in zip(times, times_in))
    assert worst <= 0.0005, f"a frame moved by {worst * 1000:.2f} ms"
    assert abs(float(flash - flash_in)) <= 0.0005
    # Picture and sound together: the tone starts with the white frame (within half a frame).
    frame = 1 / float(SOURCES[source]["rate"])
    assert onset is not None and abs(onset - float(flash)) <= frame / 2, (onset, float(flash))
    assert abs(onset - onset_in) <= 0.002
    if "pts" not in SOURCES[source]:
        # The declared rate is the source's (MP4 derives it from sample durations: rounding only).
        assert abs(float(rate) / float(rate_in) - 1) < 0.001, (rate, rate_in)


@pytest.mark.slow
def test_case_1_sync_clip_to_the_default_mp4(tmp_path, tiny_compact):
    """The issue's own case through the command line: 128x96 x264+AAC .mp4 → default .mp4 output."""
    from archivist_tui.cli import main

    src = write_sync_clip(tmp_path / "sync.mp4")
    out = tmp_path / "out.mp4"
    assert main(["restore", str(src), "-o", str(out), "-m", str(tiny_compact[0]), "--device", "cpu"]) == 0
    times, flash, onset, _, _ = measure(out)
    assert times[0] == 0 and abs(float(flash) - 1.0) < 0.001 and abs(onset - 1.0) < 1 / 48


@pytest.mark.slow
def test_many_segments_with_b_frames_join(tmp_path, identity_chain):
    """Case 2: x264 and x265 with B-frames over many joins, resumed half-way, into .mp4 (strict DTS)."""
    src = write_sync_clip(tmp_path / "pal.mkv", rate=Fraction(25), seconds=3.2, width=64, height=48,
                          time_base=Fraction(1, 1000))
    for codec, suffix in (("x264", ".mp4"), ("x265", ".mp4"), ("x265", ".mkv")):
        out = tmp_path / f"{codec}{suffix}"
        opts = {"codec": codec, "segment_frames": 7}
        paused = restore_video(src, out, identity_chain, VideoOptions(**opts), should_stop=lambda: True)
        assert paused.status == "paused"
        restore_video(src, out, identity_chain, VideoOptions(resume=True, **opts))
        times, _, _, _, _ = measure(out)
        assert len(times) == 80
        assert [round(float(t), 3) for t in times] == [round(i / 25, 3) for i in range(80)]
        if suffix == ".mp4":  # Matroska stores no decode timestamps
            with av.open(str(out)) as c:
                dts = [p.dts for p in c.demux(c.streams.video[0]) if p.size]
            assert all(b > a for a, b in zip(dts, dts[1:])), "decode timestamps must rise across every join"


@pytest.mark.parametrize("codec,suffix", [("ffv1", ".avi"), ("x264", ".nut")])
def test_avi_and_nut_keep_the_timing_too(sources, identity_chain, tmp_path, codec, suffix):
    src = sources("23.976-mkv")
    out = tmp_path / f"out{suffix}"
    restore_video(src, out, identity_chain, VideoOptions(codec=codec, segment_frames=10))
    times_in, flash_in, _, rate_in, _ = measure(src)
    times, flash, onset, rate, _ = measure(out)
    assert len(times) == len(times_in) and max(abs(float(a - b)) for a, b in zip(times, times_in)) <= 0.0005
    assert abs(onset - float(flash)) <= 1 / 48 and rate == rate_in


def test_avi_refuses_a_variable_rate_source_up_front(sources, identity_chain, tmp_path):
    from engine.errors import ArchivistError

    with pytest.raises(ArchivistError, match="holds a constant frame rate only"):
        restore_video(sources("vfr-mkv"), tmp_path / "out.avi", identity_chain, VideoOptions())
    with pytest.raises(ArchivistError, match=r"^codec = 'x264' invalid: allowed ffv1 \(what a .avi file holds\)$"):
        restore_video(sources("24-mkv"), tmp_path / "out.avi", identity_chain, VideoOptions(codec="x264"))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("seconds,frames", [(20, 480), pytest.param(25, 600, marks=pytest.mark.slow)])
def test_probe_constant_rate_mkv_of_20_to_25_s(tmp_path, seconds, frames):
    """Case 3: a constant-rate B-frame .mkv of this length is constant rate, with its exact frame count."""
    src = write_sync_clip(tmp_path / "long.mkv", rate=Fraction(24), seconds=seconds, width=32, height=32,
                          time_base=Fraction(1, 1000), audio_codec=None, options={"preset": "ultrafast", "bf": "3"})
    info = probe(src)
    assert not info.variable_frame_rate
    assert info.frame_count == frames


# -- damaged input timestamps (case 4) -------------------------------------------------------------
def _damage(src, dst, kind: str, which: str, at: int = 20):
    """Copy ``src`` to ``dst`` (Matroska) with one damaged timestamp in the ``which`` stream.

    ``duplicate``: packet ``at`` gets the timestamp of the packet before; ``swap``: packets ``at``
    and ``at + 1`` exchange theirs (a step back). Decode timestamps are written two packets lower
    so the muxer takes the damage as it is (Matroska stores only the presentation timestamps).
    """
    with av.open(str(src)) as c:
        target = c.streams.video[0] if which == "video" else c.streams.audio[0]
        packets = [(p.stream.index, p.pts, p.duration, bytes(p), p.is_keyframe) for p in c.demux() if p.size]
        templates = list(c.streams)
        order = [i for i, (s, *_rest) in enumerate(packets) if s == target.index]
        stamps = {i: packets[i][1] for i in order}
        k = order[at]
        if kind == "duplicate":
            stamps[k] = stamps[order[at - 1]]
        else:
            stamps[k], stamps[order[at + 1]] = stamps[order[at + 1]], stamps[k]
        step = packets[order[1]][1] - packets[order[0]][1]
        with av.open(str(dst), "w") as out:
            streams = {t.index: out.add_stream_from_template(t) for t in templates}
            for i, (s, pts, duration, data, key) in enumerate(packets):
                packet = av.Packet(data)
                packet.stream = streams[s]
                packet.time_base = templates[s].time_base
                packet.pts = stamps.get(i, pts)
                packet.dts = pts - 2 * step if s == target.index else pts
                packet.duration = duration
                packet.is_keyframe = key
                out.mux(packet)
    return dst


@pytest.mark.parametrize("which,kind", [("video", "duplicate"), ("video", "swap"), ("audio", "duplicate"),
                                        ("audio", "swap")])
def test_damaged_timestamps_are_mended_with_one_warning(tmp_path, identity_chain, caplog, which, kind):
    clean = write_sync_clip(tmp_path / "clean.mkv", seconds=2.0, width=64, height=48, time_base=Fraction(1, 1000),
                            options={"bf": "0"})
    src = _damage(clean, tmp_path / "damaged.mkv", kind, which)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING):
        result = restore_video(src, out, identity_chain, VideoOptions(codec="x264", segment_frames=10))
    assert result.status == "done"
    # (The sync clip is black and white: its tone warning names the file, damaged.mkv, too.)
    warnings = [r.getMessage() for r in caplog.records if "timestamps: " in r.getMessage()]
    assert len(warnings) == 1 and "1 " in warnings[0], warnings
    clean_times = measure(clean)[0]
    times, flash, onset, _, _ = measure(out)
    assert all(b > a for a, b in zip(times, times[1:]))
    if which == "video":
        # FFmpeg's rule: the frame whose timestamp does not advance is dropped; the rest keep theirs.
        assert len(times) == len(clean_times) - 1
        assert set(times) <= set(clean_times)
    else:
        assert times == clean_times
        with av.open(str(out)) as c:
            a = c.streams.audio[0]
            dts = [p.dts for p in c.demux(a) if p.size]
        assert all(b > x for x, b in zip(dts, dts[1:]))
        assert abs(onset - float(flash)) <= 1 / 48


# -- the timestamp rules themselves ----------------------------------------------------------------------
def test_decode_timestamps_rise_and_never_pass_their_frame():
    """Random B-frame patterns, variable frame spacing, many joins: valid decode timestamps throughout."""
    from engine.video.timing import DecodeTimestamps

    rng = np.random.default_rng(3)
    for _ in range(200):
        times = np.cumsum(rng.integers(1, 60, size=int(rng.integers(2, 80))))
        order, i = [0], 1  # an encode starts with the first frame shown (a key frame)
        while i < len(times):  # mini-GOPs: the anchor first, then the B-frames before it
            size = int(rng.integers(1, 5))
            group = list(range(i, min(i + size, len(times))))
            order += [group[-1], *group[:-1]]
            i += size
        delay = max(d - shown for d, shown in enumerate(order))
        dts = DecodeTimestamps(delay, step=int(times[0]) or 1)
        stamps = [(int(times[k]), dts.next(int(times[k]))) for k in order]
        assert all(d <= p for p, d in stamps)
        assert all(b[1] > a[1] for a, b in zip(stamps, stamps[1:]))


def test_packet_and_frame_timelines():
    from engine.video.timing import FrameTimeline, PacketTimeline

    class P:
        def __init__(self, pts, dts=None, duration=0):
            self.pts, self.dts, self.duration = pts, pts if dts is None else dts, duration

    strict, loose, cues = PacketTimeline(True), PacketTimeline(False), PacketTimeline(True, equal_is_damage=False)
    for timeline in (strict, loose, cues):
        packets = [P(0), P(10), P(10), P(5), P(30)]
        for p in packets:
            timeline.mend(p)
        got = [p.dts for p in packets]
        assert all(p.pts >= p.dts for p in packets)
        if timeline is loose:
            assert got == [0, 10, 10, 10, 30] and timeline.fixed == 1  # equal allowed, the step back mended
        else:
            assert got == [0, 10, 11, 12, 30]
            assert timeline.fixed == (2 if timeline is strict else 1)
    frames = FrameTimeline(step=2)
    assert [frames.accept(p) for p in (0, 2, 2, 1, None, 8)] == [0, 2, None, None, 4, 8]
    assert (frames.dropped, frames.filled) == (2, 1)
