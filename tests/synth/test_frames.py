"""The training-frame writer: reproducible from its seed, resumable, complete files only."""

import cv2
import numpy as np

from engine.synth.cel import cel_frame
from engine.synth.frames import main, write_frames


def test_frames_are_the_seeded_cel_frames_and_a_rerun_keeps_them(tmp_path):
    paths = write_frames(tmp_path / "f", count=3, size=64, seed=40)
    assert [p.name for p in paths] == ["cel_00000.png", "cel_00001.png", "cel_00002.png"]
    first = cv2.imread(str(paths[0]))[:, :, ::-1]
    assert first.shape == (64, 64, 3)
    t = float(np.random.default_rng([40, 0x7]).uniform(0.0, 8.0))
    np.testing.assert_array_equal(first, cel_frame(40, 64, 64, t))
    stamp = paths[1].stat().st_mtime_ns
    paths[2].unlink()  # an interrupted run: the rerun writes only what is missing
    again = write_frames(tmp_path / "f", count=3, size=64, seed=40)
    assert again[1].stat().st_mtime_ns == stamp and again[2].exists()
    assert not list((tmp_path / "f").glob(".*part*"))


def test_bad_arguments_are_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "f"), "--count", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archivist: error:") and "count" in err[0]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main([str(blocker / "frames"), "--count", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(blocker / "frames") in err[0] and "cannot write frames" in err[0]
