"""Model files you can trust: Compact detection that is exact or refuses, finite weights, checked exports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.models import compact
from engine.models.compact import SRVGGNetCompact
from engine.models.files import (
    check_export,
    decode_metadata,
    detect_spec,
    encode_metadata,
    export_onnx,
    load_model,
    model_metadata,
    save_safetensors,
)
from engine.models.library import Library
from engine.models.spec import Hints


def tiny(in_ch: int = 3, out_ch: int = 3, scale: int = 1, act: str = "prelu", seed: int = 0) -> SRVGGNetCompact:
    torch.manual_seed(seed)
    return SRVGGNetCompact(in_ch, out_ch, num_feat=8, num_conv=2, upscale=scale, act_type=act).eval()


def run(net: nn.Module, in_ch: int = 3, h: int = 20, w: int = 24) -> torch.Tensor:
    x = torch.rand(1, in_ch, h, w, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return net(x)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archivist: error: "), err
    assert "Traceback" not in err[0]
    return err[0]


def library_files(home) -> list[str]:
    root = home / "models"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


# -- 1. detection: exact, or a refusal that names the readings ------------------------------------

ALL_COMPACTS = [(i, o, s) for i in (1, 3, 4) for o in (1, 3, 4) for s in (1, 2, 3, 4)]


@pytest.mark.parametrize("in_ch,out_ch,scale", ALL_COMPACTS)
def test_compact_detection_is_exact_or_names_the_readings(in_ch, out_ch, scale):
    """Every grey/RGB/RGBA Compact at ×1–×4: read exactly from the shapes, or refused; never misread."""
    sd = tiny(in_ch, out_ch, scale).state_dict()
    true = compact.spec_for(8, 2, scale, channels=in_ch, out_channels=out_ch)
    if len(compact.readings(out_ch * scale * scale)) == 1:
        assert detect_spec(sd) == true
    else:
        with pytest.raises(ArchivistError) as err:
            detect_spec(sd, path="m.pth")
        msg = str(err.value)
        assert msg.startswith("m.pth: the weights alone do not tell") and "\n" not in msg
        assert f"{in_ch}\u2192{out_ch} channel" in msg and f"\u00d7{scale}" in msg
        assert "archivist models import m.pth --scale" in msg
    # What Archivist writes beside the weights always decides, and so do the flags.
    meta = decode_metadata(encode_metadata(model_metadata(true, sd)))
    assert detect_spec(sd, meta) == true
    assert detect_spec(sd, hints=Hints.given("flag", scale=scale, out_channels=out_ch)) == true


def test_grey_to_rgb_x2_imports_as_itself_and_exports_the_right_onnx_graph(tmp_path, archivist_home, capsys):
    """The issue's case: 1→3 ×2 as {"params": ...} was read as 1→12 ×1 and exported as such, exit 0."""
    ort = pytest.importorskip("onnxruntime")
    net = tiny(1, 3, 2)
    path = tmp_path / "grey2rgb.pth"
    torch.save({"params": net.state_dict()}, path)
    assert main(["models", "import", str(path), "--name", "g"]) == 0
    assert "compact 8/2\u00d72" in capsys.readouterr().out
    entry = Library().get("g")
    assert (entry.in_channels, entry.out_channels, entry.scale) == (1, 3, 2)
    assert torch.equal(run(load_model(entry.path).module, 1), run(net, 1))
    out = tmp_path / "g.onnx"
    assert main(["models", "export", "g", "--format", "onnx", "-o", str(out)]) == 0
    x = torch.rand(1, 1, 20, 24)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    assert got.shape == (1, 3, 40, 48)
    with torch.no_grad():
        np.testing.assert_allclose(got, net(x).numpy(), rtol=0, atol=1e-4)


def test_rgb_to_grey_x4_is_refused_without_metadata_and_imported_with_flags(tmp_path, archivist_home, capsys):
    """3→1 ×4 was imported as 3→4 ×2. Its 16 filters also fit 3→4 ×2: the user must say which."""
    net = tiny(3, 1, 4)
    path = tmp_path / "rgb2grey.pth"
    torch.save({"params": net.state_dict()}, path)
    assert main(["models", "import", str(path), "--name", "c"]) == 1
    line = one_error_line(capsys)
    assert str(path) in line and "3\u21924 channels \u00d72 or 3\u21921 channel \u00d74" in line
    assert "--scale 2|4 --out-channels 4|1" in line
    assert library_files(archivist_home) == []

    assert main(["models", "import", str(path), "--name", "c", "--scale", "3"]) == 1
    assert "--scale 3 does not fit the weights" in one_error_line(capsys)
    assert main(["models", "import", str(path), "--name", "c", "--scale", "4", "--act", "relu"]) == 1
    assert "--act relu does not fit the weights: they hold PReLU slopes" in one_error_line(capsys)
    assert library_files(archivist_home) == []

    assert main(["models", "import", str(path), "--name", "c", "--scale", "4", "--out-channels", "1"]) == 0
    loaded = load_model(Library().get("c").path)  # the library file says it from now on
    assert (loaded.spec.out_channels, loaded.spec.scale) == (1, 4)
    assert torch.equal(run(loaded.module), run(net))


def test_flags_that_contradict_the_files_metadata_are_refused(tmp_path, capsys):
    net = tiny(3, 4, 2)
    path = tmp_path / "rgba.safetensors"
    save_safetensors(path, net.state_dict(), compact.spec_for(8, 2, 2, channels=3, out_channels=4))
    assert main(["models", "import", str(path), "--scale", "4", "--out-channels", "1"]) == 1
    assert "--scale 4 contradicts metadata scale 2" in one_error_line(capsys)
    assert main(["models", "import", str(path)]) == 0  # the metadata alone decides


