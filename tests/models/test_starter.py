"""The built-in starter model: shipped in the package, its profiles and its measured table current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.degrade import load_profile
from engine.evaluate import markdown_table, rows_from_record, shipped_profile_names
from engine.models.library import BUILTIN_DIR, Library

ROOT = Path(__file__).resolve().parents[2]
STARTER = BUILTIN_DIR / "archivist-starter.safetensors"
# The shipped model's record, and the name the built-in file was measured under in it (v2 was
# measured beside v1 before it replaced it: docs/starter.md).
RECORD = ROOT / "recipes" / "archivist-starter-v2" / "evaluation.json"
MEASURED_AS = "starter-v2"
RETRAIN = ("retrain archivist-starter with recipes/archivist-starter-v2/ (or re-measure its table with "
           "python -m engine.evaluate) and update docs/starter.md")


@pytest.fixture(scope="module")
def starter():
    return Library(builtin_dir=BUILTIN_DIR).find("archivist-starter")


def test_starter_is_a_read_only_builtin_in_every_library(starter):
    assert starter is not None and starter.builtin
    assert starter.role == "medium" and starter.arch == "compact"
    assert (starter.num_feat, starter.num_conv, starter.scale) == (48, 16, 1)
    assert STARTER.stat().st_size < 2 * 1024 * 1024


# Mixes a recipe keeps beside its config, not shipped as profiles.
RECIPE_MIXES = {"starter-v2": ROOT / "recipes" / "archivist-starter-v2" / "mix.yaml"}


def test_starter_was_trained_on_the_shipped_profiles(starter):
    """A shipped profile that changes makes this fail until the starter is retrained. A model blended
    from two (``models interpolate``) records both training mixes."""
    mixes = starter.profiles if isinstance(starter.profiles, list) else [starter.profiles]
    assert mixes and all(isinstance(m, dict) for m in mixes), starter.profiles
    for trained in mixes:
        mix = load_profile(RECIPE_MIXES.get(trained["name"], trained["name"]))
        assert mix.hash == trained["hash"], f"the '{trained['name']}' mix changed: {RETRAIN}"
        for name, entry in trained["profiles"].items():
            assert load_profile(name).hash == entry["hash"], f"profile '{name}' changed since training: {RETRAIN}"


def test_the_measured_table_describes_this_model_and_these_profiles(starter):
    record = json.loads(RECORD.read_text())
    assert record["models"][MEASURED_AS] == starter.sha256, f"the model changed: {RETRAIN}"
    for name in shipped_profile_names():
        assert record["profiles"].get(name) == load_profile(name).hash, f"profile '{name}' changed: {RETRAIN}"
    table = markdown_table(rows_from_record(record))
    assert table in (ROOT / "docs" / "starter.md").read_text(), "docs/starter.md does not hold the recorded table"


def test_starter_beats_the_input_and_fastnlmeans_on_subtle_and_normal_cel_frames():
    """PSNR above both the damaged input and the best fastNlMeans; SSIM above the damaged input.
    (fastNlMeans at its PSNR-best strength keeps a higher SSIM on `subtle`: docs/starter.md.)"""
    rows = [r for r in rows_from_record(json.loads(RECORD.read_text())) if r.key == "cels"]
    assert rows, "the record has no cel rows"
    for profile in ("subtle", "normal"):
        (row,) = [r for r in rows if r.profile == profile]
        model = row.scores[MEASURED_AS]
        assert model.psnr > row.scores["damaged"].psnr + 3 and model.ssim > row.scores["damaged"].ssim, profile
        assert model.psnr > row.scores["nlm"].psnr + 1, profile


def test_the_shipped_model_keeps_the_ship_rule_against_v1():
    """v2 replaced v1 by the fallback rule of docs/starter.md: above v1 on every photograph row
    (generated colour and black-and-white, held out by seed, and the real photographs) while losing
    at most 0.2 dB on cels."""
    rows = rows_from_record(json.loads(RECORD.read_text()))
    photo_sets = {"photos-val", "bw-val", "photos-test", "bw-test", "real"}
    assert {r.key for r in rows} == {"cels"} | photo_sets, "the record must hold every set (--sets final)"
    for row in rows:
        gain = row.scores[MEASURED_AS].psnr - row.scores["starter-v1"].psnr
        if row.key == "cels":
            assert gain >= -0.2, (row.key, row.profile, gain)
        else:
            assert gain > 0, (row.key, row.profile, gain)
