"""The stream plan (issue 16): every input stream copied, converted or dropped before the first frame.

Sources are generated with PyAV (text subtitles through FFmpeg's own encoders, bitmap subtitles as
opaque packets the muxers carry), TrueHD with FFmpeg's command line (PyAV has no TrueHD encoder).
Each output is read back: codecs, texts, times, languages, titles and dispositions.
"""

from __future__ import annotations

import json
import re
import subprocess

import av
import numpy as np
import pytest

from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.video.options import VideoOptions
from engine.video.restore import restore_video
from engine.video.synthetic import write_streams_clip

SUBTITLES = [
    {"codec": "srt", "language": "eng", "title": "Forced narrative", "disposition": ["default", "forced"],
     "cues": [(0.3, 0.8, "Hello {\\i1}world{\\i0}"), (0.9, 0.95, "Two")]},
    {"codec": "ass", "language": "deu", "cues": [(0.2, 0.6, "Hallo")]},
    {"codec": "webvtt", "language": "fra", "cues": [(0.4, 0.5, "Salut")]},
]


@pytest.fixture
def model(tiny_compact):
    return str(tiny_compact[0])


@pytest.fixture
def ffmpeg():
    module = pytest.importorskip("imageio_ffmpeg", reason="TrueHD sources need FFmpeg's command line (imageio-ffmpeg)")
    return module.get_ffmpeg_exe()


def truehd_clip(ffmpeg, path):
    """1 s of 64x48 x264 and TrueHD (24-bit) whose 1 kHz tone starts at 0.5 s, tagged eng / 'Main'."""
    tone = "aevalsrc=if(gte(t\\,0.5)\\,0.5*sin(2*PI*1000*t)\\,0):s=48000:d=1"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=24:duration=1",
                    "-f", "lavfi", "-i", tone, "-map", "0", "-map", "1", "-c:v", "libx264", "-preset", "ultrafast",
                    "-c:a", "truehd", "-strict", "-2", "-metadata:s:a:0", "language=eng",
                    "-metadata:s:a:0", "title=Main", str(path)], check=True)
    return path


def onset(path, index: int) -> float:
    """When the 1 kHz tone starts in audio stream ``index`` (seconds)."""
    with av.open(str(path)) as c:
        stream = c.streams[index]
        for frame in c.decode(stream):
            x = frame.to_ndarray().astype(np.float64)
            x = x[0] if frame.format.is_planar else x[0, ::frame.layout.nb_channels]
            peak = {"s16": 32768.0, "s32": 2.0 ** 31}.get(frame.format.name.rstrip("p"), 1.0)
            hit = np.nonzero(np.abs(x) / peak > 0.1)[0]
            if len(hit):
                return float(frame.pts * frame.time_base) + hit[0] / frame.sample_rate
    raise AssertionError(f"no tone in stream {index} of {path}")


def streams_of(path):
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.codec.canonical_name if s.codec_context else s.name) for s in c.streams]


def cues(path, index: int):
    """(start ms, duration ms, text) of the subtitle stream ``index``, decoded, without style tags."""
    out = []
    with av.open(str(path)) as c:
        s = c.streams[index]
        for packet in c.demux(s):
            if not packet.size or packet.size <= 2 and s.codec_context.name == "mov_text":
                continue  # mov_text writes empty samples for the gaps
            for sub in s.codec_context.decode(packet):
                text = re.sub(r"\{[^}]*\}|<[^>]*>", "", sub.dialogue.decode())  # styles aside
                out.append((int(round(packet.pts * packet.time_base * 1000)),
                            int(round(packet.duration * packet.time_base * 1000)), text))
    return out


