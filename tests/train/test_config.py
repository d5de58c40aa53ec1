"""The training config: the --init template, validation messages, resume differences."""

from __future__ import annotations

import pytest
import yaml

from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.train.config import INIT_TEMPLATE, config_from_dict, init_template, resume_differences
from tests.train.trainkit import tiny_config


def test_init_template_is_a_valid_documented_config(capsys):
    assert main(["train", "--init"]) == 0
    text = capsys.readouterr().out
    assert text == init_template()
    doc = yaml.safe_load(text)
    cfg = config_from_dict(doc)
    for key in ("name", "seed", "device", "precision", "network", "data", "losses", "optim", "ema", "train"):
        assert key in doc
    assert cfg.precision == "auto" and cfg.data.workers == "auto"
    assert cfg.losses.gan.real_label == 0.9 and cfg.ema.decay == 0.999
    assert set(doc["losses"]) == {"pixel", "perceptual", "gan"}
    assert {"total_iters", "log_every", "val_every", "checkpoint_every", "keep_checkpoints"} <= set(doc["train"])
    assert "#" in text  # documented


@pytest.mark.parametrize("key,value,needle", [
    ("network.num_feat", 0, "network.num_feat = 0"),
    ("network.num_feat", "wide", "network.num_feat = 'wide'"),
    ("network.scale", 5, "network.scale = 5"),
    ("network.act", "gelu", "one of prelu, relu, leakyrelu"),
    ("data.patch_size", 8, "data.patch_size = 8"),
    ("data.batch_size", 0, "data.batch_size = 0"),
    ("data.workers", -1, "data.workers = -1"),
    ("losses.pixel.type", "l2", "losses.pixel.type = 'l2'"),
    ("losses.gan.real_label", 1.5, "losses.gan.real_label = 1.5"),
    ("losses.perceptual.layers", {"conv9_9": 1.0}, "conv9_9"),
    ("optim.g.type", "sgd", "optim.g.type = 'sgd'"),
    ("optim.g.lr", 0, "optim.g.lr = 0"),
    ("optim.d.betas", [0.9], "optim.d.betas"),
    ("schedule.type", "step", "one of multistep, cosine"),
    ("ema.decay", 1.0, "ema.decay = 1.0"),
    ("train.total_iters", 0, "train.total_iters = 0"),
    ("train.keep_checkpoints", 0, "train.keep_checkpoints = 0"),
    ("precision", "fp8", "precision = 'fp8'"),
    ("device", "tpu", "device = 'tpu'"),
    ("name", "bad name!", "name = 'bad name!'"),
])
def test_bad_values_name_key_value_and_range(key, value, needle):
    with pytest.raises(ArchivistError) as err:
        config_from_dict(tiny_config(**{key: value}), "my.yaml")
    msg = str(err.value)
    assert msg.startswith("my.yaml: ") and needle in msg and "allowed" in msg


def test_unknown_key_lists_allowed_keys():
    with pytest.raises(ArchivistError, match=r"unknown key 'network.filters': allowed keys are .*num_feat"):
        config_from_dict(tiny_config(**{"network.filters": 4}))


def test_nothing_to_learn_is_refused():
    doc = tiny_config(**{"losses.pixel.weight": 0})
    with pytest.raises(ArchivistError, match="losses.pixel.weight"):
        config_from_dict(doc)


def test_bad_config_on_the_cli_is_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(tiny_config(**{"optim.g.lr": -1})))
    assert main(["train", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "optim.g.lr = -1" in err[0] and err[0].startswith("archivist: error:")
    path.write_text("name: [unclosed")
    assert main(["train", str(path)]) == 1
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.yaml")]) == 1
    assert "no such config file" in capsys.readouterr().err
    assert main(["train"]) == 2


def test_resume_differences_allow_only_lengths_and_intervals():
    a = config_from_dict(tiny_config()).to_dict()
    b = config_from_dict(tiny_config(**{"train.total_iters": 99, "train.val_every": 3,
                                        "train.keep_checkpoints": 9, "device": "cpu",
                                        "data.workers": 3})).to_dict()
    assert resume_differences(a, b) == []
    c = config_from_dict(tiny_config(**{"optim.g.lr": 1e-5, "network.num_feat": 16})).to_dict()
    assert resume_differences(a, c) == ["network.num_feat", "optim.g.lr"]


def test_init_config_turns_the_perceptual_loss_on_only_with_vgg_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))  # the VGG19 cache is ~/.cache/torch/hub/checkpoints/
    assert main(["train", "--init"]) == 0
    text = capsys.readouterr().out
    assert yaml.safe_load(text)["losses"]["perceptual"]["weight"] == 0
    assert "vgg19-dcbb9e9d.pth in ~/.cache/torch/hub/checkpoints/" in text and "set weight: 1.0" in text
    cache = tmp_path / ".cache" / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"weights")
    assert main(["train", "--init"]) == 0
    text = capsys.readouterr().out
    assert text == INIT_TEMPLATE and yaml.safe_load(text)["losses"]["perceptual"]["weight"] == 1.0


@pytest.mark.slow
def test_init_config_runs_as_written(tmp_path, monkeypatch, capsys):
    """The printed config, with only its sizes made tiny and frames in its frames/ folder, trains."""
    import cv2
    import numpy as np

    monkeypatch.setenv("HOME", str(tmp_path))  # no VGG19 weights here
    assert main(["train", "--init"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    frames = tmp_path / "frames"  # the template's data.clean, relative to the config file
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(frames / f"f{i}.png"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    doc["network"].update(num_feat=8, num_conv=2)
    doc["losses"]["gan"]["d_num_feat"] = 8
    doc["data"].update(patch_size=32, batch_size=2, workers=0, val_count=1, val_size=48)
    doc["train"].update(total_iters=2, log_every=1, val_every=2, checkpoint_every=2)
    cfg = tmp_path / "my-run.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["train", str(cfg), "--device", "cpu"]) == 0, capsys.readouterr().err
    assert "finished at iteration 2" in capsys.readouterr().out
