"""The evaluation behind the starter's table: damaged vs fastNlMeans vs models, recorded with hashes."""

import json

import pytest

from engine.degrade import load_profile
from engine.errors import ArchivistError
from engine.evaluate import (
    NLM_STRENGTHS,
    SETS,
    main,
    markdown_table,
    photo_images,
    resolve_sets,
    rows_from_record,
)
from engine.synth import EVALUATION_SEEDS


def test_evaluate_records_scores_and_what_they_depend_on(tmp_path, tiny_compact, capsys):
    model, _ = tiny_compact
    record_path = tmp_path / "eval.json"
    rc = main([str(model), "--frames", "2", "--size", "64", "--profiles", "subtle", "--sets", "cels",
               "--record", str(record_path)])
    assert rc == 0
    record = json.loads(record_path.read_text())
    assert record["profiles"] == {"subtle": load_profile("subtle").hash}
    assert len(record["models"][str(model)]) == 64
    (row,) = rows_from_record(record)
    assert row.profile == "subtle" and row.images == 2 and row.key == "cels"
    assert record["settings"]["sets"] == {"cels": {"seed": 900_000, "damage_offset": 0, "final": False, "gray": False}}
    assert set(row.scores) == {"damaged", "nlm", str(model)}
    assert row.scores["nlm"].detail in {f"h={h}" for h in NLM_STRENGTHS}
    damaged = row.scores["damaged"]
    assert 10 < damaged.psnr < 50 and 0 < damaged.ssim < 1
    # fastNlMeans at its best strength does better than the damaged input on grainy frames.
    assert row.scores["nlm"].psnr > damaged.psnr
    out = capsys.readouterr().out
    assert out == markdown_table([row]) and "| cels (2 × 64², seeds 900000+) | subtle |" in out


def test_photos_come_from_installed_packages_and_bad_sizes_fail(tmp_path):
    photos = photo_images(max_side=128)
    assert photos, "textual-image ships a photograph; it is a dependency"
    for name, img in photos:
        assert name.endswith((".jpg", ".png"))
        assert img.ndim == 3 and max(img.shape[:2]) <= 128 and img.shape[0] % 4 == 0
    from engine.evaluate import evaluate

    with pytest.raises(ArchivistError, match="--size"):
        evaluate(["x"], frames=1, size=16)


def test_sets_for_choosing_and_sets_measured_once_at_the_end(tmp_path, capsys):
    """What a recipe, mix or checkpoint is chosen on (tune) never includes the test frames or the
    real photographs; every set's frames come from seeds training may not use, none shared."""
    assert resolve_sets(None) == resolve_sets(["tune"]) == ["cels", "photos-val", "bw-val"]
    assert resolve_sets(["final"]) == list(SETS) and "real" in SETS and SETS["real"].final
    assert not any(SETS[k].final for k in resolve_sets(["tune"]))
    seeds = [s.seed for s in SETS.values() if s.seed is not None]
    assert len(set(seeds)) == len(seeds) and all(s + 100 in EVALUATION_SEEDS for s in seeds)
    assert len({s.damage for s in SETS.values() if s.key not in ("cels", "real")} | {0}) == 5
    assert main(["x", "--sets", "holiday-snaps"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archivist: error: --sets 'holiday-snaps'") and "photos-val" in err[0]


def test_black_and_white_sets_are_gray_input_and_report_colour_in_the_output(tmp_path, tiny_compact, capsys):
    model, _ = tiny_compact
    record_path = tmp_path / "eval.json"
    assert main([str(model), "--frames", "2", "--size", "64", "--profiles", "rgb", "--sets", "bw-val",
                 "photos-val", "--record", str(record_path)]) == 0
    rows = rows_from_record(json.loads(record_path.read_text()))
    assert [r.key for r in rows] == ["photos-val", "bw-val"]
    photos, bw = rows
    assert photos.scores["damaged"].gray is None
    assert bw.scores["damaged"].gray == 0  # the input is gray even after the rgb profile's casts
    assert bw.scores[str(model)].gray is not None
    assert f"(gray ±{bw.scores[str(model)].gray})" in capsys.readouterr().out