# -- the case: TrueHD in .mkv to .mp4 ----------------------------------------------------------
def test_truehd_to_mp4_is_converted_with_the_plan_printed_first(ffmpeg, model, tmp_path, capsys):
    src = truehd_clip(ffmpeg, tmp_path / "film.mkv")
    out = tmp_path / "film.mp4"
    assert main(["restore", str(src), "-o", str(out), "-m", model, "--device", "cpu", "--segment-frames", "10"]) == 0
    err = capsys.readouterr().err.splitlines()
    plan = [line for line in err if line.startswith("stream ")]
    assert plan == [
        "stream 0 video h264: convert to h264: restored frames, encoded with libx264 yuv420p (crf=18 preset=medium)",
        "stream 1 audio truehd (eng, 'Main'): convert to aac: .mp4 cannot hold truehd",
    ]
    first_segment = next(i for i, line in enumerate(err) if line.startswith("segment "))
    assert err.index(plan[-1]) < first_segment  # the plan comes before the first frame
    assert streams_of(out) == [("video", "h264"), ("audio", "aac")]
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        assert (a.metadata.get("language"), a.metadata.get("handler_name")) == ("eng", "Main")
    assert abs(onset(out, 1) - 0.5) < 1 / 48  # in sync with the picture (half a frame)


def test_truehd_choices(ffmpeg, identity_chain, tmp_path):
    src = truehd_clip(ffmpeg, tmp_path / "film.mkv")
    # .mkv holds TrueHD: copied packet for packet, with no timestamp "repair" of its 0.8 ms frames.
    restore_video(src, tmp_path / "copy.mkv", identity_chain, VideoOptions())
    with av.open(str(src)) as a, av.open(str(tmp_path / "copy.mkv")) as b:
        assert [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size] == \
               [bytes(p) for p in b.demux(b.streams.audio[0]) if p.size]
    restore_video(src, tmp_path / "flac.mp4", identity_chain, VideoOptions(audio="flac"))
    assert streams_of(tmp_path / "flac.mp4")[1] == ("audio", "flac")
    with av.open(str(tmp_path / "flac.mp4")) as c:
        assert c.streams.audio[0].codec_context.format.bytes == 4  # 24-bit stays deeper than 16
    assert abs(onset(tmp_path / "flac.mp4", 1) - 0.5) < 0.002
    # Asked to copy what .mp4 cannot hold: refused before anything is written.
    with pytest.raises(ArchivistError, match="^audio copy: .mp4 cannot hold truehd"):
        restore_video(src, tmp_path / "refused.mp4", identity_chain, VideoOptions(audio="copy"))
    assert not list(tmp_path.glob("*refused*"))


