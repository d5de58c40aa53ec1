"""The pair writer: layout, manifest, resume, workers, interruption, clips."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.degrade import degrade, load_profile
from engine.degrade.dataset import make_pair, plan_pairs, write_dataset
from engine.errors import ArchivistError

from .helpers import cartoon


@pytest.fixture
def sources(tmp_path) -> Path:
    folder = tmp_path / "clean"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"frame{i}.png"), cartoon(72, 56, seed=i))
    return folder


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.png"))}


def _manifest(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def test_layout_manifest_and_reproducible_lq(sources, tmp_path):
    out = tmp_path / "ds"
    summary = write_dataset(sources, out, load_profile("normal"), count=2, seed=11)
    assert (summary.written, summary.skipped, summary.total) == (6, 0, 6)
    entries = _manifest(out)
    assert len(entries) == 6
    first = entries[0]
    assert first["gt"] == "gt/frame0_0000.png" and first["lq"] == "lq/frame0_0000.png"
    assert first["source"] == "frame0.png" and first["profile"] == "normal" and "effects" in first
    # GT is the source, losslessly; LQ is degrade(GT, profile, recorded seed).
    gt = cv2.cvtColor(cv2.imread(str(out / first["gt"])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(gt, cv2.cvtColor(cv2.imread(str(sources / "frame0.png")), cv2.COLOR_BGR2RGB))
    lq = cv2.cvtColor(cv2.imread(str(out / first["lq"])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(lq, degrade(gt, "normal", first["seed"])[0])


@pytest.mark.slow
def test_one_and_two_workers_give_the_same_bytes(sources, tmp_path):
    write_dataset(sources, tmp_path / "one", load_profile("default"), count=2, seed=5, crop=40, workers=1)
    write_dataset(sources, tmp_path / "two", load_profile("default"), count=2, seed=5, crop=40, workers=2)
    assert _tree_digest(tmp_path / "one") == _tree_digest(tmp_path / "two")
    assert (tmp_path / "one" / "manifest.jsonl").read_bytes() == (tmp_path / "two" / "manifest.jsonl").read_bytes()


def test_resume_skips_finished_pairs_and_redoes_unrecorded_ones(sources, tmp_path):
    out = tmp_path / "ds"
    profile = load_profile("subtle")
    write_dataset(sources, out, profile, count=2, seed=1)
    reference = _tree_digest(out)
    # Simulate a kill: the last pair's files exist but its manifest line was torn mid-write,
    # and a temporary file was left behind.
    manifest = out / "manifest.jsonl"
    lines = manifest.read_bytes().splitlines(keepends=True)
    manifest.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])
    (out / "lq" / ".frame2_0001.tmp999.png").write_bytes(b"partial")
    (out / "lq" / "frame2_0001.png").unlink()
    summary = write_dataset(sources, out, profile, count=2, seed=1)
    assert (summary.written, summary.skipped) == (1, 5)
    assert _tree_digest(out) == reference
    assert not list((out / "lq").glob(".*"))
    assert len(_manifest(out)) == 6
    # A larger count adds pairs; nothing already made is redone.
    assert write_dataset(sources, out, profile, count=3, seed=1).written == 3


def test_other_settings_in_the_same_folder_are_refused(sources, tmp_path):
    out = tmp_path / "ds"
    write_dataset(sources, out, load_profile("subtle"), seed=1)
    with pytest.raises(ArchivistError, match="seed"):
        write_dataset(sources, out, load_profile("subtle"), seed=2)
    with pytest.raises(ArchivistError, match="profile"):
        write_dataset(sources, out, load_profile("heavy"), seed=1)


def test_interrupt_leaves_a_consistent_dataset(sources, tmp_path, monkeypatch):
    import engine.degrade.dataset as dataset

    calls = {"n": 0}
    real = dataset.make_pair

    def flaky(task, profile, outdir):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(task, profile, outdir)

    monkeypatch.setattr(dataset, "make_pair", flaky)
    out = tmp_path / "ds"
    with pytest.raises(KeyboardInterrupt):
        write_dataset(sources, out, load_profile("normal"), count=2)
    entries = _manifest(out)
    assert len(entries) == 2
    for entry in entries:
        assert (out / entry["gt"]).is_file() and (out / entry["lq"]).is_file()
    monkeypatch.setattr(dataset, "make_pair", real)
    assert write_dataset(sources, out, load_profile("normal"), count=2).written == 4


def test_crop_too_large_names_the_file(sources, tmp_path):
    with pytest.raises(ArchivistError, match=r"frame0.png: 72x56 is smaller than crop 64"):
        write_dataset(sources, tmp_path / "ds", load_profile("normal"), crop=64)


def test_clip_mode_writes_frame_folders(sources, tmp_path):
    out = tmp_path / "clips"
    write_dataset(sources / "frame1.png", out, load_profile("heavy"), clip_length=3, seed=4)
    entry = _manifest(out)[0]
    assert entry["gt"] == "gt/frame1_0000/" and entry["frames"] == 3
    lq_frames = sorted((out / "lq" / "frame1_0000").iterdir())
    gt_frames = sorted((out / "gt" / "frame1_0000").iterdir())
    assert [p.name for p in lq_frames] == ["frame_0000.png", "frame_0001.png", "frame_0002.png"]
    assert [p.name for p in gt_frames] == [p.name for p in lq_frames]
    assert len({p.read_bytes() for p in gt_frames}) == 1
    assert len({p.read_bytes() for p in lq_frames}) == 3


def test_sixteen_bit_sources_stay_sixteen_bit(tmp_path):
    src = tmp_path / "deep.png"
    img = (cartoon(40, 40).astype(np.uint16) * 257)
    cv2.imwrite(str(src), img)
    tasks = plan_pairs(tmp_path, [src], 1, 0, None, None)
    (tmp_path / "o" / "gt").mkdir(parents=True)
    (tmp_path / "o" / "lq").mkdir(parents=True)
    make_pair(tasks[0], load_profile("normal"), tmp_path / "o")
    assert cv2.imread(str(tmp_path / "o" / "lq" / "deep_0000.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
