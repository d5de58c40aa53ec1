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


def test_crop_cuts_pairs_from_a_video_and_is_refused_for_an_aged_clip(tmp_path, clip, capsys):
    """``degrade VIDEO --crop N`` once gave uncropped output: pairs are cropped like an image's, and
    the options of one way (a dataset, an aged clip) are refused in the other, never dropped."""
    import cv2

    src = clip("clean.mkv", frames=6, width=64, height=48)
    pairs = tmp_path / "pairs"
    assert main(["degrade", str(src), "-o", str(pairs), "--profile", "normal", "--every", "3", "--crop", "16"]) == 0
    for side in ("gt", "lq"):
        shapes = {cv2.imread(str(p)).shape for p in (pairs / side).iterdir()}
        assert shapes == {(16, 16, 3)}, (side, shapes)
    assert all(json.loads(line)["crop"][2] == 16 for line in (pairs / "manifest.jsonl").read_text().splitlines())
    capsys.readouterr()
    aged, dataset = str(tmp_path / "aged.mkv"), str(tmp_path / "set")
    for output, extra, flag in ((aged, ["--crop", "16"], "--crop"), (aged, ["--count", "2"], "--count"),
                                (aged, ["--every", "2"], "--every"), (aged, ["--workers", "2"], "--workers"),
                                (aged, ["--clip-length", "3"], "--clip-length"),
                                (dataset, ["--codec", "x264"], "--codec"), (dataset, ["--start", "1"], "--start"),
                                (dataset, ["--duration", "1"], "--duration"), (dataset, ["--crf", "20"], "--crf")):
        assert main(["degrade", str(src), "-o", output, "--profile", "normal", *extra]) == 1, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"archivist: error: {flag} applies to "), err
        assert ("not to an aged clip" if output == aged else "not to a dataset folder") in err[0]
    image = tmp_path / "still.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    assert main(["degrade", str(image), "-o", dataset, "--profile", "normal", "--every", "2"]) == 1
    assert capsys.readouterr().err.strip() == (f"archivist: error: --every applies to a video INPUT, not to {image}: "
                                               "leave out --every")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.mkv", "pairs", "still.png"]
