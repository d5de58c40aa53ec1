"""Where a video restore writes: never over its input, never over an existing file unless
``--overwrite`` (then only by the final rename), nothing left behind by a failed run, and a
free-space check that says sizes in the unit that fits and never refuses what fits."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from archivist_tui.cli import main
from engine.video.options import VideoOptions
from engine.video.restore import restore_video
from tests.disks import tmpfs
from tests.video.conftest import read_video


@pytest.fixture
def model(tiny_compact):
    return str(tiny_compact[0])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): "dir" if p.is_dir() else _digest(p) for p in sorted(root.rglob("*"))}


def _refused(capsys, argv) -> str:
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archivist: error: "), lines
    return lines[0]


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink"])
def test_a_video_restored_onto_itself_is_refused(clip, model, tmp_path, capsys, monkeypatch, archivist_home,
                                                 spelling):
    src = clip("a.mkv", frames=4)
    monkeypatch.chdir(tmp_path)
    output = {"same": "a.mkv", "dot": "./a.mkv", "symlink": "link.mkv", "hardlink": "hard.mkv"}[spelling]
    if spelling == "symlink":
        (tmp_path / "link.mkv").symlink_to(src)
    if spelling == "hardlink":
        os.link(src, tmp_path / "hard.mkv")
    before = _snapshot(tmp_path)
    for extra in ([], ["--overwrite"], ["--resume", "--overwrite"], ["--queue", "--overwrite"], ["--plan"]):
        line = _refused(capsys, ["restore", "a.mkv", "-o", output, "-m", model, "--device", "cpu", *extra])
        assert "the output is the input" in line
    assert _snapshot(tmp_path) == before
    assert not (archivist_home / "jobs").exists() or not any((archivist_home / "jobs").iterdir())


def test_ageing_a_clip_onto_itself_or_an_existing_file_is_refused(clip, tmp_path, capsys):
    src = clip("a.mkv", frames=3)
    before = _digest(src)
    line = _refused(capsys, ["degrade", str(src), "-o", str(src), "--profile", "subtle", "--overwrite"])
    assert "the output is the input" in line
    aged = tmp_path / "aged.mkv"
    aged.write_bytes(b"an earlier aged clip")
    line = _refused(capsys, ["degrade", str(src), "-o", str(aged), "--profile", "subtle"])
    assert f"{aged}: output exists" in line and "--overwrite" in line
    assert aged.read_bytes() == b"an earlier aged clip" and _digest(src) == before
    assert main(["degrade", str(src), "-o", str(aged), "--profile", "subtle", "--overwrite"]) == 0
    assert len(read_video(aged)[2]) == 3


def test_an_existing_output_is_refused_unless_overwrite(clip, model, tmp_path, capsys):
    src = clip("a.mkv", frames=4)
    out = tmp_path / "restored.mkv"
    out.write_bytes(b"last week's restore")
    base = ["restore", str(src), "-o", str(out), "-m", model, "--device", "cpu"]
    for extra in ([], ["--resume"], ["--queue"]):
        line = _refused(capsys, [*base, *extra])
        assert f"{out}: output exists" in line and "--overwrite" in line
    assert out.read_bytes() == b"last week's restore"
    assert main([*base, "--overwrite"]) == 0
    assert len(read_video(out)[2]) == 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "tiny.safetensors") == ["a.mkv", "restored.mkv"]


def test_a_paused_run_leaves_the_old_file_and_resume_counts_only_its_segments(clip, identity_chain, tmp_path):
    src = clip("a.mkv", frames=9)
    out = tmp_path / "restored.mkv"
    out.write_bytes(b"the old result")
    options = VideoOptions(segment_frames=3, overwrite=True)
    result = restore_video(src, out, identity_chain, options, should_stop=lambda: True)
    assert result.status == "paused" and result.segments_done == 1
    assert out.read_bytes() == b"the old result"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    # Without --overwrite the old file is never taken as the result, even with --resume.
    with pytest.raises(Exception, match="output exists"):
        restore_video(src, out, identity_chain, VideoOptions(segment_frames=3, resume=True))
    assert out.read_bytes() == b"the old result"
    result = restore_video(src, out, identity_chain, VideoOptions(segment_frames=3, resume=True, overwrite=True))
    # The pause closed the first segment after its first frame: the resume continues from there.
    assert result.status == "done" and result.resumed_from == 1
    assert len(read_video(out)[2]) == 9
    assert not result.job_dir.exists()


def test_a_failed_run_leaves_no_job_folder(clip, model, tmp_path, capsys, archivist_home):
    from tests.conftest import write_overflowing_compact

    src = clip("c.mkv", frames=3)
    # Finite weights that overflow on real frames: the plan allows the run, its first batch fails.
    overflow = write_overflowing_compact(tmp_path / "overflow.safetensors")
    for output in (str(tmp_path / "o.mkv"), str(tmp_path / "frames") + "/"):
        assert main(["restore", str(src), "-m", str(overflow), "-o", output, "--device", "cpu"]) == 1
        line = capsys.readouterr().err.strip().splitlines()[-1]  # after the stream plan
        assert "gave non-finite values" in line
    assert not any((archivist_home / "jobs").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mkv", "overflow.safetensors", "tiny.safetensors"]


def test_the_space_check_refuses_only_what_cannot_fit():
    from engine.video.restore import space_verdict

    mb = 1_000_000
    assert space_verdict(least=int(0.2 * mb), typical=int(3.3 * mb), free=2 * mb) == "warn"
    assert space_verdict(least=int(0.2 * mb), typical=int(1.5 * mb), free=2 * mb) == "ok"
    assert space_verdict(least=int(2.1 * mb), typical=int(30 * mb), free=2 * mb) == "refuse"


@pytest.mark.slow
def test_a_small_output_fits_a_small_disk_and_sizes_are_said_in_fitting_units(clip, model, tmp_path, capsys):
    """A 1.8 MB output on a file system with 2 MB free: written (the check used to refuse it as
    'needs about 0.0 GB, 0.0 GB free')."""
    src = clip("a.mkv", frames=24, width=320, height=240)
    big = clip("big.mkv", frames=240, width=320, height=240)
    with tmpfs(tmp_path / "small", "2m") as mnt:
        out = mnt / "restored.mkv"
        assert main(["restore", str(src), "-o", str(out), "-m", model, "--device", "cpu"]) == 0
        assert 1.5e6 < out.stat().st_size < 2.0e6
        assert len(read_video(out)[2]) == 24
        # Far too big for what is left: refused up front, in units a person reads, and alone.
        capsys.readouterr()
        line = _refused(capsys, ["restore", str(big), "-o", str(mnt / "big.mkv"), "-m", model, "--device", "cpu"])
        assert "not enough free space" in line and " KB free" in line and "0.0 GB" not in line
        assert sorted(p.name for p in mnt.iterdir()) == ["restored.mkv"]
