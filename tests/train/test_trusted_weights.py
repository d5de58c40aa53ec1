"""Training never starts from, nor writes, non-finite weights; ReLU/LeakyReLU models survive export."""

from __future__ import annotations

import pytest
import torch

import engine.train.trainer as trainer_mod
from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.models import compact
from engine.models.files import load_model
from engine.models.library import Library
from engine.train import run_training
from engine.train.runs import list_checkpoints, run_dir


def _tiny(act: str = "prelu"):
    torch.manual_seed(0)
    return compact.build(compact.spec_for(8, 2, 1, act_type=act)).eval()


def test_fine_tuning_from_a_model_with_a_nan_weight_is_refused_before_the_run_exists(make_config, tmp_path):
    sd = {k: v.clone() for k, v in _tiny().state_dict().items()}
    sd["body.4.bias"][2] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save({"params": sd}, path)
    with pytest.raises(ArchivistError) as err:
        run_training(make_config(**{"network.pretrained": str(path)}))
    msg = str(err.value)
    assert msg.startswith(f"network.pretrained '{path}'") and "weight body.4.bias holds 1 non-finite value" in msg
    assert not run_dir("tiny", must_exist=False).exists()


def test_a_checkpoint_is_never_written_with_non_finite_weights(make_config):
    trainer = trainer_mod.Trainer(trainer_mod._as_config(make_config(), None), resume=False, stop_at=None,
                                  progress=None, should_stop=None)
    try:
        trainer.iteration = 3
        good = trainer.save_checkpoint()
        with torch.no_grad():
            trainer.g_ema.body[2].weight[0, 0, 0, 0] = float("inf")
        trainer.iteration = 4
        with pytest.raises(ArchivistError) as err:
            trainer.save_checkpoint()
    finally:
        trainer.close()
    msg = str(err.value)
    assert "iteration 4: g_ema weight body.2.weight holds non-finite values" in msg
    assert "no checkpoint written: the last checkpoint (iteration 3) is intact" in msg
    assert list_checkpoints(run_dir("tiny")) == [(3, good)]
    assert not list(run_dir("tiny").rglob("*.part"))


def test_after_divergence_the_advice_works(make_config, monkeypatch):
    """'the last checkpoint is intact ... then resume' is true: the resume runs to the end."""
    monkeypatch.setattr(trainer_mod, "_FAULT_NAN_ITERS", set(range(5, 100)))
    cfg = make_config(**{"train.total_iters": 12, "train.checkpoint_every": 2, "train.nan_tolerance": 3})
    with pytest.raises(ArchivistError) as err:
        run_training(cfg)
    msg = str(err.value)
    assert "diverged: 3 non-finite steps in a row" in msg
    last = list_checkpoints(run_dir("tiny"))[-1]
    assert f"the last checkpoint (iteration {last[0]}) is intact" in msg and msg.endswith("then resume")
    ckpt = torch.load(str(last[1]), weights_only=True)
    assert all(torch.isfinite(t).all() for t in ckpt["g"].values())
    monkeypatch.setattr(trainer_mod, "_FAULT_NAN_ITERS", set())
    assert run_training(cfg, resume=True).status == "done"


def test_divergence_before_any_checkpoint_does_not_advise_resume(make_config, monkeypatch):
    monkeypatch.setattr(trainer_mod, "_FAULT_NAN_ITERS", set(range(1, 100)))
    with pytest.raises(ArchivistError) as err:
        run_training(make_config(**{"train.nan_tolerance": 2}))
    msg = str(err.value)
    assert "no checkpoint was written yet" in msg and "archivist runs remove tiny" in msg
    assert "--resume" not in msg


def test_fine_tune_from_a_bare_relu_pth_reads_it_with_the_configs_activation(make_config, tmp_path):
    net = _tiny("relu")
    path = tmp_path / "relu.pth"
    torch.save(net.state_dict(), path)  # no metadata: the weights cannot say ReLU
    cfg = make_config(**{"network.pretrained": str(path), "network.act": "relu", "train.total_iters": 1,
                         "train.checkpoint_every": 1})
    trainer = trainer_mod.Trainer(trainer_mod._as_config(cfg, None), resume=False, stop_at=None, progress=None,
                                  should_stop=None)
    try:
        for k, v in net.state_dict().items():
            assert torch.equal(trainer.g.state_dict()[k], v)
    finally:
        trainer.close()
    with pytest.raises(ArchivistError, match="network.pretrained .*network.act prelu does not fit the weights: "
                                             "they hold no PReLU slopes"):
        run_training(make_config("b.yaml", **{"network.pretrained": str(path)}), name="b")


def test_a_leakyrelu_run_promoted_and_exported_as_pth_imports_again(make_config, tmp_path, capsys):
    """The issue's path: train with network.act leakyrelu, promote, export .pth, import."""
    cfg = make_config(**{"network.act": "leakyrelu", "train.total_iters": 2, "train.checkpoint_every": 2})
    assert main(["train", str(cfg), "--device", "cpu"]) == 0
    assert main(["runs", "promote", "tiny", "--name", "leaky", "--role", "soft"]) == 0
    out = tmp_path / "leaky.pth"
    assert main(["models", "export", "leaky", "--format", "pth", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["models", "import", str(out), "--name", "leaky2"]) == 0, capsys.readouterr().err
    a, b = load_model(Library().get("leaky").path), load_model(Library().get("leaky2").path)
    assert b.spec.hyper["act_type"] == "leakyrelu" and b.spec == a.spec
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        assert torch.equal(a.module(x), b.module(x))
