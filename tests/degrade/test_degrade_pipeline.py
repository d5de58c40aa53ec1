"""Reproducibility, stream independence, records, mixes, extreme and clip mode."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.degrade import Mix, Profile, degrade, degrade_clip, load_profile
from engine.degrade.registry import EFFECTS
from engine.degrade.schema import validate_profile
from engine.errors import ArchivistError

from .helpers import cartoon, flat, only

REPO = Path(__file__).resolve().parents[2]


def _digest(lq: np.ndarray) -> str:
    return hashlib.sha256(lq.tobytes()).hexdigest()


def test_same_input_profile_and_seed_give_the_same_bytes_in_another_process():
    img = cartoon(96, 80, seed=3)
    here = _digest(degrade(img, load_profile("heavy"), 12345)[0])
    code = ("import hashlib; from tests.degrade.helpers import cartoon; from engine.degrade import degrade;"
            "print(hashlib.sha256(degrade(cartoon(96, 80, seed=3), 'heavy', 12345)[0].tobytes()).hexdigest())")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == here


def test_every_shipped_profile_runs_and_differs_by_seed():
    img = cartoon()
    for name in ("subtle", "normal", "heavy", "antilines", "rgb", "default"):
        a, rec_a = degrade(img, load_profile(name), 1)
        b, _ = degrade(img, load_profile(name), 2)
        assert a.shape == img.shape and a.dtype == np.uint8
        assert not np.array_equal(a, b), name
        json.dumps(rec_a)  # JSON-able


def test_uint8_and_float32_in_give_the_same_dtype_out():
    img8 = cartoon()
    img32 = img8.astype(np.float32) / 255
    lq8, _ = degrade(img8, "normal", 5)
    lq32, _ = degrade(img32, "normal", 5)
    assert lq8.dtype == np.uint8 and lq32.dtype == np.float32
    assert 0.0 <= lq32.min() and lq32.max() <= 1.0
    assert np.abs(lq32 * 255 - lq8).mean() < 1.0


def test_degrade_does_not_touch_its_input():
    img = cartoon()
    before = img.copy()
    degrade(img, "heavy", 3)
    assert np.array_equal(img, before)


def test_record_names_seed_profile_hash_and_every_drawn_value():
    profile = load_profile("normal")
    _, record = degrade(cartoon(), profile, 77)
    assert record["seed"] == 77 and record["profile"] == "normal" and record["profile_hash"] == profile.hash
    assert list(record["effects"]) == list(EFFECTS)
    for name, entry in record["effects"].items():
        if entry.get("applied"):
            assert set(entry["params"]) == set(EFFECTS[name].specs)


def _three_effects(without: str | None = None) -> Profile:
    effects = {name: {"enabled": name != without, "probability": 1.0}
               for name in ("grain", "crease", "scratches", "micro_defects", "compression")}
    return validate_profile({"name": "three", "effects": effects}, "<test>")


def test_turning_one_effect_off_leaves_what_the_others_draw_unchanged():
    _, full = degrade(cartoon(), _three_effects(), 9)
    _, partial = degrade(cartoon(), _three_effects(without="crease"), 9)
    assert partial["effects"]["crease"] == {"enabled": False}
    for name in ("grain", "scratches", "micro_defects", "compression"):
        assert partial["effects"][name] == full["effects"][name], name


def test_turning_an_effect_off_leaves_the_others_pixels_unchanged():
    # Grain alone versus grain + flicker off: identical bytes, since flicker's stream is its own.
    a, _ = degrade(flat(0.5, 64), only("grain", strength=10), 4)
    profile = validate_profile({"name": "x", "effects": {"grain": {"strength": 10}, "flicker": {"enabled": False}}},
                               "<test>")
    b, _ = degrade(flat(0.5, 64), profile, 4)
    assert np.array_equal(a, b)


def test_probability_is_honoured():
    profile = validate_profile({"name": "p", "effects": {"flicker": {"probability": 0.3}}}, "<test>")
    applied = [degrade(flat(0.5, 16), profile, s)[1]["effects"]["flicker"]["applied"] for s in range(300)]
    assert 0.2 < np.mean(applied) < 0.4


@pytest.mark.slow
def test_mix_choice_follows_the_seed_and_the_weights():
    mix = load_profile("default")
    assert isinstance(mix, Mix)
    chosen = [degrade(flat(0.5, 16), mix, s)[1]["profile"] for s in range(400)]
    again = [degrade(flat(0.5, 16), mix, s)[1]["profile"] for s in range(20)]
    assert chosen[:20] == again
    share = {name: chosen.count(name) / len(chosen) for name in ("subtle", "normal", "heavy")}
    assert abs(share["subtle"] - 0.1) < 0.05 and abs(share["normal"] - 0.3) < 0.07 and abs(share["heavy"] - 0.6) < 0.07
    _, record = degrade(flat(0.5, 16), mix, 1)
    assert record["mix"] == "default" and record["mix_hash"] == mix.hash


def test_extreme_multiplies_grain_strength():
    doc = {"name": "ex", "extreme": {"enabled": True, "probability": 1.0, "strength": [3, 3], "cast": [2, 2]},
           "effects": {"grain": {"strength": 10, "monochrome": 1.0}}}
    plain = degrade(flat(0.5, 64), only("grain", strength=10, monochrome=1.0), 2)[0]
    lq, record = degrade(flat(0.5, 64), validate_profile(doc, "<test>"), 2)
    assert record["extreme"] == {"enabled": True, "applied": True, "strength": 3.0, "cast": 2.0}
    assert record["effects"]["grain"]["params"]["strength"] == 10.0  # drawn value, before the factor
    assert (lq - 0.5).std() > 2.5 * (plain - 0.5).std()


def test_bad_images_and_seeds_are_errors():
    with pytest.raises(ArchivistError, match="HxWx3"):
        degrade(np.zeros((16, 16), np.uint8), "normal", 1)
    with pytest.raises(ArchivistError, match="dtype"):
        degrade(np.zeros((16, 16, 3), np.float64), "normal", 1)
    with pytest.raises(ArchivistError, match="seed"):
        degrade(np.zeros((16, 16, 3), np.uint8), "normal", -1)


def test_clip_scratches_persist_and_drift_and_grain_is_fresh():
    profile = validate_profile({"name": "clip", "effects": {
        "scratches": {"count": 2, "hair_count": 0, "intensity": -0.9, "drift": 3.0, "length": 1.0},
    }}, "<test>")
    frames = list(degrade_clip([flat(0.5, 96)] * 3, profile, 5))
    assert [r["frame"] for _, r in frames] == [0, 1, 2]
    cols = [np.abs(lq - 0.5).mean(axis=(0, 2)) for lq, _ in frames]
    peaks = [int(np.argmax(c)) for c in cols]
    assert all(c.max() > 0.05 for c in cols)
    assert peaks[0] != peaks[2]  # drifted
    assert abs(peaks[2] - peaks[0]) <= 3 * 2 + 4  # by about the drift per frame, not a new scratch

    grain = list(degrade_clip([flat(0.5, 64)] * 2, only("grain", strength=10), 5))
    assert not np.array_equal(grain[0][0], grain[1][0])
    assert grain[0][1]["effects"]["grain"] == grain[1][1]["effects"]["grain"]  # drawn once per clip


def test_clip_gate_weave_and_flicker_vary_per_frame():
    img = cartoon(96, 96)
    weave = [lq for lq, _ in degrade_clip([img] * 3, only("gate_weave", amplitude=3, jitter=1.0), 2)]
    assert not np.array_equal(weave[0], weave[1]) and not np.array_equal(weave[1], weave[2])
    flick = list(degrade_clip([img] * 4, only("flicker", amplitude=0.3), 2))
    assert np.ptp([lq.astype(float).mean() for lq, _ in flick]) > 2
    gains = [r["effects"]["flicker"]["values"]["gain"] for _, r in flick]
    assert len(set(gains)) == 4  # each frame's gain is recorded
    offsets = [r["effects"]["gate_weave"]["values"] for r in
               (rec for _, rec in degrade_clip([img] * 2, only("gate_weave", amplitude=3), 2))]
    assert offsets[0] != offsets[1] and set(offsets[0]) == {"dx", "dy"}


def test_clip_is_reproducible():
    img = cartoon()
    a = [_digest(lq) for lq, _ in degrade_clip([img] * 3, "heavy", 8)]
    b = [_digest(lq) for lq, _ in degrade_clip([img] * 3, "heavy", 8)]
    assert a == b
