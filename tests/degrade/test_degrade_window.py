"""A window of a frame, damaged alone, looks like the same window cut from the damaged frame."""

from __future__ import annotations

import numpy as np
import pytest

from engine.degrade.pipeline import degrade, degrade_window
from engine.degrade.schema import validate_profile
from engine.errors import ArchivistError

from .helpers import cartoon

# The effects whose look depends on the frame's size or reaches across a window's edge, each
# strong and always on. Hairs (spread evenly) are off so long scratches are alone.
FRAME_SCALE = {
    "vignette": {"strength": [0.5, 0.6], "falloff": [1.5, 2.5], "offset": [0.1, 0.3]},
    "flicker": {"amplitude": [0.02, 0.05], "gradient": [0.1, 0.3]},
    "stains": {"large": 1.0, "speckle": 0.0, "large_count": [2, 4], "large_strength": [0.3, 0.5]},
    "crease": {"spacing": [20, 60], "displacement": [2, 4], "tear": 0.5},
    "scratches": {"count": [3, 6], "hair_count": [0, 0], "intensity": [-0.3, 0.3]},
    "gate_weave": {"amplitude": [1, 3], "mode": ["always"]},
    "emulsion_shift": {"shift": [2, 6]},
}
WINDOWS = [(0, 0), (300 - 96, 400 - 128), (100, 150), (37, 251)]  # corners and inside, odd offsets


def _profile(effects: dict) -> object:
    return validate_profile({"name": "frame-scale", "effects": {
        name: {"enabled": True, "probability": 1.0, **values} for name, values in effects.items()}}, "<test>")


def _frame(flat: bool) -> np.ndarray:
    if flat:  # stains weigh their density by the picture's mid-tones, measured near each pixel
        return np.full((300, 400, 3), 0.5, np.float32)
    return cartoon(400, 300, seed=2).astype(np.float32) / 255


@pytest.mark.parametrize("effect", list(FRAME_SCALE) + ["all"])
def test_frame_scale_damage_of_a_window_equals_that_window_of_the_damaged_frame(effect):
    flat = effect in ("stains", "all")
    frame = _frame(flat)
    profile = _profile(FRAME_SCALE if effect == "all" else {effect: FRAME_SCALE[effect]})
    for seed in range(4):
        whole, _ = degrade(frame, profile, seed)
        assert np.abs(whole - frame).max() > 1e-3, "the effect did something"
        for top, left in WINDOWS:
            window, record = degrade_window(frame, profile, seed, top, left, 96, 128)
            assert window.shape == (96, 128, 3) and window.dtype == np.float32
            np.testing.assert_allclose(window, whole[top:top + 96, left:left + 128], atol=2e-5, err_msg=effect)
            assert record["window"]["frame"] == [400, 300] and record["size"] == [128, 96]


def test_vignetting_of_a_corner_patch_is_the_frame_corners_not_a_whole_vignette():
    """Damaged as a frame, a 64² patch darkens toward all four of its own corners; as a window of a
    384² frame's top-left corner it darkens toward that corner only, as much as the frame does."""
    frame = np.full((384, 384, 3), 0.5, np.float32)
    profile = _profile({"vignette": {"strength": [0.6, 0.6], "falloff": [2.0, 2.0], "offset": [0.0, 0.0]}})
    gain = degrade(frame, profile, 1)[0][..., 1] / 0.5
    window = degrade_window(frame, profile, 1, 0, 0, 64, 64)[0][..., 1] / 0.5
    np.testing.assert_allclose(window, gain[:64, :64], atol=1e-5)
    assert window[0, 0] < 0.45 and window[-1, -1] > window[0, 0] + 0.1  # falls toward the frame's corner
    as_frame = degrade(frame[:64, :64], profile, 1)[0][..., 1] / 0.5
    assert as_frame[-1, -1] == pytest.approx(as_frame[0, 0], abs=1e-3)  # the old way: a vignette per patch


def test_only_the_window_and_its_margin_are_read():
    """A 1080p frame costs what its window costs: the frame may be a view, its far parts garbage."""
    frame = np.full((1080, 1920, 3), np.nan, np.float32)
    frame[500:700, 900:1100] = 0.4
    profile = _profile(FRAME_SCALE)
    out, record = degrade_window(frame, profile, 3, 560, 960, 64, 64)
    assert np.isfinite(out).all() and 0 < record["window"]["margin"] <= 40


def test_a_window_is_reproducible_and_uint8_in_gives_uint8_out():
    img = cartoon(200, 150, seed=1)
    a, rec = degrade_window(img, "heavy", 9, 20, 30, 64, 80)
    b, _ = degrade_window(img, "heavy", 9, 20, 30, 64, 80)
    assert a.dtype == np.uint8 and a.shape == (64, 80, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, degrade_window(img, "heavy", 10, 20, 30, 64, 80)[0])
    assert rec["window"]["left"] == 30 and rec["window"]["top"] == 20


def test_a_window_outside_the_frame_is_refused():
    img = cartoon(64, 48)
    with pytest.raises(ArchivistError, match="window 32x32 at \\(40, 0\\) does not fit the 64x48 frame"):
        degrade_window(img, "subtle", 1, 0, 40, 32, 32)


def test_a_clip_window_equals_that_window_of_the_damaged_clip_frame():
    from engine.degrade.pipeline import ClipDegrader

    frame = _frame(False)
    profile = _profile({k: v for k, v in FRAME_SCALE.items() if k != "stains"})
    clip = ClipDegrader(profile, 21)
    for index in range(3):  # scratches drift, weave moves, flicker changes: frame by frame
        whole, _ = clip.frame(frame, index)
        window, record = clip.window(frame, index, 37, 251, 96, 128)
        np.testing.assert_allclose(window, whole[37:133, 251:379], atol=2e-5)
        assert record["frame"] == index and record["window"]["top"] == 37


def test_a_cropped_dataset_pair_is_the_crop_of_the_damaged_image(tmp_path):
    """archivist degrade --crop: the LQ is cut from the damaged source (vignetting, stains, creases
    of the whole image), not the crop damaged as if it were the image."""
    import cv2

    from engine.degrade.dataset import write_dataset

    (tmp_path / "clean").mkdir()
    source = cartoon(400, 300, seed=2)
    cv2.imwrite(str(tmp_path / "clean" / "f.png"), source[:, :, ::-1])
    profile = _profile({k: v for k, v in FRAME_SCALE.items() if k != "stains"})
    write_dataset(tmp_path / "clean", tmp_path / "ds", profile, count=2, seed=4, crop=96)
    for line in (tmp_path / "ds" / "manifest.jsonl").read_text().splitlines():
        import json

        entry = json.loads(line)
        x, y, side = entry["crop"]
        whole, _ = degrade(source, profile, entry["seed"])
        lq = cv2.imread(str(tmp_path / "ds" / entry["lq"]))[:, :, ::-1]
        assert np.abs(lq.astype(int) - whole[y:y + side, x:x + side]).max() <= 1
