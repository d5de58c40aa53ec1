"""The training config: the --init template, validation messages, resume differences."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.train.config import (
    INIT_TEMPLATE,
    TrainConfig,
    config_from_dict,
    flatten,
    init_template,
    resume_differences,
    validate,
    with_legacy_values,
)
from tests.train.trainkit import tiny_config

ROOT = Path(__file__).resolve().parents[2]


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
    ("network.scale", 3, "data.patch_size = 32 invalid: allowed a multiple of network.scale (3)"),
    ("data.workers", "many", "data.workers = 'many' invalid: allowed auto or an integer 0 to 64"),
    ("data.video_limit", 0, "data.video_limit = 0 invalid: allowed null or an integer 1 to 10000000"),
    ("losses.perceptual.layers", {"conv1_2": -1}, "conv1_2: -1 is not"),
    ("losses.perceptual.layers", {}, "losses.perceptual.layers = {}"),
    ("optim.g.betas", [0.9, 1.0], "optim.g.betas = [0.9, 1.0] invalid: allowed a list of 2 numbers, each a number >= 0 and < 1"),
    ("schedule.milestones", [100, 0], "schedule.milestones = [100, 0]"),
    ("schedule.gamma", 0, "schedule.gamma = 0 invalid: allowed a number > 0 and <= 1"),
    ("seed", True, "seed = True invalid: allowed an integer 0 to 2147483647"),
    ("data.paired", None, "data.clean = [] invalid"),
])
def test_bad_values_name_key_value_and_range(key, value, needle):
    doc = tiny_config(**{key: value})
    if key == "data.paired":  # clean frames then, and none named
        doc["data"]["clean"] = []
    with pytest.raises(ArchivistError) as err:
        config_from_dict(doc, "my.yaml")
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


def test_the_template_and_the_declared_defaults_agree():
    """INIT_TEMPLATE writes out every key with its default: the two cannot drift apart."""
    template = flatten(yaml.safe_load(INIT_TEMPLATE))
    defaults = flatten(TrainConfig().to_dict())
    assert sorted(template) == sorted(defaults)
    assert {k: v for k, v in template.items() if v != defaults[k]} == {}
    assert config_from_dict(yaml.safe_load(INIT_TEMPLATE)).to_dict() == TrainConfig().to_dict()


def test_the_docs_hold_the_current_key_table():
    from engine.document import refresh_page

    page = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    assert "| `train.nan_tolerance` | `5` | an integer 1 to 1000000 |" in page
    assert refresh_page(page) == page, "docs/training.md is stale: python -m engine.document docs/training.md"


# A run's config.yaml as the code before the declared document stored it (TrainConfig.to_dict of the
# template), from before data.damage_scale and data.gray_film existed.
STORED_BEFORE = """\
name: medium-v1
seed: 0
device: auto
precision: auto
channels_last: false
compile: false
network: {arch: compact, num_feat: 48, num_conv: 16, scale: 1, act: prelu, pretrained: null}
data:
  clean: [frames/]
  video_every: 1
  video_limit: null
  paired: null
  val: null
  val_count: 4
  val_size: 256
  patch_size: 128
  batch_size: 8
  workers: auto
  flip: true
  rot90: true
  mix: default
losses:
  pixel: {type: l1, weight: 1, usm_gt: false}
  perceptual:
    weight: 1.0
    vgg19: null
    layers: {conv1_2: 0.1, conv2_2: 0.1, conv3_4: 1.0, conv4_4: 1.0, conv5_4: 1.0}
  gan: {weight: 0.1, type: vanilla, real_label: 0.9, adaptive: false, adaptive_threshold: 0.3, d_num_feat: 64}
optim:
  g: {type: adam, lr: 0.0001, betas: [0.9, 0.99], weight_decay: 0.0}
  d: {type: adam, lr: 0.0001, betas: [0.9, 0.99], weight_decay: 0}
  grad_clip: 0.0
schedule: {type: multistep, milestones: [200000], gamma: 0.5, warmup_iters: 0, min_lr: 1.0e-07}
ema: {decay: 0.999}
train: {total_iters: 400000, log_every: 100, val_every: 5000, checkpoint_every: 5000, keep_checkpoints: 5,
        nan_tolerance: 5}
"""


def test_a_stored_run_config_still_loads_and_resumes_unchanged():
    stored = yaml.safe_load(STORED_BEFORE)
    cfg = config_from_dict(with_legacy_values(stored), "runs/medium-v1/config.yaml")
    assert cfg.data.damage_scale == "patch" and cfg.data.gray_film is False  # as its code trained it
    assert cfg.losses.pixel.weight == 1 and cfg.optim.g.betas == [0.9, 0.99]
    # resuming compares the stored document with the config given again: nothing differs
    again = config_from_dict(with_legacy_values(yaml.safe_load(yaml.safe_dump(cfg.to_dict()))))
    assert resume_differences(cfg.to_dict(), again.to_dict()) == []
    assert resume_differences(with_legacy_values(stored), cfg.to_dict()) == []


def test_a_config_made_in_code_is_checked_the_same_way():
    cfg = TrainConfig()
    cfg.train.total_iters = 0
    with pytest.raises(ArchivistError, match=r"^code: train.total_iters = 0 invalid: allowed an integer 1 to"):
        validate(cfg, "code")
    cfg = TrainConfig()
    cfg.network.scale = 3
    with pytest.raises(ArchivistError, match=r"data.patch_size = 128 invalid: allowed a multiple of network.scale"):
        validate(cfg)
