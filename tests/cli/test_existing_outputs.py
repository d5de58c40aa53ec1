"""Every command that writes a file the user names refuses its own input and an existing file
unless ``--overwrite``: ``preview`` and ``models export`` beside ``restore`` and ``degrade``."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from archivist_tui.cli import main


def _refused(capsys, argv) -> str:
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archivist: error: "), lines
    return lines[0]


def test_preview_refuses_its_input_and_an_existing_picture(tmp_path, tiny_compact, capsys, monkeypatch):
    model, _ = tiny_compact
    src = tmp_path / "scan.png"
    cv2.imwrite(str(src), np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    monkeypatch.chdir(tmp_path)
    line = _refused(capsys, ["preview", "scan.png", "-m", str(model), "-o", "./scan.png", "--overwrite"])
    assert "the output is the input" in line
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest
    out = tmp_path / "before-after.png"
    out.write_bytes(b"yesterday's picture")
    line = _refused(capsys, ["preview", "scan.png", "-m", str(model), "-o", str(out)])
    assert f"{out}: output exists" in line
    assert out.read_bytes() == b"yesterday's picture"
    assert main(["preview", "scan.png", "-m", str(model), "-o", str(out), "--overwrite"]) == 0
    assert cv2.imread(str(out)).shape[0] == 24


def test_models_export_refuses_an_existing_file(tmp_path, tiny_compact, capsys):
    model, _ = tiny_compact
    assert main(["models", "import", str(model), "--name", "tiny-one"]) == 0
    out = tmp_path / "tiny-one.pth"
    out.write_bytes(b"someone else's model")
    for target in (out, tmp_path):  # the file, or the folder it goes into by name
        line = _refused(capsys, ["models", "export", "tiny-one", "--format", "pth", "-o", str(target)])
        assert f"{out}: output exists" in line
    assert out.read_bytes() == b"someone else's model"
    assert main(["models", "export", "tiny-one", "--format", "pth", "-o", str(out), "--overwrite"]) == 0
    assert out.read_bytes() != b"someone else's model"
