"""Profile documents: every bad case is one error line naming the file, the key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.degrade import Mix, Profile, load_profile
from engine.degrade.library import load_file
from engine.degrade.registry import EFFECTS
from engine.degrade.schema import reference_markdown, validate_profile
from engine.errors import ArchivistError

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, doc, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    return path


def _error(tmp_path: Path, doc) -> str:
    path = _write(tmp_path, doc)
    with pytest.raises(ArchivistError) as info:
        load_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


@pytest.mark.parametrize("doc,key,allowed", [
    ({"name": "x", "effects": {"grain": {"strength": "strong"}}}, "effects.grain.strength",
     "allowed: a number 0 to 60, or [low, high] within it (low <= high)"),
    ({"name": "x", "effects": {"grain": {"enabled": "yes"}}}, "effects.grain.enabled", "true or false"),
    ({"name": "x", "effects": {"grain": {"probability": [0.1, 0.2]}}}, "effects.grain.probability", "allowed: a number 0 to 1"),
    ({"name": "x", "effects": {"grain": {"generations": 1.5}}}, "effects.grain.generations", "whole number"),
    ({"name": "x", "effects": {"compression": {"codec": 5}}}, "effects.compression.codec", "jpeg, mpeg2, h264"),
    ({"name": "x", "effects": ["grain"]}, "effects", "a mapping"),
    ({"name": "x", "effects": {"grain": 3}}, "effects.grain", "a mapping"),
    ({"name": "x", "extreme": {"strength": "x"}}, "extreme.strength", "allowed: a number 1 to 10, or [low, high]"),
    (["not", "a", "mapping"], "(document)", "a mapping with keys"),
    ({"name": 5}, "name", "letters, digits"),
])
def test_wrong_types(tmp_path, doc, key, allowed):
    message = _error(tmp_path, doc)
    assert f": {key}:" in message
    assert "wrong type" in message or "not a whole number" in message
    assert allowed in message


def test_unknown_effect_names_the_allowed_effects(tmp_path):
    message = _error(tmp_path, {"name": "x", "effects": {"grian": {"enabled": True}}})
    assert "effects.grian: unknown effect" in message
    assert all(name in message for name in EFFECTS)


def test_unknown_key_names_the_allowed_keys(tmp_path):
    message = _error(tmp_path, {"name": "x", "effects": {"grain": {"strenght": 4}}})
    assert "effects.grain.strenght: unknown key" in message
    assert "enabled, probability, strength, size" in message
    assert "unknown key" in _error(tmp_path, {"name": "x", "colour": 1})
    assert "extreme.factor: unknown key" in _error(tmp_path, {"name": "x", "extreme": {"factor": 2}})


def test_inverted_range(tmp_path):
    message = _error(tmp_path, {"name": "x", "effects": {"grain": {"strength": [9, 4]}}})
    assert "effects.grain.strength: [9, 4]" in message and "inverted range" in message
    assert "allowed: a number 0 to 60, or [low, high] within it" in message


@pytest.mark.parametrize("doc,key", [
    ({"name": "x", "effects": {"grain": {"strength": [4, 99]}}}, "effects.grain.strength"),
    ({"name": "x", "effects": {"grain": {"probability": 1.5}}}, "effects.grain.probability"),
    ({"name": "x", "effects": {"grain": {"monochrome": -0.1}}}, "effects.grain.monochrome"),
    ({"name": "x", "effects": {"compression": {"codec": ["jpeg", "vp9"]}}}, "effects.compression.codec"),
    ({"name": "x", "extreme": {"cast": [0.5, 2]}}, "extreme.cast"),
])
def test_out_of_range(tmp_path, doc, key):
    message = _error(tmp_path, doc)
    assert f": {key}:" in message
    assert "out of range" in message or "unknown option" in message
    assert "allowed:" in message


def test_missing_name_and_invalid_yaml(tmp_path):
    assert "name: missing" in _error(tmp_path, {"effects": {}})
    assert "not valid YAML" in _error(tmp_path, "name: [unclosed\n")


def test_bad_mix_weight_and_member(tmp_path):
    assert "profiles.normal: -1 is not allowed" in _error(tmp_path, {"name": "m", "profiles": {"normal": -1}})
    assert "allowed: a number > 0, finite" in _error(tmp_path, {"name": "m", "profiles": {"normal": -1}})
    with pytest.raises(ArchivistError, match="'nosuch' not found"):
        load_file(_write(tmp_path, {"name": "m", "profiles": {"nosuch": 1}}))


def test_shipped_profiles_are_valid_and_calibrated():
    for name in ("subtle", "normal", "heavy", "antilines", "rgb"):
        profile = load_profile(name)
        assert isinstance(profile, Profile) and profile.name == name
    mix = load_profile("default")
    assert isinstance(mix, Mix)
    assert [(p.name, round(w, 3)) for p, w in mix.entries] == [("subtle", 0.1), ("normal", 0.3), ("heavy", 0.6)]
    assert load_profile("antilines").effects["crease"].probability == pytest.approx(0.8)
    # The original's "hypochondria": too many specks. Shipped profiles keep debris off like the original.
    assert not any(load_profile(n).effects["debris"].enabled for n in ("subtle", "normal", "heavy"))


def test_hash_is_of_the_canonical_form():
    a = validate_profile({"name": "a", "effects": {"grain": {"strength": 5}}}, "<a>")
    b = validate_profile({"name": "b", "description": "other words",
                          "effects": {"grain": {"strength": [5.0, 5.0], "enabled": True, "probability": 1}}}, "<b>")
    c = validate_profile({"name": "a", "effects": {"grain": {"strength": 6}}}, "<c>")
    assert a.hash == b.hash != c.hash
    assert len(a.hash) == 64
    assert validate_profile(a.to_document(), "<round trip>").hash == a.hash


def test_a_profile_path_and_a_profile_as_mix_of_one(tmp_path):
    path = _write(tmp_path, {"name": "mine", "effects": {"grain": {"strength": 5}}}, "mine.yaml")
    assert load_profile(str(path)).name == "mine"
    from engine.degrade.schema import as_mix

    mix = as_mix(load_profile("normal"))
    assert len(mix.entries) == 1 and mix.entries[0][1] == 1.0


def test_unknown_profile_name_lists_the_known_ones():
    with pytest.raises(ArchivistError, match="not found; known: .*normal"):
        load_profile("nosuch")


def test_profile_reference_doc_is_generated_from_the_schema():
    committed = (REPO / "docs" / "profiles.md").read_text(encoding="utf-8")
    assert committed == reference_markdown(), "regenerate: python -c 'from engine.degrade.schema import " \
        "reference_markdown as r; open(\"docs/profiles.md\", \"w\").write(r())'"
    for name, effect in EFFECTS.items():
        assert f"### {name}" in committed
        for pname in effect.specs:
            assert f"| {pname} |" in committed


def test_a_user_mix_of_user_and_shipped_profiles(home):
    (home / "profiles" / "mixes").mkdir(parents=True)
    (home / "profiles" / "mine.yaml").write_text(yaml.safe_dump({"name": "mine", "effects": {"grain": {}}}))
    (home / "profiles" / "mixes" / "blend.yaml").write_text(
        yaml.safe_dump({"name": "blend", "profiles": {"mine": 1, "heavy": 3}}, sort_keys=False))
    mix = load_profile("blend")
    assert isinstance(mix, Mix)
    assert [(p.name, w) for p, w in mix.entries] == [("mine", 0.25), ("heavy", 0.75)]
