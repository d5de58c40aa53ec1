"""On-the-fly patches are windows of damaged frames; black-and-white frames get gray input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from engine.degrade.pipeline import degrade
from engine.errors import ArchivistError
from engine.synth.cel import cel_frame
from engine.train import data as tdata
from engine.train import run_training
from engine.train.runs import read_state, run_dir
from tests.train.trainkit import tiny_config

FRAME_SCALE = {
    "vignette": {"strength": [0.4, 0.6], "offset": [0.1, 0.3]},
    "flicker": {"amplitude": [0.02, 0.05], "gradient": [0.1, 0.3]},
    "crease": {"spacing": [20, 60], "displacement": [2, 4]},
    "scratches": {"count": [3, 6], "hair_count": [0, 0], "intensity": [-0.3, 0.3]},
    "emulsion_shift": {"shift": [2, 6]},
}


def _profile_file(path, effects: dict):
    doc = {"name": path.stem, "effects": {k: {"enabled": True, "probability": 1.0, **v} for k, v in effects.items()}}
    path.write_text(yaml.safe_dump(doc))
    return path


def _write(folder, name: str, rgb: np.ndarray):
    folder.mkdir(exist_ok=True)
    cv2.imwrite(str(folder / name), rgb[:, :, ::-1])
    return folder / name


def _batches(frames, degrader, **kw) -> tdata.PairBatches:
    return tdata.PairBatches(seed=3, rank=0, batch_size=1, patch_size=48, scale=1, flip=True, rot90=True,
                             clean=frames, degrader=degrader, **kw)


def test_a_patch_is_the_window_of_its_turned_frame_damaged_whole(tmp_path):
    frame_path = _write(tmp_path / "frames", "a.png", cel_frame(4, 160, 112))
    degrader = tdata.Degrader.load(str(_profile_file(tmp_path / "fs.yaml", FRAME_SCALE)))
    ds = _batches([frame_path], degrader)
    img = tdata.read_rgb(frame_path)
    turns = set()
    for index in range(12):
        lq, gt = ds.sample(7, index)
        draw = ds.patch_draw(7, index)
        turns.add(draw.orientation)
        frame = np.ascontiguousarray(tdata.orient(img, draw.orientation))
        window = (slice(draw.top, draw.top + 48), slice(draw.left, draw.left + 48))
        np.testing.assert_array_equal(gt, frame[window])
        whole, _ = degrade(frame, degrader.profile, draw.damage_seed)
        np.testing.assert_allclose(lq, whole[window], atol=2e-5)
    assert len(turns) > 3  # frames are flipped and turned, then damaged


def test_vignetting_follows_where_the_patch_lies_in_its_frame(tmp_path):
    """Patch-scale damage gave every patch a whole vignette (dark rim, bright centre); a window of
    a frame is bright or dark as its place in the frame is."""
    gray = np.full((256, 256, 3), 128, np.uint8)
    frames = [_write(tmp_path / "frames", "flat.png", gray)]
    degrader = tdata.Degrader.load(str(_profile_file(tmp_path / "vig.yaml", {
        "vignette": {"strength": [0.6, 0.6], "falloff": [2.0, 2.0], "offset": [0.0, 0.0]}})))
    ds = _batches(frames, degrader)
    centres, rims = [], []
    for index in range(24):
        lq, gt = ds.sample(1, index)
        gain = lq[..., 1] / gt[..., 1]
        centres.append(gain[24, 24])
        rims.append(gain[0, 0])
    assert np.std(centres) > 0.03  # where the patch lies changes how much light it got
    assert np.mean(np.array(centres) > np.array(rims)) < 0.9  # not a vignette per patch


def test_patch_scale_is_still_there_for_v1s_recipe(tmp_path):
    gray = np.full((256, 256, 3), 128, np.uint8)
    frames = [_write(tmp_path / "frames", "flat.png", gray)]
    degrader = tdata.Degrader.load(str(_profile_file(tmp_path / "vig.yaml", {
        "vignette": {"strength": [0.6, 0.6], "falloff": [2.0, 2.0], "offset": [0.0, 0.0]}})))
    ds = _batches(frames, degrader, damage_scale="patch")
    lq, gt = ds.sample(1, 0)
    gain = lq[..., 1] / gt[..., 1]
    assert gain[24, 24] > gain[0, 0] + 0.3 and gain[24, 24] > gain[47, 47] + 0.3
    with pytest.raises(ArchivistError, match="damage scale 'tile'"):
        _batches(frames, degrader, damage_scale="tile")


def test_black_and_white_frames_get_gray_damaged_input(tmp_path):
    colour = cel_frame(5, 96, 96)
    bw = cv2.cvtColor(cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    degrader = tdata.Degrader.load("rgb")  # colour casts and dye fading on every sample
    for frame, gray_expected in ((bw, True), (colour, False)):
        path = _write(tmp_path / ("bw" if gray_expected else "colour"), "f.png", frame)
        for scale in tdata.DAMAGE_SCALES:
            lq, _ = _batches([path], degrader, damage_scale=scale).sample(0, 0)
            is_gray = np.array_equal(lq[..., 0], lq[..., 1]) and np.array_equal(lq[..., 1], lq[..., 2])
            assert is_gray == gray_expected, (gray_expected, scale)
        (val_lq, _), = tdata.validation_pairs(seed=0, val_size=64, scale=1, clean=[path], degrader=degrader)
        assert np.array_equal(val_lq[..., 0], val_lq[..., 2]) == gray_expected
    lq, _ = _batches([tmp_path / "bw" / "f.png"], degrader, gray_film=False).sample(0, 0)
    assert np.abs(lq[..., 0] - lq[..., 2]).max() > 0.01  # off: the colour damage stays


@pytest.fixture
def onthefly(tmp_path):
    _write(tmp_path / "frames", "a.png", cel_frame(1, 64, 64))
    _write(tmp_path / "frames", "b.png", cel_frame(2, 64, 64))

    def config(name: str, **overrides):
        doc = tiny_config(**{"train.total_iters": 4, "train.log_every": 2, "train.val_every": 4,
                             "train.checkpoint_every": 2, **overrides})
        doc["data"].pop("paired")
        doc["data"].update(clean=["frames"], val_size=32)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(doc))
        return path

    return config


def test_a_run_stored_before_damage_scale_resumes_as_it_was_trained(onthefly):
    """A run started by older code (no data.damage_scale / gray_film in its stored config) resumes
    at patch scale, as it began; a config that now means frame scale is refused, naming the key."""
    path = onthefly("old.yaml", **{"data.damage_scale": "patch", "data.gray_film": False})
    assert run_training(path, stop_at=2).status == "stop_at"
    stored = run_dir("tiny") / "config.yaml"
    doc = yaml.safe_load(stored.read_text())
    del doc["data"]["damage_scale"], doc["data"]["gray_film"]
    stored.write_text(yaml.safe_dump(doc))
    plain = onthefly("plain.yaml")
    with pytest.raises(ArchivistError, match="data.damage_scale, data.gray_film") as refused:
        run_training(plain, resume=True)
    assert "add damage_scale: patch, gray_film: false to its data section" in str(refused.value)
    assert run_training(None, name="tiny", resume=True).status == "done"
    assert read_state(run_dir("tiny"))["data"]["damage_scale"] == "patch"


def test_a_mix_file_is_read_from_the_configs_folder(onthefly, tmp_path, monkeypatch):
    (tmp_path / "mixes").mkdir()
    (tmp_path / "mixes" / "mine.yaml").write_text(yaml.safe_dump(
        {"name": "mine", "profiles": {"subtle": 0.5, "rgb": 0.5}}))
    path = onthefly("mix.yaml", **{"data.mix": "mixes/mine.yaml"})
    monkeypatch.chdir(tmp_path.parent)  # not the config's folder
    assert run_training(path).status == "done"
    state = read_state(run_dir("tiny"))
    assert state["degradation"]["name"] == "mine" and set(state["degradation"]["profiles"]) == {"subtle", "rgb"}
    assert state["data"]["damage_scale"] == "frame" and state["data"]["gray_film"] is True


def test_a_run_on_mixed_generated_frames_resumes_bit_exactly(tmp_path):
    """The v2 recipe's data path (mixed frames, a mix file, frame-scale damage, gray film) trained
    in two periods gives the weights of one straight run."""
    import torch

    from engine.synth.frames import write_frames

    write_frames(tmp_path / "frames", count=6, size=64, seed=20_000, kind="mixed")
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump({"name": "m", "profiles": {"subtle": 0.5, "heavy": 0.5}}))
    doc = tiny_config(**{"train.total_iters": 4, "train.val_every": 100, "train.checkpoint_every": 100})
    doc["data"].pop("paired")
    doc["data"].update(clean=["frames"], mix="mix.yaml", val_size=32, batch_size=3)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(doc))
    straight = run_training(path, name="straight")
    assert run_training(path, name="split", stop_at=2).iteration == 2
    second = run_training(path, name="split", resume=True)
    a = torch.load(str(straight.checkpoint), weights_only=True)
    b = torch.load(str(second.checkpoint), weights_only=True)
    for key in a["g_ema"]:
        assert torch.equal(a["g_ema"][key], b["g_ema"][key]), key
