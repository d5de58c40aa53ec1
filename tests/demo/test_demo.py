"""``archivist demo`` end to end (shortened): draw, age, restore through the video pipeline, measure."""

from __future__ import annotations

import re

import av
import cv2
import numpy as np
import pytest

from archivist_tui.cli import main


@pytest.mark.slow
def test_demo_shortened(tmp_path, tiny_compact, capsys):
    model, _ = tiny_compact
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "-m", str(model), "--seconds", "1", "--size", "96x64", "--device", "cpu"])
    assert rc == 0
    captured = capsys.readouterr()
    last = captured.out.strip().splitlines()[-1]
    m = re.fullmatch(r"PSNR damaged (\d+\.\d\d) dB -> restored (\d+\.\d\d) dB", last)
    assert m, last
    assert 5 < float(m.group(1)) < 60
    for name in ("clean.mkv", "damaged.mkv", "restored.mkv"):
        with av.open(str(out / name)) as c:
            assert len(c.streams.audio) == 1
            assert sum(1 for _ in c.decode(video=0)) == 24
    picture = cv2.imread(str(out / "side_by_side.png"))[..., ::-1]
    band = picture.shape[0] - 64  # a label band over the three frames
    assert picture.shape[1:] == (96 * 3, 3) and band >= 12
    frames = []
    for name in ("clean.mkv", "damaged.mkv", "restored.mkv"):
        with av.open(str(out / name)) as c:
            frames.append([f.to_ndarray(format="rgb24") for f in c.decode(video=0)][12])
    assert (picture[band:] == np.concatenate(frames, axis=1)).all()  # the pictures themselves untouched
    labels = [picture[:band, i * 96:(i + 1) * 96] for i in range(3)]
    for label in labels:  # light lettering on the dark band, in every panel, each with its own word
        assert (label.max(axis=2) > 150).sum() >= 20
    assert not (labels[0] == labels[1]).all() and not (labels[1] == labels[2]).all()
    assert "ageing it with the 'normal' profile" in captured.err


def test_demo_bad_size_and_missing_model(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--size", "big"]) == 1
    assert "--size 'big' invalid" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "d"), "-m", "no-such-model"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no model named 'no-such-model'" in err[0]


@pytest.mark.slow
def test_demo_with_the_builtin_starter_restores(tmp_path, capsys):
    """The default model is the built-in starter: no import, no download, and it really helps."""
    rc = main(["demo", "--out", str(tmp_path / "demo"), "--seconds", "1", "--size", "128x96", "--device", "cpu"])
    assert rc == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    m = re.fullmatch(r"PSNR damaged (\d+\.\d\d) dB -> restored (\d+\.\d\d) dB", last)
    assert m, last
    assert float(m.group(2)) > float(m.group(1)) + 1.0, last