def test_flags_for_a_drunet_are_refused(tiny_drunet, capsys):
    assert main(["models", "import", str(tiny_drunet[0]), "--act", "relu"]) == 1
    assert "is a drunet network: --act apply only to Compact" in one_error_line(capsys)


class WidthBaked(nn.Module):
    """A network whose traced graph keeps the example's width as a constant: ONNX gets it wrong."""

    def forward(self, x):
        return x * float(x.shape[-1])


def test_an_onnx_export_that_does_not_reproduce_the_network_is_not_written(tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "baked.onnx"
    with pytest.raises(ArchivistError, match=r"baked.onnx: export check failed, nothing written: the ONNX graph's"):
        export_onnx(out, WidthBaked(), compact.spec_for(8, 2, 1))
    assert list(tmp_path.iterdir()) == []


def test_check_export_compares_the_written_file_with_the_source_network(tmp_path):
    a, b = tiny(seed=1), tiny(seed=2)
    spec = compact.spec_for(8, 2, 1)
    path = tmp_path / "a.safetensors"
    save_safetensors(path, a.state_dict(), spec)
    check_export(path, "safetensors", a, spec, tmp_path / "shown.safetensors")  # the same network: silent
    with pytest.raises(ArchivistError, match=r"shown.safetensors: export check failed.*other values"):
        check_export(path, "safetensors", b, spec, tmp_path / "shown.safetensors")
    relu = compact.spec_for(8, 2, 1, act_type="relu")
    with pytest.raises(ArchivistError, match=r"reads back as compact 8/2\u00d71"):
        check_export(path, "safetensors", a, relu, tmp_path / "shown.safetensors")


# -- 2. non-finite weights and outputs ---------------------------------------------------------

def _poisoned(tmp_path, value: float, fmt: str):
    net = tiny()
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    sd["body.2.weight"][0, 0, 1, 1] = value
    path = tmp_path / f"broken.{fmt}"
    if fmt == "pth":
        torch.save({"params": sd}, path)
    else:
        save_safetensors(path, sd, compact.spec_for(8, 2, 1))
    return path


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_non_finite_weights_are_refused_at_import_and_at_load(tmp_path, archivist_home, capsys, rgb_image, value,
                                                             fmt):
    from engine.inference.imageio import write_picture

    path = _poisoned(tmp_path, value, fmt)
    assert main(["models", "import", str(path)]) == 1
    line = one_error_line(capsys)
    assert str(path) in line and "weight body.2.weight holds 1 non-finite value" in line
    assert library_files(archivist_home) == []
    image = tmp_path / "in.png"
    write_picture(image, rgb_image)
    out = tmp_path / "out.png"
    assert main(["restore", str(image), "-o", str(out), "-m", str(path), "--device", "cpu"]) == 1
    assert "body.2.weight" in one_error_line(capsys)
    assert not out.exists()
    with pytest.raises(ArchivistError, match="body.2.weight"):
        load_model(path)


def test_a_restore_whose_output_becomes_non_finite_fails_and_writes_nothing(tmp_path, capsys, rgb_image):
    """Finite weights that overflow float32 on real input: once a black PNG and exit 0."""
    from engine.inference.imageio import write_picture
    from tests.conftest import write_overflowing_compact

    path = write_overflowing_compact(tmp_path / "overflow.safetensors")
    load_model(path)  # the weights themselves are finite: the file is accepted
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(2):
        write_picture(folder / f"f{i}.png", rgb_image)
    out = tmp_path / "restored"
    assert main(["restore", str(folder), "-o", str(out), "-m", str(path), "--device", "cpu"]) == 1
    line = one_error_line(capsys)
    assert "model 'overflow' (stage 1 of the chain) gave non-finite values" in line
    assert "nothing was written for it" in line
    assert not out.exists() or list(out.iterdir()) == []


# -- 3. activations: carried by every export, or given with --act --------------------------------

@pytest.mark.parametrize("act", ["relu", "leakyrelu"])
def test_bare_relu_or_leakyrelu_weights_import_with_act(tmp_path, archivist_home, capsys, act):
    net = tiny(act=act)
    path = tmp_path / f"{act}.pth"
    torch.save(net.state_dict(), path)
    assert main(["models", "import", str(path), "--name", "m"]) == 1
    line = one_error_line(capsys)
    assert "activation relu or leakyrelu" in line and "--act relu|leakyrelu" in line
    assert main(["models", "import", str(path), "--name", "m", "--act", act]) == 0
    loaded = load_model(Library().get("m").path)
    assert loaded.spec.hyper["act_type"] == act
    assert torch.equal(run(loaded.module), run(net))
    assert main(["models", "import", str(path), "--name", "p", "--act", "prelu"]) == 1
    assert "--act prelu does not fit the weights: they hold no PReLU slopes" in one_error_line(capsys)


@pytest.mark.parametrize("act", ["relu", "leakyrelu"])
def test_a_relu_pth_export_imports_again(tmp_path, archivist_home, capsys, act):
    """The issue's case: a LeakyReLU model exported as .pth could not be imported again."""
    net = tiny(act=act)
    src = tmp_path / "src.safetensors"
    save_safetensors(src, net.state_dict(), compact.spec_for(8, 2, 1, act_type=act), role="soft")
    assert main(["models", "import", str(src), "--name", "orig"]) == 0
    out = tmp_path / "orig.pth"
    assert main(["models", "export", "orig", "--format", "pth", "-o", str(out)]) == 0
    assert main(["models", "import", str(out), "--name", "again"]) == 0
    entry = Library().get("again")
    assert entry.role == "soft" and entry.hyper["act_type"] == act
    assert torch.equal(run(load_model(entry.path).module), run(net))
