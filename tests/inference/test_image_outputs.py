"""Where ``archivist restore`` writes images: never over its input, never over an existing file
unless ``--overwrite`` (and then only by the final rename), with the umask's permissions."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from archivist_tui.cli import main


def _images(folder: Path, n: int = 3, seed: int = 0, size=(24, 32)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        path = folder / f"s{i}.png"
        assert cv2.imwrite(str(path), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
        out.append(path)
    return out


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def _refused(capsys, argv) -> str:
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archivist: error: "), lines
    return lines[0]


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink", "folder"])
def test_an_image_restored_onto_itself_is_refused(tmp_path, tiny_compact, capsys, monkeypatch, spelling):
    model, _ = tiny_compact
    src = _images(tmp_path / "scans", n=1)[0]
    monkeypatch.chdir(tmp_path / "scans")
    output = {"same": str(src), "dot": "./s0.png", "symlink": str(tmp_path / "link.png"),
              "hardlink": str(tmp_path / "hard.png"), "folder": str(tmp_path / "scans") + "/"}[spelling]
    if spelling == "symlink":
        (tmp_path / "link.png").symlink_to(src)
    if spelling == "hardlink":
        os.link(src, tmp_path / "hard.png")
    before = _snapshot(tmp_path)
    for extra in ([], ["--overwrite"], ["--queue", "--overwrite"]):
        line = _refused(capsys, ["restore", "s0.png", "-o", output, "-m", str(model), *extra])
        assert "the output is the input" in line and "s0.png" in line
    assert _snapshot(tmp_path) == before


def test_a_folder_restored_into_itself_is_refused_and_a_subfolder_is_not(tmp_path, tiny_compact, capsys,
                                                                       monkeypatch):
    model, _ = tiny_compact
    scans = tmp_path / "scans"
    _images(scans)
    before = _snapshot(scans)
    monkeypatch.chdir(tmp_path)
    for output in (str(scans) + "/", "scans/", "./scans/", "scans/../scans/"):
        for extra in ([], ["--overwrite"], ["--format", "tiff"], ["--queue"]):
            line = _refused(capsys, ["restore", "scans", "-o", output, "-m", str(model), *extra])
            assert "the output folder is the input folder" in line
    assert _snapshot(scans) == before
    # restore reads only the top level of a folder: scans/restored/ is allowed, and a second run
    # does not take the first one's results as input.
    assert main(["restore", "scans", "-o", "scans/restored/", "-m", str(model)]) == 0
    assert sorted(p.name for p in (scans / "restored").iterdir()) == ["s0.png", "s1.png", "s2.png"]
    assert {k: v for k, v in _snapshot(scans).items() if not k.startswith("restored")} == before


def test_two_inputs_with_one_output_name_are_refused(tmp_path, tiny_compact, capsys):
    model, _ = tiny_compact
    scans = tmp_path / "scans"
    _images(scans, n=1)
    cv2.imwrite(str(scans / "s0.jpg"), np.zeros((8, 8, 3), np.uint8))
    line = _refused(capsys, ["restore", str(scans), "-o", str(tmp_path / "out") + "/", "-m", str(model)])
    assert "gives the same output name s0.png" in line
    assert not (tmp_path / "out").exists()


def test_an_existing_output_is_refused_unless_overwrite(tmp_path, tiny_compact, capsys):
    model, _ = tiny_compact
    src = _images(tmp_path / "scans", n=1)[0]
    out = tmp_path / "out.png"
    out.write_bytes(b"last week's result")
    line = _refused(capsys, ["restore", str(src), "-o", str(out), "-m", str(model)])
    assert f"{out}: output exists" in line and "--overwrite" in line
    line = _refused(capsys, ["restore", str(src), "-o", str(out), "-m", str(model), "--queue"])
    assert f"{out}: output exists" in line
    assert out.read_bytes() == b"last week's result"
    assert main(["restore", str(src), "-o", str(out), "-m", str(model), "--overwrite"]) == 0
    assert cv2.imread(str(out)).shape == (24, 32, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "scans", "tiny.safetensors"]


def test_a_failed_overwrite_leaves_every_old_file_and_no_partial(tmp_path, tiny_compact, capsys):
    model, _ = tiny_compact
    scans = tmp_path / "scans"
    _images(scans, n=4)
    (scans / "s2.png").write_bytes(b"broken scan")
    out = tmp_path / "restored"
    _images(out, n=4, seed=7)
    before = _snapshot(out)
    line = _refused(capsys, ["restore", str(scans), "-o", str(out), "-m", str(model), "--overwrite"])
    assert "s2.png" in line
    assert _snapshot(out) == before  # s0 and s1 were restored, but only into partial files, now gone


def test_restored_images_follow_the_umask_like_videos(tmp_path, tiny_compact):
    model, _ = tiny_compact
    src = _images(tmp_path / "scans", n=2)[0]
    old = os.umask(0o022)
    try:
        assert main(["restore", str(src), "-o", str(tmp_path / "one.png"), "-m", str(model)]) == 0
        assert main(["restore", str(tmp_path / "scans"), "-o", str(tmp_path / "many") + "/", "-m", str(model),
                     "--format", "tiff"]) == 0
        os.umask(0o027)
        assert main(["restore", str(src), "-o", str(tmp_path / "group.png"), "-m", str(model)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "one.png").stat().st_mode) == 0o644
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "many").iterdir()} == {0o644}
    assert stat.S_IMODE((tmp_path / "group.png").stat().st_mode) == 0o640


def test_one_image_into_a_new_folder(tmp_path, tiny_compact, capsys):
    """``-o restored/`` names a folder (created), also for one image: a path keeps its separator."""
    model, _ = tiny_compact
    src = _images(tmp_path / "scans", n=1)[0]
    out = str(tmp_path / "restored") + "/"
    for extra in (["--queue"], []):
        assert main(["restore", str(src), "-o", out, "-m", str(model), *extra]) == 0
    assert cv2.imread(str(tmp_path / "restored" / "s0.png")).shape == (24, 32, 3)
