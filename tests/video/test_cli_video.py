"""`archivist restore` on video: segment lines, resume after a real SIGKILL, and every bad input."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from archivist_tui.cli import main
from tests.disks import tmpfs
from tests.video.conftest import packets, read_video

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def model(tiny_compact):
    return str(tiny_compact[0])


@pytest.fixture
def slow_model(tmp_path):
    """A Compact big enough (nf 24, nc 4) that a 160x96 clip takes a moment per segment."""
    import torch

    from engine.models import compact
    from engine.models.files import save_safetensors

    torch.manual_seed(2)
    spec = compact.spec_for(24, 4, 1)
    path = tmp_path / "slow.safetensors"
    save_safetensors(path, compact.build(spec).state_dict(), spec, role="custom")
    return str(path)


def _one_error_line(capsys, code):
    assert code == 1
    # The stream plan and "segment i/N done" lines came before the failure: the error itself is one line.
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if not line.startswith(("segment ", "stream "))]
    assert len(err) == 1 and err[0].startswith("archivist: error: "), err
    return err[0]


def test_cli_restores_a_video_with_segment_lines(clip, model, tmp_path, capsys):
    src = clip("in.mkv", frames=10, audio=True)
    out = tmp_path / "out.mkv"
    assert main(["restore", str(src), "-m", model, "-o", str(out), "--device", "cpu",
                 "--segment-frames", "4"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert [line for line in captured.err.splitlines() if line.startswith("segment")] == [
        "segment 1/3 done", "segment 2/3 done", "segment 3/3 done"]
    assert len(read_video(out)[2]) == 10


def _cli(args, env):
    return subprocess.Popen([sys.executable, "-m", "archivist_tui.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(clip, slow_model, tmp_path, archivist_home):
    src = clip("film.mkv", frames=40, width=160, height=96, audio=True)
    env = dict(os.environ, ARCHIVIST_HOME=str(archivist_home), OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    common = ["-m", slow_model, "--device", "cpu", "--segment-frames", "4"]
    whole = tmp_path / "whole.mkv"
    ref = _cli(["restore", str(src), "-o", str(whole), *common], env)
    assert ref.wait(timeout=120) == 0, ref.stderr.read()

    out = tmp_path / "killed.mkv"
    proc = _cli(["restore", str(src), "-o", str(out), *common], env)
    for line in proc.stderr:
        if line.startswith("segment 2/"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    jobs = list((archivist_home / "jobs").iterdir())
    assert len(jobs) == 1 and len(list(jobs[0].glob("segment-*.nut"))) < 10

    resumed = _cli(["restore", str(src), "-o", str(out), *common, "--resume"], env)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    done_lines = [line for line in err.splitlines() if line.startswith("segment")]
    assert done_lines[-1] == "segment 10/10 done" and len(done_lines) < 10
    assert packets(out) == packets(whole)
    pts_a, tb_a, _, _ = read_video(out)
    pts_b, tb_b, _, _ = read_video(whole)
    assert pts_a == pts_b and len(pts_a) == 40
    assert not (archivist_home / "jobs" / jobs[0].name).exists()


def test_bad_inputs(clip, model, tmp_path, capsys):
    out = tmp_path / "o.mkv"

    def run(src, *extra, output=out):
        return main(["restore", str(src), "-m", model, "-o", str(output), "--device", "cpu", *extra])

    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    assert "empty" in _one_error_line(capsys, run(empty))
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video at all\n" * 100)
    assert "not a readable video" in _one_error_line(capsys, run(fake))
    trunc = clip("trunc.mkv", frames=40)
    data = trunc.read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    assert "truncated" in _one_error_line(capsys, run(trunc))
    audio = tmp_path / "a.mka"
    _write_audio_only(audio)
    assert "no video stream" in _one_error_line(capsys, run(audio))
    good = clip("good.mkv", frames=4)
    assert "does not exist" in _one_error_line(capsys, run(good, output=tmp_path / "nowhere" / "o.mkv"))
    assert not out.exists() and not list(tmp_path.glob(".o.partial*"))


def test_model_whose_channels_do_not_fit(clip, tmp_path, capsys):
    from engine.models import compact
    from engine.models.files import save_safetensors

    spec = compact.spec_for(8, 2, 1, channels=1)
    path = tmp_path / "grey.safetensors"
    save_safetensors(path, compact.build(spec).state_dict(), spec, role="custom")
    src = clip("c.mkv", frames=3)
    code = main(["restore", str(src), "-m", str(path), "-o", str(tmp_path / "o.mkv"), "--device", "cpu"])
    assert "channels" in _one_error_line(capsys, code)
    assert not (tmp_path / "o.mkv").exists()


def test_disk_full_keeps_finished_segments(clip, model, tmp_path, capsys, monkeypatch, archivist_home):
    """ENOSPC injected at the segment write call (a tmpfs variant runs where mounting is allowed)."""
    from engine.video.encode import SegmentWriter

    src = clip("d.mkv", frames=12)
    out = tmp_path / "o.mkv"
    original = SegmentWriter.write
    calls = {"n": 0}

    def full_disk(self, rgb, pts, duration=0):
        calls["n"] += 1
        if calls["n"] == 7:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, rgb, pts, duration)

    monkeypatch.setattr(SegmentWriter, "write", full_disk)
    args = ["restore", str(src), "-m", model, "-o", str(out), "--device", "cpu", "--segment-frames", "3"]
    line = _one_error_line(capsys, main(args))
    assert "no space left" in line.lower()
    assert not out.exists() and not list(tmp_path.glob(".o.partial*"))
    job = next((archivist_home / "jobs").iterdir())
    assert sorted(p.name for p in job.glob("segment-*")) == ["segment-00000.nut", "segment-00001.nut"]
    monkeypatch.setattr(SegmentWriter, "write", original)
    assert main([*args, "--resume"]) == 0
    assert len(read_video(out)[2]) == 12


@pytest.mark.slow
def test_disk_full_on_a_real_tmpfs(clip, model, tmp_path, capsys):
    # Even the least an FFV1 of 80 frames can take (segments and final file together) is more than
    # the 160 KB there: refused up front. (A run that only might not fit is not refused.)
    src = clip("t.mkv", frames=80, width=160, height=96)
    with tmpfs(tmp_path / "small", "160k") as mnt:
        out = mnt / "o.mkv"
        base = ["restore", str(src), "-m", model, "-o", str(out), "--device", "cpu", "--segment-frames", "3",
                "--work-dir", str(mnt)]
        line = _one_error_line(capsys, main(base))
        assert "not enough free space" in line  # the estimate refuses up front
        line = _one_error_line(capsys, main([*base, "--no-space-check"]))
        assert "no space left" in line.lower()
        assert not out.exists() and not list(mnt.glob(".o.partial*"))
        job = next(p for p in mnt.iterdir() if p.is_dir())
        assert list(job.glob("segment-00000.nut")) and not list(job.glob("*.partial"))


def _write_audio_only(path):
    import av
    import numpy as np

    with av.open(str(path), "w") as c:
        s = c.add_stream("flac", rate=8000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        frame.pts = 0
        c.mux(s.encode(frame))
        c.mux(s.encode(None))


def test_cli_sequences_and_option_errors(clip, model, tmp_path, capsys):
    src = clip("s.mkv", frames=5)
    frames = tmp_path / "frames"
    base = ["-m", model, "--device", "cpu"]
    assert main(["restore", str(src), "-o", f"{frames}/", *base, "--format", "tiff"]) == 0
    assert len(list(frames.glob("*.tiff"))) == 5
    out = tmp_path / "back.mp4"
    assert main(["restore", str(frames), "--fps", "25", "-o", str(out), *base, "--preset", "ultrafast"]) == 0
    assert len(read_video(out)[2]) == 5
    capsys.readouterr()
    for bad, word in ((["--encoder-opt", "novalue"], "KEY=VALUE"), (["--start", "1:x"], "--start"),
                      (["--crf", "80", "--codec", "x264"], "--crf"), (["--segment-frames", "0"], "--segment-frames")):
        code = main(["restore", str(src), "-o", str(tmp_path / "o.mkv"), *base, *bad])
        assert word in _one_error_line(capsys, code)
    assert "--start applies to video files, not to an image sequence (--fps)" in _one_error_line(
        capsys, main(["restore", str(frames), "--fps", "24", "--start", "1", "-o", str(tmp_path / "o.mkv"), *base]))
    assert not (tmp_path / "o.mkv").exists()


def test_read_only_output_folder(clip, model, tmp_path, capsys):
    """Where permissions bind (not root) a chmod does it; as root a read-only tmpfs."""
    src = clip("ro.mkv", frames=3)
    folder = tmp_path / "ro"
    folder.mkdir()

    def refused() -> None:
        code = main(["restore", str(src), "-m", model, "-o", str(folder / "o.mkv"), "--device", "cpu"])
        assert "not writable" in _one_error_line(capsys, code)
        assert not list(folder.iterdir())

    if os.geteuid() == 0:
        with tmpfs(folder, "64k", "ro"):
            refused()
        return
    folder.chmod(0o500)
    try:
        refused()
    finally:
        folder.chmod(0o700)


def test_an_encoder_option_is_applied_or_refused_never_dropped(clip, model, tmp_path, capfd):
    """``--encoder-opt foo=bar`` used to be handed to FFmpeg, which left it unused without a word."""
    src = clip("e.mkv", frames=3)
    base = ["restore", str(src), "-m", model, "--device", "cpu"]
    for output, encoder in (("o.mp4", "libx264"), ("o.mkv", "ffv1"), ("o.mov", "prores_ks")):
        assert main([*base, "-o", str(tmp_path / output), "--encoder-opt", "foo=bar"]) == 1
        err = capfd.readouterr().err.strip().splitlines()
        assert err == [f"archivist: error: --encoder-opt 'foo=bar' invalid: allowed options that the {encoder} "
                       f"encoder has (foo is not one of them; 'ffmpeg -h encoder={encoder}' lists them)"], err
    # A value the encoder refuses, and a parameter x264/x265 would skip with a warning: one line each
    # (x264 used to print its own "x264 [error]: invalid preset" line before ours).
    for opt, said in (("preset=fast2", "Error setting preset/tune fast2"), ("x264-params=bogus=1", "bogus = 1")):
        assert main([*base, "-o", str(tmp_path / "o.mp4"), "--encoder-opt", opt]) == 1
        err = capfd.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("archivist: error: ") and f"--encoder-opt {opt}" in err[0], err
        assert said in err[0], err
    # Image files are written without an FFmpeg encoder: there is nothing to apply the option to.
    assert main([*base, "-o", f"{tmp_path / 'frames'}/", "--encoder-opt", "compression_level=3"]) == 1
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--encoder-opt applies to the video codecs" in err[0] and "written as png" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.mkv", "tiny.safetensors"]
    # An option the encoder has is applied: x264 records its settings in the stream.
    out = tmp_path / "grain.mp4"
    assert main([*base, "-o", str(out), "--encoder-opt", "tune=grain"]) == 0
    assert b"deblock=1:-2:-2" in out.read_bytes()


def test_the_containers_restore_help_offers_are_the_ones_it_writes(clip, tmp_path, capsys):
    """``-o x.avi`` was written although ``restore --help`` offered only .mkv/.mp4/.mov: both now read
    engine.video.codecs, and docs/cli.md (generated from the parser) says the same."""
    import re

    assert main(["restore", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    offered = set(re.search(r"for a video: a (\S+) file", text).group(1).split("/"))
    assert offered >= {".mkv", ".mp4", ".mov"}
    src = clip("c.mkv", frames=2)
    for suffix in sorted(offered | {".avi", ".nut", ".webm", ".m4v", ".ts", ".mpg"}):
        code = main(["restore", str(src), "-o", str(tmp_path / f"o{suffix}"), "-m", "unused", "--plan"])
        captured = capsys.readouterr()
        if suffix in offered:
            assert code == 0 and "restored frames" in captured.out, (suffix, captured.err)
        else:
            assert code == 1, suffix
            assert captured.err.strip() == (f"archivist: error: {tmp_path / f'o{suffix}'}: unsupported output type "
                                            f"{suffix}: allowed are {', '.join(sorted(offered, key=text.index))}, "
                                            "or a folder ending in / for an image sequence")
    assert " ".join((ROOT / "docs" / "cli.md").read_text().split()).count(
        f"for a video: a {'/'.join(sorted(offered, key=text.index))} file") == 1


def _only_line(capsys, code) -> str:
    """A refusal: exit 1 and exactly one line on stderr (no stream plan before it), nothing on stdout."""
    assert code == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archivist: error: ") and not captured.out, (err, captured.out)
    return err[0]


def test_a_refused_video_restore_prints_no_plan(clip, model, tmp_path, capsys, archivist_home):
    """The stream plan came before refusals found after planning (a start past the end, a missing
    --work-dir, too little space): checks first, the plan only for a run that goes ahead."""
    src = clip("two.mkv", frames=12, rate=Fraction(6))  # 2 seconds
    out = tmp_path / "out.mkv"
    base = ["restore", str(src), "-o", str(out), "-m", model, "--device", "cpu"]
    line = _only_line(capsys, main([*base, "--start", "99"]))
    assert line.endswith("no frames to restore in the range --start 99: the video ends at 2 s; allowed: --start "
                         "below that")
    assert "--start 99" in _only_line(capsys, main([*base, "--start", "99", "--queue"]))
    # Inside the last frame's own duration (at 1.833 s: Matroska counts milliseconds): no frame starts there either. This
    # was refused only by the run, after the plan and a decode of the whole range.
    for queued in ([], ["--queue"]):
        line = _only_line(capsys, main([*base, "--start", "1.9", *queued]))
        assert line.endswith("no frames to restore in the range --start 1.9: the last frame starts at 1.833 s; "
                             "allowed: --start 1.833 or below"), line
    missing = tmp_path / "no-such-folder"
    assert _only_line(capsys, main([*base, "--work-dir", str(missing)])).endswith(
        f"{missing}: work folder does not exist")
    assert not out.exists() and not missing.exists() and not (archivist_home / "jobs").exists()
    # A run that goes ahead still shows its plan, then its segments.
    assert main([*base, "--start", "1.5"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("stream 0 video") and err[1:] == ["segment 1/1 done"], err
    assert len(read_video(out)[2]) == 3


@pytest.mark.slow
def test_work_and_output_on_one_small_disk_count_twice(clip, model, tmp_path, capsys):
    """The segments and the final file are both on the disk while the file is assembled: on one file
    system the least estimate of each adds up, and a run that cannot fit both is refused before
    anything is written (and before the plan is shown)."""
    src = clip("t.mkv", frames=80, width=160, height=96)
    # FFV1's least estimate: 0.03 × 80 × 160 × 96 × 3 = 110.6 KB each for the segments and the file.
    with tmpfs(tmp_path / "small", "160k") as mnt:
        out = mnt / "o.mkv"
        base = ["restore", str(src), "-m", model, "-o", str(out), "--device", "cpu"]
        line = _only_line(capsys, main([*base, "--work-dir", str(mnt)]))
        assert f"{mnt}: not enough free space: the output needs at least about 221.2 KB" in line, line
        assert not list(mnt.iterdir())
        # The work folder elsewhere: the file alone fits the least estimate (a warning, not a refusal).
        work = tmp_path / "work"
        work.mkdir()
        line = _one_error_line(capsys, main([*base, "--work-dir", str(work)]))
        assert "no space left" in line.lower() and not out.exists()


def _tree(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def _refused(capsys, tmp_path, argv, words, home=None):
    """``main(argv)`` exits != 0 with one line naming ``words``, and nothing is written."""
    before = _tree(tmp_path), _tree(home) if home else []
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("archivist: error: "), err
    for word in words:
        assert word in err[0], err[0]
    assert (_tree(tmp_path), _tree(home) if home else []) == before
    return err[0]


def test_an_aged_clip_refuses_a_negative_seed_by_its_flag(clip, tmp_path, capsys):
    src = clip("a.mkv", frames=3)
    _refused(capsys, tmp_path, ["degrade", str(src), "-o", str(tmp_path / "aged.mkv"), "--profile", "subtle",
                                "--seed", "-5"], ["argument --seed: -5 out of range: allowed an integer 0 or more"])


def test_times_say_the_range_their_key_allows(clip, model, tmp_path, capsys):
    src = clip("t.mkv", frames=3)
    base = ["restore", str(src), "-o", str(tmp_path / "o.mkv"), "-m", model, "--device", "cpu"]
    for bad, words in ((["--duration", "0"], ["--duration 0 invalid: allowed a number > 0 (seconds)"]),
                       (["--duration", "-2"], ["--duration '-2' invalid", "more than 0"]),
                       (["--start", "-1"], ["--start '-1' invalid", "0 or more"]),
                       (["--start", "1:99"], ["--start '1:99' invalid", "each field after a colon below 60"]),
                       (["--start", "1:60"], ["--start '1:60' invalid", "each field after a colon below 60"]),
                       (["--duration", "0:01:75"], ["--duration '0:01:75' invalid", "below 60"]),
                       (["--start", "1:-5"], ["--start '1:-5' invalid"])):
        line = _refused(capsys, tmp_path, [*base, *bad], words)
        assert "0 or more" not in line or bad[0] == "--start"
    # The aged clip reads its times the same way.
    _refused(capsys, tmp_path, ["degrade", str(src), "-o", str(tmp_path / "aged.mkv"), "--profile", "subtle",
                                "--duration", "-2"], ["--duration '-2' invalid", "more than 0"])
    from engine.video.options import parse_time

    assert parse_time("1:02:03.5", "start") == 3723.5 and parse_time("90:00", "start") == 5400


@pytest.mark.parametrize("queue", [False, True])
def test_video_only_options_are_refused_with_an_image_input(model, tmp_path, capsys, queue, archivist_home):
    import numpy as np

    from engine.inference.imageio import write_picture

    write_picture(tmp_path / "img.png", np.full((16, 16, 3), 0.5, np.float32))
    (tmp_path / "imgs").mkdir()
    write_picture(tmp_path / "imgs" / "a.png", np.full((16, 16, 3), 0.5, np.float32))
    q = ["--queue"] if queue else []
    for src, out, bad, words in (
            ("img.png", "q.png", ["--crf", "100", "--segment-frames", "0", "--start", "5"],
             ["--crf, --segment-frames and --start apply to a video input"]),
            ("img.png", "q.png", ["--batch", "0"], ["--batch applies to a video input"]),
            ("img.png", "q.png", ["--batch", "2"], ["--batch applies to a video input"]),
            ("img.png", "q.png", ["--audio", "drop"], ["--audio applies to a video input"]),
            ("img.png", "q.png", ["--plan"], ["--plan applies to a video input"]),
            ("imgs", "outs/", ["--codec", "x264", "--deinterlace", "--resume"],
             ["--codec, --resume and --deinterlace apply to a video input"]),
            ("imgs", "outs/", ["--work-dir", str(tmp_path / "w"), "--no-space-check"],
             ["--work-dir and --no-space-check apply"])):
        _refused(capsys, tmp_path, ["restore", str(tmp_path / src), "-o", str(tmp_path / out), "-m", model,
                                    "--device", "cpu", *bad, *q], [f"{tmp_path / src}: ", *words],
                 home=archivist_home)


def test_an_image_sequence_without_fps_is_told_it_needs_fps(model, tmp_path, capsys):
    import numpy as np

    from engine.inference.imageio import write_picture

    (tmp_path / "seq").mkdir()
    for i in range(2):
        write_picture(tmp_path / "seq" / f"{i:06d}.png", np.full((16, 16, 3), 0.5, np.float32))
    for src in ("seq/%06d.png", "seq/%d.png", "seq"):
        _refused(capsys, tmp_path, ["restore", str(tmp_path / src), "-o", str(tmp_path / "x.mkv"), "-m", model],
                 [f"{tmp_path / src}: an image sequence", "needs --fps RATE"])
