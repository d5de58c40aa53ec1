"""engine.quality.psnr: one convention for training validation, evaluate, demo and benchmarks, and
the recorded evaluation table still means what it says."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from engine.quality import PSNR_CAP, psnr

RECORD = Path(__file__).resolve().parents[1] / "recipes" / "archivist-starter" / "evaluation.json"


def _pair(seed: int = 0, shape=(24, 32, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-12, 13, shape), 0, 255).astype(np.uint8)
    return a, b


def test_the_peak_follows_the_type_so_8_bit_and_float_images_agree():
    a, b = _pair()
    as_float = psnr(a.astype(np.float32) / 255, b.astype(np.float32) / 255)
    assert psnr(a, b) == pytest.approx(as_float, abs=1e-5)
    assert psnr(a.astype(np.uint16) * 257, b.astype(np.uint16) * 257) == pytest.approx(psnr(a, b), abs=1e-9)
    one_level = np.full((8, 8, 3), 100, np.uint8)
    assert psnr(one_level, one_level + 1) == pytest.approx(20 * math.log10(255))  # 48.13 dB, the 8-bit textbook value
    assert psnr(one_level, one_level + 1, data_range=1.0) == pytest.approx(0.0)  # an explicit peak wins


def test_identical_images_give_the_cap_never_infinity_and_a_smaller_error_never_scores_lower():
    a, _ = _pair()
    for img in (a, a.astype(np.float32) / 255, a.astype(np.uint16)):
        assert psnr(img, img.copy()) == PSNR_CAP == 99.0
    big = np.zeros((1080, 1920, 3), np.uint8)
    nearly = big.copy()
    nearly[0, 0, 0] = 1  # one level in one value of a 1080p frame: 116 dB uncapped
    assert psnr(big, nearly) == PSNR_CAP
    errors = [psnr(big.astype(np.float32), big.astype(np.float32) + e) for e in (0.0, 1e-7, 1e-6, 1e-3, 1e-1)]
    assert errors == sorted(errors, reverse=True) and all(math.isfinite(v) for v in errors)


def test_values_are_measured_as_given_not_clipped():
    gt = np.full((4, 4, 3), 1.0, np.float32)
    over = gt + 0.5  # out of range: a caller clamps before measuring, psnr does not hide it
    assert psnr(over, gt) == pytest.approx(10 * math.log10(1 / 0.25))
    assert psnr(np.clip(over, 0, 1), gt) == PSNR_CAP


def test_a_stack_of_frames_is_one_measurement_over_every_value():
    a1, b1 = _pair(1)
    a2, b2 = _pair(2)
    stacked = psnr(np.stack([a1, a2]), np.stack([b1, b2]))
    assert stacked == pytest.approx(psnr(np.concatenate([a1, a2]), np.concatenate([b1, b2])))
    mse = np.mean([np.mean((a.astype(float) - b) ** 2) for a, b in ((a1, b1), (a2, b2))])
    assert stacked == pytest.approx(10 * math.log10(255**2 / mse))


def test_wrong_calls_are_refused_rather_than_measured_wrongly():
    a, b = _pair()
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, b[:, :, :1])  # NumPy would broadcast this into a figure
    with pytest.raises(ValueError, match="different peaks"):
        psnr(a, b.astype(np.float32) / 255)
    with pytest.raises(ValueError, match="no peak for images of type int16"):
        psnr(a.astype(np.int16), b.astype(np.int16))
    assert psnr(a.astype(np.int16), b.astype(np.int16), data_range=255) == pytest.approx(psnr(a, b))
    with pytest.raises(ValueError, match="data_range must be above 0"):
        psnr(a, b, data_range=0)


def test_the_recorded_evaluation_table_is_reproduced_by_this_convention():
    """The `damaged` PSNR of the recorded procedural antilines row, recomputed: exactly through
    evaluate's own path (float32 /255), and to 1e-6 dB from the 8-bit images directly."""
    from engine.degrade import degrade, load_profile
    from engine.evaluate import DAMAGE_SEED, _mean_scores, procedural_images

    record = json.loads(RECORD.read_text())
    (row,) = [r for r in record["rows"] if r["set"].startswith("procedural") and r["profile"] == "antilines"]
    cleans = procedural_images(record["settings"]["frames"], record["settings"]["size"])
    profile = load_profile("antilines")
    damaged = [degrade(c, profile, DAMAGE_SEED + i)[0] for i, c in enumerate(cleans)]
    recorded = row["scores"]["damaged"]["psnr"]
    assert _mean_scores(damaged, cleans).psnr == recorded
    assert float(np.mean([psnr(d, c) for d, c in zip(damaged, cleans)])) == pytest.approx(recorded, abs=1e-6)
