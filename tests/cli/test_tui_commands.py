"""The commands the TUI runs as its child processes (one door): the same `archivist` a shell user types.

``profiles preview`` (the Profiles screen's clean/damaged frame), ``preview`` on the built-in
sample frame (the Models screen's before/after) and ``models speed`` (its speed test), each run
in-process with a tiny model and a real profile, with the output the TUI parses.
"""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np

from archivist_tui.cli import main


def test_profiles_preview_writes_both_frames_and_the_record(archivist_home, tmp_path, capsys):
    clean, damaged = tmp_path / "clean.png", tmp_path / "damaged.png"
    assert main(["profiles", "preview", "heavy", "--clean", str(clean), "--damaged", str(damaged),
                 "--seed", "5", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert isinstance(record, dict) and record
    a, b = cv2.imread(str(clean)), cv2.imread(str(damaged))
    assert a.shape == b.shape == (192, 256, 3) and not np.array_equal(a, b)
    # The same seed draws the same damage; an existing output is kept unless --overwrite.
    again = tmp_path / "again.png"
    assert main(["profiles", "preview", "heavy", "--clean", str(tmp_path / "c2.png"), "--damaged", str(again),
                 "--seed", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == record
    assert np.array_equal(cv2.imread(str(again)), b)
    assert main(["profiles", "preview", "heavy", "--clean", str(clean), "--damaged", str(damaged)]) == 1
    assert "output exists" in capsys.readouterr().err
    assert main(["profiles", "preview", "heavy", "--clean", str(clean), "--damaged", str(damaged), "--seed", "6",
                 "--overwrite"]) == 0
    assert not np.array_equal(cv2.imread(str(damaged)), b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.png", "c2.png", "clean.png", "damaged.png"]


def test_preview_without_input_uses_the_sample_frame(archivist_home, tiny_compact, tmp_path, capsys):
    path, _ = tiny_compact
    (archivist_home / "models").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, archivist_home / "models" / "tiny.safetensors")
    out = tmp_path / "split.png"
    assert main(["preview", "-o", str(out), "-m", "tiny", "--layout", "split"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert cv2.imread(str(out)).shape == (192, 256, 3)
    assert main(["preview", "-o", str(out), "-m", "tiny", "--layout", "split", "--overwrite"]) == 0


def test_models_speed_prints_the_figures_the_tui_shows(archivist_home, tiny_compact, capsys):
    path, _ = tiny_compact
    assert main(["models", "speed", "-m", str(path), "--size", "32", "--seconds", "0", "--device", "cpu",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["fps"] > 0 and doc["frames"] >= 2 and doc["size"] == 32 and doc["device"] == "cpu"
    assert main(["models", "speed", "-m", str(path), "--size", "32", "--seconds", "0", "--device", "cpu"]) == 0
    assert " fps at 32×32 on cpu" in capsys.readouterr().out
