"""NaN passes every range comparison (``nan < 0`` and ``nan > 60`` are both false), and YAML spells
it ``.nan``. Every numeric field of every document refuses NaN and infinity with one line naming
the key: profiles, mixes, training configs, the queue config, job specs and command-line options."""

from __future__ import annotations

import math

import pytest

from archivist_tui.cli import main


def _refused(capsys, argv) -> str:
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archivist: error: "), lines
    return lines[0]


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "[1, .nan]", "[.nan, .nan]"])
def test_a_profile_value_that_is_not_finite_is_refused(tmp_path, capsys, value):
    path = tmp_path / "p.yaml"
    path.write_text(f"name: p\neffects:\n  grain:\n    strength: {value}\n")
    line = _refused(capsys, ["profiles", "validate", str(path)])
    assert "effects.grain.strength" in line and "not a finite number" in line
    line = _refused(capsys, ["degrade", str(tmp_path), "-o", str(tmp_path / "ds"), "--profile", str(path)])
    assert "effects.grain.strength" in line
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("value", [".nan", ".inf"])
def test_a_mix_weight_that_is_not_finite_is_refused(tmp_path, capsys, value):
    path = tmp_path / "m.yaml"
    path.write_text(f"name: m\nprofiles:\n  subtle: 1\n  heavy: {value}\n")
    line = _refused(capsys, ["profiles", "validate", str(path)])
    assert "profiles.heavy" in line and "finite" in line


@pytest.mark.parametrize("key", ["optim.g.lr", "losses.pixel.weight", "ema.decay", "schedule.gamma"])
def test_a_training_config_value_that_is_not_finite_is_refused(tmp_path, key):
    from engine.errors import ArchivistError
    from engine.train.config import config_from_dict
    from tests.train.trainkit import tiny_config

    for bad in (math.nan, math.inf):
        with pytest.raises(ArchivistError, match=rf"^cfg\.yaml: {key} = (nan|inf) invalid: allowed a number .*, finite"):
            config_from_dict(tiny_config(**{key: bad}), "cfg.yaml", tmp_path)


def test_a_queue_config_value_that_is_not_finite_is_refused(tmp_path, archivist_home):
    from engine.errors import ArchivistError
    from engine.queue.config import load_config

    for key in ("poll_interval", "stop_grace", "hook_timeout"):
        for bad in (".nan", ".inf"):
            (archivist_home / "config.yaml").write_text(f"queue:\n  gpus: []\n  {key}: {bad}\n")
            with pytest.raises(ArchivistError, match=rf"config.yaml: queue\.{key} = (nan|inf) invalid: allowed a number .* \(seconds\), finite"):
                load_config(detect_gpus=False)


def test_job_specs_and_options_that_are_not_finite_are_refused(tmp_path, capsys, archivist_home):
    from engine.errors import ArchivistError
    from engine.queue import QueueClient
    from engine.video.synthetic import write_test_clip

    clip = write_test_clip(tmp_path / "a.mkv", frames=2)
    base = ["restore", str(clip), "-o", str(tmp_path / "o.mkv"), "-m", "archivist-starter", "--device", "cpu"]
    for option, value in (("--crf", "nan"), ("--crf", "inf"), ("--start", "nan"), ("--duration", "inf")):
        for extra in ([], ["--queue"]):
            line = _refused(capsys, [*base, option, value, *extra])
            assert option in line and value in line
    with QueueClient() as q:
        for key in ("crf", "start", "duration"):
            with pytest.raises(ArchivistError, match=rf"^video\.{key} = nan invalid: allowed a finite number$"):
                q.submit("restore", {"input": str(clip), "output": str(tmp_path / "o.mkv"),
                                     "models": ["archivist-starter"], "video": {key: math.nan}})
        with pytest.raises(ArchivistError, match=r"^stop_at = nan invalid: allowed null or an integer 1 or more"):
            q.submit("train", {"name": "run", "stop_at": math.nan})
        assert q.list_jobs() == []
    assert not (tmp_path / "o.mkv").exists()
