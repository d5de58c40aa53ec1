"""The training loop on CPU with tiny networks: learning, exact resume, NaN guard, control, VGG, promote."""

from __future__ import annotations

import json

import pytest
import torch

import engine.train.trainer as trainer_mod
from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.train import run_training
from engine.train.runs import list_checkpoints, request, run_dir


def _metrics(name: str, kind: str) -> list[dict]:
    lines = (run_dir(name) / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


@pytest.mark.slow
def test_pixel_only_run_lowers_validation_l1_and_writes_everything(make_config):
    cfg = make_config(**{"train.total_iters": 40, "train.val_every": 10, "train.checkpoint_every": 10,
                         "train.keep_checkpoints": 2})
    result = run_training(cfg)
    assert result.status == "done" and result.iteration == 40
    vals = _metrics("tiny", "val")
    assert vals[-1]["l1"] < vals[0]["l1"] * 0.9, [v["l1"] for v in vals]
    assert vals[-1]["psnr"] > vals[0]["psnr"] and 0 < vals[-1]["ssim"] <= 1
    train = _metrics("tiny", "train")
    for key in ("iteration", "time", "l_pix", "l_g_total", "lr_g", "grad_norm_g", "it_per_s", "data_wait",
                "cpu_mem_mb"):
        assert key in train[-1]
    rdir = run_dir("tiny")
    assert [i for i, _ in list_checkpoints(rdir)] == [30, 40]  # keep_checkpoints: 2
    previews = sorted((rdir / "previews").glob("*.png"))
    assert len(previews) == 4
    import cv2

    img = cv2.imread(str(previews[-1]))
    assert img.shape == (48, 144, 3)  # LQ | output | GT
    assert not list(rdir.rglob("*.part"))
    ckpt = torch.load(str(result.checkpoint), weights_only=True)
    assert "d" not in ckpt  # generator alone: no discriminator built
    # A second start of the same run without --resume is refused.
    with pytest.raises(ArchivistError, match="exists already"):
        run_training(cfg)


def _weights(path) -> dict:
    return torch.load(str(path), weights_only=True)


def _assert_same(a, b, where="") -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")


@pytest.mark.slow
def test_resume_is_bit_identical_with_gan_and_schedule(make_config):
    overrides = {"losses.gan.weight": 0.1, "losses.gan.d_num_feat": 8, "losses.gan.adaptive": True,
                 "losses.pixel.type": "charbonnier", "schedule.type": "cosine", "schedule.warmup_iters": 3,
                 "optim.d.type": "adamw", "optim.grad_clip": 1.0, "train.total_iters": 6,
                 "train.checkpoint_every": 100, "train.val_every": 100}
    straight = run_training(make_config(**overrides), name="straight")
    cfg = make_config(**overrides)
    first = run_training(cfg, name="split", stop_at=3)
    assert first.status == "stop_at" and first.iteration == 3
    second = run_training(cfg, name="split", resume=True)
    assert second.status == "done" and second.iteration == 6
    a, b = _weights(straight.checkpoint), _weights(second.checkpoint)
    for key in ("g", "g_ema", "d", "opt_g", "opt_d", "sched_g", "sched_d", "rng"):
        _assert_same(a[key], b[key], key)
    assert a["iteration"] == b["iteration"] == 6


@pytest.mark.slow
def test_resume_refuses_other_changes_and_accepts_longer_runs(make_config):
    cfg = make_config(**{"train.total_iters": 4})
    run_training(cfg)
    with pytest.raises(ArchivistError, match=r"differs .* in network.num_feat, optim.g.lr"):
        run_training(make_config("b.yaml", **{"network.num_feat": 16, "optim.g.lr": 1e-5}), resume=True)
    longer = run_training(make_config("c.yaml", **{"train.total_iters": 6}), resume=True)
    assert longer.iteration == 6
    with pytest.raises(ArchivistError, match="no checkpoint to resume"):
        run_training(cfg, name="never-ran", resume=True)


@pytest.mark.slow
def test_nan_guard_skips_then_aborts(make_config, monkeypatch):
    monkeypatch.setattr(trainer_mod, "_FAULT_NAN_ITERS", {3, 4})
    result = run_training(make_config(**{"train.total_iters": 8, "train.log_every": 1}), name="few")
    assert result.status == "done"
    train = _metrics("few", "train")
    assert {r["iteration"] for r in train} == {1, 2, 5, 6, 7, 8}  # 3 and 4 skipped
    assert train[-1]["nan_skipped"] == 2
    monkeypatch.setattr(trainer_mod, "_FAULT_NAN_ITERS", set(range(3, 100)))
    with pytest.raises(ArchivistError, match="diverged: 3 non-finite steps in a row"):
        run_training(make_config(**{"train.total_iters": 20, "train.nan_tolerance": 3}), name="many")


def test_control_file_pauses_and_should_stop_stops(make_config):
    cfg = make_config(**{"train.total_iters": 50})

    def progress(done, total):
        if done == 4:
            request("tiny", "pause")

    result = run_training(cfg, progress=progress)
    assert result.status == "paused" and result.iteration == 4
    assert list_checkpoints(run_dir("tiny"))[-1][0] == 4
    assert not (run_dir("tiny") / "control").exists()
    result = run_training(None, name="tiny", resume=True, should_stop=lambda: "stop")  # the run's own config
    assert result.status == "stopped" and result.iteration == 5
    (run_dir("tiny") / "control").write_text("stop\n")  # a stale request (its trainer died) does not stop the next start
    assert main(["train", "--resume", "--name", "tiny", "--stop-at", "7"]) == 0
    assert list_checkpoints(run_dir("tiny"))[-1][0] == 7


def test_perceptual_refuses_without_vgg_weights(make_config, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    cfg = make_config(**{"losses.perceptual.weight": 1.0})
    with pytest.raises(ArchivistError, match="needs VGG19 weights.*never downloaded"):
        run_training(cfg)
    assert not run_dir("tiny", must_exist=False).exists()  # nothing half-made
    with pytest.raises(ArchivistError, match="no such file"):
        run_training(make_config(**{"losses.perceptual.weight": 1.0, "losses.perceptual.vgg19": "nope.pth"}))


@pytest.mark.slow
def test_perceptual_with_a_vgg19_weights_file(make_config, workdir):
    from engine.train.losses import VGG19Features

    torch.manual_seed(0)
    layers = {"conv1_2": 0.5, "conv2_1": 1.0}
    state = VGG19Features(list(layers)).state_dict()
    assert sorted(state) == ["features.0.bias", "features.0.weight", "features.2.bias", "features.2.weight",
                             "features.5.bias", "features.5.weight"]
    torch.save(state, str(workdir / "vgg.pth"))
    cfg = make_config(**{"losses.perceptual.weight": 1.0, "losses.perceptual.vgg19": "vgg.pth",
                         "losses.perceptual.layers": layers, "train.total_iters": 3, "train.log_every": 1})
    run_training(cfg)
    assert _metrics("tiny", "train")[-1]["l_percep"] > 0
    torch.save({"features.0.weight": torch.zeros(1)}, str(workdir / "bad.pth"))
    with pytest.raises(ArchivistError, match="not VGG19 weights"):
        run_training(make_config("b.yaml", **{"losses.perceptual.weight": 1.0, "losses.perceptual.vgg19": "bad.pth",
                                              "losses.perceptual.layers": layers}), name="bad")


@pytest.mark.slow
def test_runs_cli_list_show_promote_remove(make_config, capsys):
    from engine.models.files import load_model
    from engine.models.library import Library

    cfg = make_config(**{"train.total_iters": 10, "train.checkpoint_every": 5})
    assert main(["train", str(cfg), "--name", "r1", "--device", "cpu"]) == 0
    assert "finished at iteration 10" in capsys.readouterr().out
    assert main(["runs", "list", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["status"], r["iteration"]) for r in items] == [("r1", "done", 10)]
    assert main(["runs", "show", "r1", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["checkpoints"] == [5, 10] and info["last_val"]["psnr"] > 0
    assert main(["runs", "show", "r1"]) == 0
    assert "PSNR" in capsys.readouterr().out
    assert main(["runs", "promote", "r1", "--iter", "5", "--name", "mine", "--role", "medium"]) == 0
    entry = Library().get("mine")
    assert entry.iterations == 5 and entry.role == "medium" and entry.metadata.get("run") == "r1"
    ckpt = torch.load(str(run_dir("r1") / "checkpoints" / "iter_000000005.pt"), weights_only=True)
    loaded = load_model(entry.path)
    _assert_same(loaded.module.state_dict(), ckpt["g_ema"])
    assert main(["runs", "promote", "r1", "--iter", "7", "--name", "other"]) == 1
    assert "no checkpoint at iteration 7" in capsys.readouterr().err
    assert main(["runs", "stop", "r1"]) == 1  # nobody would read the request of a finished run
    assert "run 'r1' is done, not running: nothing to stop" in capsys.readouterr().err
    assert not (run_dir("r1") / "control").exists()
    assert main(["runs", "remove", "r1"]) == 0
    assert main(["runs", "show", "r1"]) == 1
    assert "no run named 'r1'" in capsys.readouterr().err


def test_fine_tune_from_a_pretrained_library_model(make_config, tiny_compact):
    path, net = tiny_compact
    cfg = make_config(**{"network.pretrained": str(path), "train.total_iters": 2})
    result = run_training(cfg)
    assert result.status == "done"
    # The promoted model says which model it was fine-tuned from.
    from engine.models.library import entry_from_file
    from engine.train.runs import promote

    entry = promote(result.run, "tuned", role="medium")
    assert entry.metadata["pretrained"] == {"model": str(path), "sha256": entry_from_file(path).sha256}
    with pytest.raises(ArchivistError, match="network.pretrained"):
        run_training(make_config("b.yaml", **{"network.pretrained": str(path), "network.num_feat": 16}), name="b")


def test_a_run_stopped_before_its_first_checkpoint_says_how_to_start_again(make_config, capsys):
    """A signal in the first instants of a new run leaves its folder with a config and no checkpoint.
    Starting it again said 'continue it with --resume', and --resume said only 'no checkpoint'."""
    from archivist_tui.cli import main

    cfg = make_config()
    rdir = run_dir("tiny", must_exist=False)
    rdir.mkdir(parents=True)
    (rdir / "config.yaml").write_text(cfg.read_text())  # what a run killed while it started leaves
    assert main(["train", str(cfg)]) != 0
    err = capsys.readouterr().err.strip()
    assert "stopped before its first checkpoint: archivist runs remove tiny and start it again" in err, err
    assert "--resume" not in err and len(err.splitlines()) == 1
    assert main(["train", str(cfg), "--resume"]) != 0
    err = capsys.readouterr().err.strip()
    assert "has no checkpoint to resume from" in err and "archivist runs remove tiny" in err, err
    assert main(["runs", "remove", "tiny"]) == 0
    assert main(["train", str(cfg), "--stop-at", "2"]) == 0
