"""The evaluation behind the starter's table: damaged vs fastNlMeans vs models, recorded with hashes."""

import json

import pytest

from engine.degrade import load_profile
from engine.errors import ArchivistError
from engine.evaluate import NLM_STRENGTHS, main, markdown_table, photo_images, rows_from_record


def test_evaluate_records_scores_and_what_they_depend_on(tmp_path, tiny_compact, capsys):
    model, _ = tiny_compact
    record_path = tmp_path / "eval.json"
    rc = main([str(model), "--frames", "2", "--size", "64", "--profiles", "subtle", "--no-photos",
               "--record", str(record_path)])
    assert rc == 0
    record = json.loads(record_path.read_text())
    assert record["profiles"] == {"subtle": load_profile("subtle").hash}
    assert len(record["models"][str(model)]) == 64
    (row,) = rows_from_record(record)
    assert row.profile == "subtle" and row.images == 2
    assert set(row.scores) == {"damaged", "nlm", str(model)}
    assert row.scores["nlm"].detail in {f"h={h}" for h in NLM_STRENGTHS}
    damaged = row.scores["damaged"]
    assert 10 < damaged.psnr < 50 and 0 < damaged.ssim < 1
    # fastNlMeans at its best strength does better than the damaged input on grainy frames.
    assert row.scores["nlm"].psnr > damaged.psnr
    out = capsys.readouterr().out
    assert out == markdown_table([row]) and "| procedural (2 × 64²) | subtle |" in out


def test_photos_come_from_installed_packages_and_bad_sizes_fail(tmp_path):
    photos = photo_images(max_side=128)
    assert photos, "textual-image ships a photograph; it is a dependency"
    for name, img in photos:
        assert name.endswith((".jpg", ".png"))
        assert img.ndim == 3 and max(img.shape[:2]) <= 128 and img.shape[0] % 4 == 0
    from engine.evaluate import evaluate

    with pytest.raises(ArchivistError, match="--size"):
        evaluate(["x"], frames=1, size=16)
