"""Clean frames degraded on the fly with the degrader, seeded per sample."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import yaml

from engine.errors import ArchivistError
from engine.train import run_training
from engine.train.runs import promote, read_state, run_dir
from tests.train.trainkit import tiny_config


@pytest.fixture
def clean_config(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    y, x = np.mgrid[0:40, 0:40]
    for i in range(3):
        img = np.stack([(x * 6 + i * 30) % 256, (y * 4) % 256, ((x // 5 + y // 5) % 2) * 220], -1).astype(np.uint8)
        cv2.imwrite(str(frames / f"c{i}.png"), img)
    doc = tiny_config(**{"train.total_iters": 3, "train.log_every": 1, "train.val_every": 3})
    doc["data"].pop("paired")
    doc["data"].update(clean=["frames"], mix="default", val_size=32)
    path = tmp_path / "clean.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.slow
def test_on_the_fly_degradation_trains_and_records_the_mix(clean_config):
    result = run_training(clean_config)
    assert result.status == "done"
    state = read_state(run_dir("tiny"))
    assert state["degradation"]["name"] == "default" and len(state["degradation"]["hash"]) == 64
    assert state["degradation"]["profiles"]  # the mix's members with weights and hashes
    entry = promote("tiny", "fresh")
    assert entry.metadata["profiles"]["hash"] == state["degradation"]["hash"]


def test_same_seed_same_batch_and_val_disjoint(clean_config):
    from engine.train import data as tdata
    from engine.train.config import load_config

    cfg = load_config(clean_config)
    frames = tdata.list_images(cfg.resolve_path("frames"), "data.clean")
    deg = tdata.Degrader.load("default")
    ds = tdata.PairBatches(seed=0, rank=0, batch_size=2, patch_size=32, scale=1, flip=True, rot90=True,
                           clean=frames, degrader=deg)
    a, b = ds[5], ds[5]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    other_rank = tdata.PairBatches(seed=0, rank=1, batch_size=2, patch_size=32, scale=1, flip=True, rot90=True,
                                   clean=frames, degrader=deg)
    assert not torch.equal(other_rank[5][0], a[0])
    assert tdata.sample_seed(0, tdata.VAL_STREAM, 0) != tdata.sample_seed(0, tdata.TRAIN_STREAM, 0, 0, 0)


def test_bad_mix_and_missing_frames_are_clear(clean_config, tmp_path):
    doc = yaml.safe_load(clean_config.read_text())
    doc["data"]["mix"] = "no-such-mix"
    clean_config.write_text(yaml.safe_dump(doc))
    with pytest.raises(ArchivistError, match="no-such-mix"):
        run_training(clean_config)
    doc["data"]["mix"] = "default"
    doc["data"]["clean"] = ["missing"]
    clean_config.write_text(yaml.safe_dump(doc))
    with pytest.raises(ArchivistError, match="data.clean .*missing: no such folder"):
        run_training(clean_config)


@pytest.mark.slow
def test_a_video_as_clean_source(tmp_path):
    from engine.video.synthetic import write_test_clip

    write_test_clip(tmp_path / "clip.mkv", frames=6, width=64, height=48, codec="ffv1", pix_fmt="bgr0",
                           colorspace=None)
    doc = tiny_config(**{"train.total_iters": 2, "train.log_every": 1, "train.val_every": 2})
    doc["data"].pop("paired")
    doc["data"].update(clean=["clip.mkv"], mix="subtle", val_size=32, video_every=2)
    path = tmp_path / "video.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert run_training(path).status == "done"
    frames = sorted((run_dir("tiny") / "frames" / "clip").glob("*.png"))
    assert len(frames) == 3  # frames 0, 2, 4
    assert read_state(run_dir("tiny"))["data"]["frames"] == 3


def test_a_clip_dataset_is_a_paired_dataset(tmp_path):
    """`archivist degrade --clip-length` keeps each clip in a sub-folder; training reads its frames."""
    import cv2
    import numpy as np

    from archivist_tui.cli import main
    from engine.train.data import paired_files

    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.full((48, 64, 3), 120, np.uint8))
    assert main(["degrade", str(src), "-o", str(tmp_path / "pairs"), "--count", "2", "--clip-length", "3",
                 "--profile", "subtle"]) == 0
    pairs = paired_files(tmp_path / "pairs")
    assert len(pairs) == 6
    for gt, lq in pairs:
        assert gt.parent.parent.name == "gt" and lq.relative_to(tmp_path / "pairs" / "lq") == gt.relative_to(
            tmp_path / "pairs" / "gt")
