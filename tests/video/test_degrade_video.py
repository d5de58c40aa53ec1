"""``archivist degrade`` with video input: an aged clip (clip mode) or pairs from a video's frames."""

from __future__ import annotations

import json

import av
import numpy as np

from archivist_tui.cli import main


def _frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _has_audio(path):
    with av.open(str(path)) as c:
        return len(c.streams.audio) == 1


def test_age_a_clip_keeps_frames_and_audio_and_is_reproducible(tmp_path, clip, capsys):
    src = clip("clean.mkv", frames=10, width=96, height=64, audio=True)
    out1, out2 = tmp_path / "aged1.mkv", tmp_path / "aged2.mkv"
    for out in (out1, out2):
        assert main(["degrade", str(src), "-o", str(out), "--profile", "heavy", "--seed", "7"]) == 0
    assert "10 frames aged" in capsys.readouterr().out
    clean, aged = _frames(src), _frames(out1)
    assert len(aged) == len(clean) == 10
    assert _has_audio(out1)
    diffs = [np.abs(a.astype(int) - c).mean() for a, c in zip(aged, clean)]
    assert min(diffs) > 1.0  # every frame is damaged
    # Fresh grain every frame: the damage differs between frames even where the picture does not.
    noise = [a.astype(int) - c for a, c in zip(aged, clean)]
    assert np.abs(noise[1] - noise[0]).mean() > 0.5
    for a, b in zip(_frames(out1), _frames(out2)):
        np.testing.assert_array_equal(a, b)


def test_pairs_from_a_video(tmp_path, clip, capsys):
    src = clip("clean.mp4", frames=9, width=64, height=48)
    out = tmp_path / "pairs"
    assert main(["degrade", str(src), "-o", str(out), "--profile", "normal", "--every", "3"]) == 0
    names = sorted(p.name for p in (out / "gt").iterdir())
    assert names == ["clean_f000000_0000.png", "clean_f000003_0000.png", "clean_f000006_0000.png"]
    assert len(list((out / "lq").iterdir())) == 3
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all("seed" in json.loads(line) for line in lines)
    # Re-running skips what is done.
    assert main(["degrade", str(src), "-o", str(out), "--profile", "normal", "--every", "3"]) == 0
    assert "0 pairs written, 3 already there" in capsys.readouterr().out


def test_bad_video_input_is_one_line(tmp_path, capsys):
    fake = tmp_path / "fake.mkv"
    fake.write_text("not a video")
    assert main(["degrade", str(fake), "-o", str(tmp_path / "out.mkv"), "--profile", "normal"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archivist: error: ")
    assert not (tmp_path / "out.mkv").exists()