# -- --plan and --json -----------------------------------------------------------------------------------
def test_plan_prints_and_does_no_work(tmp_path, capsys, archivist_home):
    src = write_streams_clip(tmp_path / "in.mkv", audio=[{"codec": "flac", "language": "fra"}],
                             subtitles=SUBTITLES[:1])
    out = tmp_path / "out.mp4"
    # No model is even loaded: a name that exists nowhere is fine.
    assert main(["restore", str(src), "-o", str(out), "-m", "no-such-model", "--plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "stream 0 video h264: convert to h264: restored frames, encoded with libx264 yuv420p (crf=18 preset=medium)",
        "stream 1 audio flac (fra): convert to aac: few players play flac in .mp4",
        "stream 2 subtitle subrip (eng, 'Forced narrative', default, forced): convert to mov_text: "
        ".mp4 cannot hold subrip",
    ]
    assert not out.exists() and not (archivist_home / "jobs").exists()
    assert main(["restore", str(src), "-o", str(out), "-m", "no-such-model", "--plan", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["streams"][1] == {"index": 1, "type": "audio", "codec": "flac", "action": "convert", "to": "aac",
                                 "reason": "few players play flac in .mp4", "language": "fra"}
    assert doc["streams"][2]["disposition"] == ["default", "forced"]
    assert doc["frames"] == 24 and not out.exists()


def test_json_run_reports_the_streams(model, tmp_path, capsys):
    src = write_streams_clip(tmp_path / "in.mkv", frames=6, audio=[{"codec": "aac"}])
    out = tmp_path / "out.mkv"
    assert main(["restore", str(src), "-o", str(out), "-m", model, "--device", "cpu", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "done" and doc["frames"] == 6 and doc["output"] == str(out)
    assert [(s["index"], s["action"]) for s in doc["streams"]] == [(0, "convert"), (1, "copy")]


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_the_video_stream_keeps_its_tags(identity_chain, tmp_path, suffix):
    src = write_streams_clip(tmp_path / "in.mkv", frames=3, video={"language": "jpn", "title": "Feature",
                                                                    "disposition": ["default"]})
    out = tmp_path / f"out{suffix}"
    restore_video(src, out, identity_chain, VideoOptions(codec="x264"))
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert v.metadata.get("language") == "jpn" and v.disposition & av.stream.Disposition.default
        assert v.metadata.get("title" if suffix == ".mkv" else "handler_name") == "Feature"


# -- subtitles ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_text_subtitles_become_mov_text(identity_chain, tmp_path, suffix):
    src = write_streams_clip(tmp_path / "in.mkv", subtitles=SUBTITLES)
    out = tmp_path / f"out{suffix}"
    restore_video(src, out, identity_chain, VideoOptions(codec="x264" if suffix == ".mp4" else None))
    assert streams_of(out)[1:] == [("subtitle", "mov_text")] * 3
    assert cues(out, 1) == [(300, 500, "Hello world"), (900, 50, "Two")]
    assert cues(out, 2) == [(200, 400, "Hallo")] and cues(out, 3) == [(400, 100, "Salut")]
    with av.open(str(out)) as c:
        s = c.streams[1]
        assert s.metadata.get("language") == "eng" and s.metadata.get("handler_name") == "Forced narrative"
        assert s.disposition & av.stream.Disposition.default
        if suffix == ".mp4":  # MOV has no forced flag
            assert s.disposition & av.stream.Disposition.forced
        assert c.streams[3].metadata.get("language") == "fra"


def test_mov_text_becomes_subrip_in_mkv_and_text_is_kept(identity_chain, tmp_path):
    src = write_streams_clip(tmp_path / "in.mp4", subtitles=[dict(SUBTITLES[0], codec="mov_text")])
    out = tmp_path / "out.mkv"
    restore_video(src, out, identity_chain, VideoOptions())
    assert streams_of(out)[1] == ("subtitle", "subrip")
    assert [c[:2] for c in cues(out, 1)] == [(300, 500), (900, 50)]
    with av.open(str(out)) as c:
        s = c.streams[1]
        assert s.metadata.get("language") == "eng"
        assert s.disposition & av.stream.Disposition.forced and s.disposition & av.stream.Disposition.default


def test_mkv_copies_every_subtitle_and_attachment(identity_chain, tmp_path):
    subs = [*SUBTITLES, {"codec": "dvb_subtitle"}, {"codec": "dvd_subtitle"}]
    src = write_streams_clip(tmp_path / "in.mkv", subtitles=subs, attachment=True)
    out = tmp_path / "out.mkv"
    restore_video(src, out, identity_chain, VideoOptions())
    assert streams_of(out)[1:] == [("subtitle", "subrip"), ("subtitle", "ass"), ("subtitle", "webvtt"),
                                   ("subtitle", "dvb_subtitle"), ("subtitle", "dvd_subtitle"),
                                   ("attachment", "font.ttf")]
    with av.open(str(src)) as a, av.open(str(out)) as b:
        for i in range(1, 6):
            assert [bytes(p) for p in a.demux(a.streams[i]) if p.size] == [bytes(p) for p in b.demux(b.streams[i])
                                                                           if p.size]
        assert b.streams[1].metadata.get("title") == "Forced narrative"
        assert b.streams[1].disposition & av.stream.Disposition.forced  # lost by a plain copy before


def test_bitmap_subtitles_a_container_cannot_hold_are_dropped_with_the_reason(identity_chain, tmp_path):
    src = write_streams_clip(tmp_path / "in.mkv", subtitles=[{"codec": "dvb_subtitle"}, {"codec": "dvd_subtitle"}],
                             attachment=True)
    plans = []
    restore_video(src, tmp_path / "out.mp4", identity_chain, VideoOptions(), on_plan=plans.append)
    reasons = {d.index: (d.action, d.reason) for d in plans[0].streams.streams}
    assert reasons[1] == ("drop", ".mp4 cannot hold dvb_subtitle, a bitmap subtitle (pictures cannot become text)")
    assert reasons[2] == ("copy", "")  # MP4 holds DVD (VobSub) subtitles
    assert reasons[3] == ("drop", ".mp4 cannot hold attachments")
    assert streams_of(tmp_path / "out.mp4") == [("video", "h264"), ("subtitle", "dvd_subtitle")]
    restore_video(src, tmp_path / "out.avi", identity_chain, VideoOptions(), on_plan=plans.append)
    assert [d.reason for d in plans[1].streams.streams[1:3]] == [".avi cannot hold subtitles"] * 2


def test_subtitles_across_the_cut_are_trimmed(identity_chain, tmp_path):
    cut = [(0.1, 0.2, "Gone"), (0.2, 0.4, "Spans the start"), (0.5, 0.6, "Inside"), (0.8, 1.0, "Spans the end")]
    src = write_streams_clip(tmp_path / "in.mkv", subtitles=[{"codec": "srt", "cues": cut}], audio=[{"codec": "aac"}])
    for suffix in (".mkv", ".mp4"):
        out = tmp_path / f"trial{suffix}"
        restore_video(src, out, identity_chain, VideoOptions(start=0.25, duration=0.6, codec="x264"))
        assert cues(out, 2) == [(0, 150, "Spans the start"), (250, 100, "Inside"), (550, 50, "Spans the end")]
        # The tone starts at 0.5 s in the source: 0.25 s into the trial, with the picture.
        assert abs(onset(out, 1) - 0.25) < 1 / 48


# -- audio -----------------------------------------------------------------------------------------------
def test_audio_defaults_and_choices(identity_chain, tmp_path):
    src = write_streams_clip(tmp_path / "in.mkv", audio=[{"codec": "flac", "language": "fra", "title": "VF",
                                                          "disposition": ["default"]}, {"codec": "ac3"}])
    restore_video(src, tmp_path / "auto.mp4", identity_chain, VideoOptions())
    assert streams_of(tmp_path / "auto.mp4")[1:] == [("audio", "aac"), ("audio", "ac3")]  # FLAC becomes AAC
    assert abs(onset(tmp_path / "auto.mp4", 1) - 0.5) < 0.002
    with av.open(str(tmp_path / "auto.mp4")) as c:
        a = c.streams[1]
        assert (a.metadata.get("language"), a.metadata.get("handler_name")) == ("fra", "VF")
        assert a.disposition & av.stream.Disposition.default
    restore_video(src, tmp_path / "copy.mp4", identity_chain, VideoOptions(audio="copy"))
    assert streams_of(tmp_path / "copy.mp4")[1:] == [("audio", "flac"), ("audio", "ac3")]
    restore_video(src, tmp_path / "opus.mkv", identity_chain, VideoOptions(audio="opus"))
    assert streams_of(tmp_path / "opus.mkv")[1:] == [("audio", "opus"), ("audio", "opus")]
    assert abs(onset(tmp_path / "opus.mkv", 2) - 0.5) < 0.002
    restore_video(src, tmp_path / "none.mkv", identity_chain, VideoOptions(audio="drop"))
    assert streams_of(tmp_path / "none.mkv") == [("video", "ffv1")]
    # A choice the container cannot hold is refused before anything is written.
    with pytest.raises(ArchivistError, match=r"^audio flac: .mov files cannot hold flac .*allowed there: copy, aac"):
        restore_video(src, tmp_path / "refused.mov", identity_chain, VideoOptions(audio="flac"))
    assert not list(tmp_path.glob("*refused*"))


def test_bad_audio_choice_is_one_error_line(tmp_path, capsys):
    src = write_streams_clip(tmp_path / "in.mkv", frames=2, audio=[{"codec": "aac"}])
    assert main(["restore", str(src), "-o", str(tmp_path / "o.mov"), "-m", "x", "--audio", "opus", "--plan"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archivist: error: --audio opus: .mov files cannot hold opus")


# -- the queue ---------------------------------------------------------------------------------------------
def test_a_queued_job_records_its_plan_before_the_first_frame(model, tmp_path):
    from engine.queue.kinds import JobContext, get_kind

    src = write_streams_clip(tmp_path / "in.mkv", frames=4, audio=[{"codec": "flac"}])
    kind = get_kind("restore")
    spec = kind.validate({"input": str(src), "output": str(tmp_path / "out.mp4"), "models": [model],
                          "video": {"segment_frames": 2, "audio": "aac"}})
    events, progress = [], []
    ctx = JobContext(job_id=1, device="cpu", work_dir=tmp_path / "job", progress=lambda d, t: progress.append(d),
                     should_stop=lambda: False, event=lambda m: events.append((len(progress), m)))
    (tmp_path / "job").mkdir()
    assert kind.run(spec, ctx) is True
    assert events[0] == (0, "stream plan: stream 0 video h264: convert to h264: restored frames, encoded with "
                            "libx264 yuv420p (crf=18 preset=medium); stream 1 audio flac: convert to aac: --audio aac")
    assert streams_of(tmp_path / "out.mp4")[1] == ("audio", "aac")


def test_queue_refuses_a_job_whose_streams_cannot_be_written(tmp_path, capsys):
    from engine.queue.client import QueueClient

    src = write_streams_clip(tmp_path / "in.mkv", frames=2, audio=[{"codec": "aac"}])
    code = main(["restore", str(src), "-o", str(tmp_path / "o.mov"), "-m", "x", "--audio", "opus", "--queue"])
    assert code == 1 and "--audio opus: .mov files cannot hold opus" in capsys.readouterr().err
    with QueueClient() as client:
        assert client.list_jobs() == []


def test_queue_prints_the_plan_and_the_worker_records_it(model, tmp_path, capsys):
    """``restore --queue`` checks and prints the plan; the real worker (run here in-process) records it as an event."""
    from engine.queue import worker
    from engine.queue.client import QueueClient
    from engine.queue.store import Store

    src = write_streams_clip(tmp_path / "in.mkv", frames=4, audio=[{"codec": "flac", "language": "fra"}])
    out = tmp_path / "out.mp4"
    assert main(["restore", str(src), "-o", str(out), "-m", model, "--queue", "--segment-frames", "2"]) == 0
    captured = capsys.readouterr()
    job_id = int(captured.out.strip())
    assert "stream 1 audio flac (fra): convert to aac: few players play flac in .mp4" in captured.err.splitlines()
    store = Store()
    job = store.claim(["cpu"])
    assert job is not None and job.id == job_id
    assert worker.main([str(job_id), job.token, "--device", "cpu"]) == 0
    with QueueClient() as client:
        assert client.get(job_id).status == "done"
        messages = [e.message for e in client.events(job_id)]
    store.close()
    plan = [m for m in messages if m.startswith("stream plan: ")]
    assert len(plan) == 1 and "stream 1 audio flac (fra): convert to aac" in plan[0]
    assert messages.index(plan[0]) < messages.index("done")
    assert streams_of(out)[1] == ("audio", "aac")


def test_a_damaged_audio_packet_does_not_lose_the_restore(identity_chain, tmp_path, caplog):
    """Converting audio decodes it at the very end: a packet the decoder refuses is skipped, with a warning."""
    import logging

    clean = write_streams_clip(tmp_path / "clean.mkv", audio=[{"codec": "flac"}])
    src = tmp_path / "damaged.mkv"
    with av.open(str(clean)) as c, av.open(str(src), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in c.streams}
        count = 0
        for p in c.demux():
            if not p.size:
                continue
            index = p.stream.index
            if p.stream.type == "audio":
                count += 1
                if count == 3:  # the third FLAC frame becomes noise the decoder refuses
                    damaged = av.Packet(b"\xff" * p.size)
                    damaged.pts, damaged.dts, damaged.duration = p.pts, p.dts, p.duration
                    damaged.time_base = p.time_base
                    p = damaged
            p.stream = streams[index]
            out.mux(p)
    with caplog.at_level(logging.WARNING):
        restore_video(src, tmp_path / "out.mp4", identity_chain, VideoOptions())
    assert streams_of(tmp_path / "out.mp4")[1] == ("audio", "aac")
    assert any("1 damaged packet(s) could not be decoded" in r.getMessage() for r in caplog.records)
