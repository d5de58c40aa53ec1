"""``archivist profiles ...`` and ``archivist degrade ...``, driven in-process."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml

from engine.degrade.registry import EFFECTS

from .helpers import cartoon


def test_profiles_list_table_and_json(cli):
    rc, out, _ = cli("profiles", "list")
    assert rc == 0
    for name in ("subtle", "normal", "heavy", "antilines", "rgb", "default"):
        assert name in out
    rc, out, _ = cli("profiles", "list", "--json")
    rows = json.loads(out)
    assert isinstance(rows, list)
    kinds = {r["name"]: r["kind"] for r in rows}
    assert kinds["normal"] == "profile" and kinds["default"] == "mix"
    assert all(len(r["hash"]) == 64 for r in rows)


def test_profiles_show_lists_every_effect_even_when_off(cli):
    rc, out, _ = cli("profiles", "show", "normal")
    assert rc == 0
    for name in EFFECTS:
        assert name in out
    assert "debris                off" in out
    rc, out, _ = cli("profiles", "show", "normal", "--json")
    doc = json.loads(out)
    assert isinstance(doc, dict) and set(doc["effects"]) == set(EFFECTS)
    assert doc["effects"]["debris"]["enabled"] is False
    assert doc["effects"]["grain"]["strength"] == [4.0, 7.0]
    rc, out, _ = cli("profiles", "show", "default", "--json")
    assert [p["name"] for p in json.loads(out)["profiles"]] == ["subtle", "normal", "heavy"]


def test_profiles_show_unknown_is_one_error_line(cli):
    rc, out, err = cli("profiles", "show", "nosuch")
    assert rc == 1 and out == ""
    assert err.startswith("archivist: error: ") and err.count("\n") == 1


def test_profiles_validate(cli, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"name": "good", "effects": {"grain": {"strength": [3, 5]}}}))
    rc, out, _ = cli("profiles", "validate", str(good))
    assert rc == 0 and "ok (profile good" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", "effects": {"grain": {"strength": [5, 3]}}}))
    rc, _, err = cli("profiles", "validate", str(bad))
    assert rc == 1 and str(bad) in err and "effects.grain.strength" in err and err.count("\n") == 1


def test_profiles_new_makes_a_user_profile(cli, home):
    rc, out, _ = cli("profiles", "new", "mine", "--from", "heavy")
    assert rc == 0
    path = home / "profiles" / "mine.yaml"
    assert path.is_file() and str(path) in out
    rc, out, _ = cli("profiles", "show", "mine", "--json")
    shown = json.loads(out)
    rc, heavy, _ = cli("profiles", "show", "heavy", "--json")
    assert shown["name"] == "mine" and shown["hash"] == json.loads(heavy)["hash"]
    rc, _, err = cli("profiles", "new", "mine")
    assert rc == 1 and "already exists" in err
    rc, _, err = cli("profiles", "new", "normal")
    assert rc == 1 and "shipped" in err
    rc, _, err = cli("profiles", "new", "../evil")
    assert rc == 1 and "not allowed" in err


def test_a_user_file_with_a_shipped_name_is_ignored_with_a_warning(cli, home):
    (home / "profiles").mkdir(parents=True)
    (home / "profiles" / "normal.yaml").write_text(yaml.safe_dump({"name": "normal", "effects": {}}))
    rc, out, err = cli("profiles", "list")
    assert rc == 0 and "reuses the shipped name 'normal'" in err
    rc, out, _ = cli("profiles", "show", "normal", "--json")
    assert "profiles/normal.yaml" in json.loads(out)["path"] and str(home) not in json.loads(out)["path"]


def test_degrade_command_writes_pairs(cli, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        cv2.imwrite(str(src / f"f{i}.png"), cartoon(80, 64, seed=i))
    out_dir = tmp_path / "ds"
    rc, out, err = cli("degrade", str(src), "-o", str(out_dir), "--mix", "default", "--count", "2", "--crop", "48",
                       "--seed", "3")
    assert rc == 0, err
    assert "4 pairs written" in out
    assert sorted(p.name for p in (out_dir / "lq").iterdir()) == [
        "f0_0000.png", "f0_0001.png", "f1_0000.png", "f1_0001.png"]
    assert cv2.imread(str(out_dir / "gt" / "f0_0000.png")).shape == (48, 48, 3)
    rc, out, _ = cli("degrade", str(src), "-o", str(out_dir), "--mix", "default", "--count", "2", "--crop", "48",
                     "--seed", "3")
    assert rc == 0 and "0 pairs written, 4 already there" in out


def test_degrade_command_usage_errors(cli, tmp_path):
    rc, _, err = cli("degrade", str(tmp_path), "-o", str(tmp_path / "o"))
    assert rc == 2 and "--profile" in err
    rc, _, err = cli("degrade", str(tmp_path), "-o", str(tmp_path / "o"), "--profile", "normal", "--mix", "default")
    assert rc == 2
    rc, _, err = cli("degrade", str(tmp_path / "nothing"), "-o", str(tmp_path / "o"), "--profile", "normal")
    assert rc == 1 and "no such file or folder" in err
    rc, _, err = cli("degrade", str(tmp_path), "-o", str(tmp_path / "o"), "--profile", "normal", "--count", "0")
    assert rc == 2 and "--count: 0 out of range: allowed an integer 1 or more" in err


def _files(root):
    return sorted(p for p in root.rglob("*"))


# Every bound of degrade in the words restore uses (engine.document.describe_range), the flag named;
# --seed the same with or without --queue (the queued spec's own check says "an integer 0 or more").
@pytest.mark.parametrize("extra, line", [
    (["--count", "0"], "argument --count: 0 out of range: allowed an integer 1 or more"),
    (["--crop", "0"], "argument --crop: 0 out of range: allowed an integer 8 or more"),
    (["--crop", "4", "--queue"], "argument --crop: 4 out of range: allowed an integer 8 or more"),
    (["--workers", "0"], "argument --workers: 0 out of range: allowed an integer 1 or more"),
    (["--clip-length", "0"], "argument --clip-length: 0 out of range: allowed an integer 1 or more"),
    (["--every", "0"], "argument --every: 0 out of range: allowed an integer 1 or more"),
    (["--seed", "-1"], "argument --seed: -1 out of range: allowed an integer 0 or more"),
    (["--seed", "-1", "--queue"], "argument --seed: -1 out of range: allowed an integer 0 or more"),
])
def test_degrade_bounds_are_worded_like_restore(cli, tmp_path, extra, line):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 32, 3), np.uint8))
    before = _files(tmp_path)
    rc, out, err = cli("degrade", str(tmp_path / "a.png"), "-o", str(tmp_path / "ds"), "--profile", "normal", *extra)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("archivist: error: "), err
    assert line in lines[0]
    assert _files(tmp_path) == before


def test_a_seed_out_of_range_names_the_seed_key_in_the_engine():
    from engine.degrade.pipeline import MAX_SEED, check_seed
    from engine.document import InvalidValue

    for bad, allowed in ((-5, "an integer 0 or more"), (MAX_SEED + 1, f"an integer 0 to {MAX_SEED}")):
        with pytest.raises(InvalidValue) as info:
            check_seed(bad)
        assert info.value.key == "seed" and info.value.line("--seed") == f"--seed {bad} invalid: allowed {allowed}"


@pytest.mark.slow
def test_degrade_command_clips_with_a_profile_file_and_two_workers(cli, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        cv2.imwrite(str(src / f"s{i}.png"), cartoon(64, 48, seed=i))
    profile = tmp_path / "mine.yaml"
    profile.write_text(yaml.safe_dump({"name": "mine", "effects": {"grain": {"strength": 8}, "flicker": {}}}))
    out_dir = tmp_path / "clips"
    rc, out, err = cli("degrade", str(src), "-o", str(out_dir), "--profile", str(profile), "--clip-length", "3",
                       "--workers", "2")
    assert rc == 0, err
    assert "2 pairs written" in out
    assert len(list((out_dir / "lq" / "s1_0000").glob("frame_*.png"))) == 3
    entry = json.loads((out_dir / "manifest.jsonl").read_text().splitlines()[0])
    assert entry["profile"] == "mine" and entry["frames"] == 3


def test_a_user_profile_that_is_not_utf8_is_listed_as_invalid(cli, home):
    (home / "profiles").mkdir(parents=True)
    (home / "profiles" / "cafe.yaml").write_bytes(b"name: caf\xe9\neffects: {}\n")  # saved as Latin-1
    rc, out, err = cli("profiles", "list")
    assert rc == 0 and "Traceback" not in err
    assert "normal" in out  # every other profile is still listed
    row = next(line for line in out.splitlines() if line.split() and line.split()[0] == "cafe")
    assert "INVALID" in row.upper()
