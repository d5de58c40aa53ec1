"""The dataset writer validates everything before it writes anything, never reads its own output,
and removes only partial files it owns."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2

from .helpers import cartoon


def _frames(folder: Path, n: int = 2, w: int = 320, h: int = 240) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        assert cv2.imwrite(str(folder / f"f{i}.png"), cartoon(w, h, seed=i))
    return folder


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def test_a_refused_crop_writes_nothing_and_the_corrected_run_works(cli, tmp_path):
    src = _frames(tmp_path / "clean")
    out = tmp_path / "ds"
    for extra in ([], ["--queue"]):
        rc, _, err = cli("degrade", str(src), "-o", str(out), "--profile", "subtle", "--crop", "256", *extra)
        assert rc == 1 and len(err.strip().splitlines()) == 1
        assert "320x240 is smaller than --crop 256; allowed: a crop up to 240" in err
        assert not out.exists()
    out.mkdir()  # a folder the user made for it: still nothing written into it
    rc, _, err = cli("degrade", str(src), "-o", str(out), "--profile", "subtle", "--crop", "256")
    assert rc == 1 and not any(out.iterdir())
    rc, stdout, err = cli("degrade", str(src), "-o", str(out), "--profile", "subtle", "--crop", "200")
    assert rc == 0, err
    assert "2 pairs written" in stdout
    assert json.loads((out / "dataset.json").read_text())["crop"] == 200


def test_a_video_dataset_is_checked_before_a_frame_is_extracted(cli, tmp_path):
    from engine.video.synthetic import write_test_clip

    clip = write_test_clip(tmp_path / "reel.mkv", frames=3, width=64, height=48)
    out = tmp_path / "ds"
    rc, _, err = cli("degrade", str(clip), "-o", str(out), "--profile", "subtle", "--crop", "56")
    assert rc == 1 and "64x48 is smaller than --crop 56" in err
    assert not out.exists()
    assert cli("degrade", str(clip), "-o", str(out), "--profile", "subtle", "--crop", "40")[0] == 0
    before = _snapshot(out)
    rc, _, err = cli("degrade", str(clip), "-o", str(out), "--profile", "subtle", "--crop", "40", "--seed", "9")
    assert rc == 1 and "made with seed=0" in err
    assert _snapshot(out) == before


def test_an_output_inside_the_input_folder_is_refused(cli, tmp_path, monkeypatch):
    src = _frames(tmp_path / "clean", w=64, h=48)
    before = _snapshot(src)
    monkeypatch.chdir(tmp_path)
    for output in ("clean", "clean/pairs", "./clean/sub/pairs", str(src / ".." / "clean" / "x")):
        for extra in ([], ["--queue"]):
            rc, _, err = cli("degrade", "clean", "-o", output, "--profile", "subtle", *extra)
            assert rc == 1 and "the output folder is inside the input folder" in err, err
    (tmp_path / "link").symlink_to(src)
    rc, _, err = cli("degrade", "clean", "-o", "link/pairs", "--profile", "subtle")
    assert rc == 1 and "the output folder is inside the input folder" in err
    assert _snapshot(src) == before
    # The other way round: the input inside the output's gt/ (the writer would write among its inputs).
    assert cli("degrade", "clean", "-o", "ds", "--profile", "subtle")[0] == 0
    rc, _, err = cli("degrade", "ds/gt", "-o", "ds", "--profile", "subtle")
    assert rc == 1 and "the input is inside the output's gt/ folder" in err


def test_a_folder_of_other_files_is_not_taken_for_a_dataset(cli, tmp_path):
    src = _frames(tmp_path / "clean", w=64, h=48)
    out = tmp_path / "mine"
    _frames(out / "gt", n=1, w=16, h=16)  # the user's own gt/f0.png, no dataset.json
    before = _snapshot(out)
    rc, _, err = cli("degrade", str(src), "-o", str(out), "--profile", "subtle")
    assert rc == 1 and "holds gt but no dataset.json" in err
    assert _snapshot(out) == before


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_partial_files_the_writer_owns_are_cleared(cli, tmp_path):
    src = _frames(tmp_path / "clean", w=64, h=48)
    out = tmp_path / "ds"
    assert cli("degrade", str(src), "-o", str(out), "--profile", "subtle")[0] == 0
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        planted = {
            "dead": out / "lq" / f".f0_0000.png.archivist-p{_dead_pid()}.part",  # a killed direct run's
            "live": out / "lq" / f".f1_0000.png.archivist-p{live.pid}.part",  # a run still writing
            "other job": out / "gt" / ".f0_0000.png.archivist-job7.part",  # a queued job's: its cancel removes it
            "user": out / "gt" / ".notes.tmp1",
            "user2": out / "lq" / ".f0_0000.tmp.png.swp",
        }
        for path in planted.values():
            path.write_bytes(b"x")
        assert cli("degrade", str(src), "-o", str(out), "--profile", "subtle", "--count", "2")[0] == 0
        assert {k for k, p in planted.items() if p.exists()} == {"live", "other job", "user", "user2"}
    finally:
        live.kill()
        live.wait()
