"""``archivist models``: import, list/info (text and JSON), export, rename, role, remove, errors."""

from __future__ import annotations

import json

import pytest
import torch

from archivist_tui.cli import main


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_import_list_info(tiny_compact, capsys):
    path, _ = tiny_compact
    assert main(["models", "list", "--json"]) == 0
    assert [(e["name"], e["builtin"]) for e in _json(capsys)] == [("archivist-starter", True)]  # shipped
    assert main(["models", "import", str(path), "--name", "starter", "--role", "medium"]) == 0
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    (entry,) = [e for e in _json(capsys) if not e["builtin"]]
    for key in ("name", "arch", "num_feat", "num_conv", "scale", "params", "role", "sha256"):
        assert key in entry
    assert entry["name"] == "starter" and entry["arch"] == "compact"
    assert (entry["num_feat"], entry["num_conv"], entry["scale"]) == (8, 2, 1)
    assert entry["role"] == "medium" and len(entry["sha256"]) == 64
    assert entry["params"] == sum(p.numel() for p in tiny_compact[1].parameters())
    assert main(["models", "info", "starter", "--json"]) == 0
    info = _json(capsys)
    assert info["metadata"]["format"] == "archivist-model-1"
    assert main(["models", "list"]) == 0
    assert "starter" in capsys.readouterr().out


def test_import_pth_layouts_and_force(tmp_path, tiny_compact, capsys):
    _, net = tiny_compact
    pth = tmp_path / "Archivist_Test.pth"
    torch.save({"params_ema": net.state_dict(), "params": {k: v * 0 for k, v in net.state_dict().items()}}, pth)
    assert main(["models", "import", str(pth)]) == 0
    capsys.readouterr()
    assert main(["models", "info", "archivist_test", "--json"]) == 0
    info = _json(capsys)
    from engine.models.files import weights_sha256

    assert info["sha256"] == weights_sha256(net.state_dict())  # params_ema was chosen
    assert main(["models", "import", str(pth)]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["models", "import", str(pth), "--force"]) == 0


def test_drunet_gets_denoise_role(tiny_drunet, capsys):
    path, _ = tiny_drunet
    assert main(["models", "import", str(path), "--name", "dn"]) == 0
    capsys.readouterr()
    main(["models", "info", "dn", "--json"])
    info = _json(capsys)
    assert info["arch"] == "drunet" and info["role"] == "denoise"


def test_export_formats(tmp_path, tiny_compact, capsys):
    path, net = tiny_compact
    main(["models", "import", str(path), "--name", "m1"])
    out = tmp_path / "m1.pth"
    assert main(["models", "export", "m1", "--format", "pth", "-o", str(out)]) == 0
    loaded = torch.load(out, weights_only=True)
    assert set(loaded) == {"params", "metadata"} and set(loaded["params"]) == set(net.state_dict())
    assert main(["models", "export", "m1", "--format", "safetensors", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "m1.safetensors").exists()
    onnx = pytest.importorskip("onnxruntime")
    assert main(["models", "export", "m1", "--format", "onnx", "-o", str(tmp_path / "m1.onnx")]) == 0
    sess = onnx.InferenceSession(str(tmp_path / "m1.onnx"))
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        ref = net(x).numpy()
    (got,) = sess.run(None, {"input": x.numpy()})
    assert abs(got - ref).max() < 1e-4


def test_rename_role_remove(tiny_compact, capsys):
    path, _ = tiny_compact
    main(["models", "import", str(path), "--name", "a"])
    assert main(["models", "rename", "a", "b"]) == 0
    assert main(["models", "role", "b", "soft"]) == 0
    capsys.readouterr()
    main(["models", "list", "--json"])
    (entry,) = [e for e in _json(capsys) if not e["builtin"]]
    assert (entry["name"], entry["role"]) == ("b", "soft")
    assert main(["models", "remove", "b"]) == 0
    capsys.readouterr()
    main(["models", "list", "--json"])
    assert [e["name"] for e in _json(capsys) if not e["builtin"]] == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["models", "info", "ghost"], "no model named 'ghost'"),
        (["models", "rename", "ghost", "x"], "no model named 'ghost'"),
        (["models", "import", "/nonexistent/model.pth"], "no such file"),
        (["models", "import", "{model}", "--name", "bad name!"], "invalid model name"),
    ],
)
def test_errors_are_one_line(tiny_compact, capsys, argv, message):
    path, _ = tiny_compact
    argv = [a.replace("{model}", str(path)) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archivist: error: ") and message in err[0]


def test_builtin_models_are_read_only(tmp_path, tiny_compact, monkeypatch, capsys):
    import shutil

    from engine.models import library

    builtin = tmp_path / "builtin"
    builtin.mkdir()
    shutil.copy(tiny_compact[0], builtin / "shipped.safetensors")
    monkeypatch.setattr(library, "BUILTIN_DIR", builtin)
    monkeypatch.setattr(library.Library.__init__, "__defaults__", (None, builtin))
    main(["models", "list", "--json"])
    (entry,) = _json(capsys)
    assert entry["name"] == "shipped" and entry["builtin"] is True
    assert main(["models", "remove", "shipped"]) == 1
    assert "built-in" in capsys.readouterr().err
    assert main(["models", "import", str(tiny_compact[0]), "--name", "shipped", "--force"]) == 1
