"""Reading model files: Real-ESRGAN layouts, safetensors metadata, refusing code, clear errors."""

from __future__ import annotations

import os
import pickle
import zipfile

import pytest
import torch

from engine.errors import ArchivistError
from engine.models import compact
from engine.models.discriminator import UNetDiscriminatorSN
from engine.models.files import load_model, save_safetensors, weights_sha256
from engine.models.library import Library


def tiny(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return compact.build(compact.spec_for(8, 2, 1)).eval()


def output(net: torch.nn.Module) -> torch.Tensor:
    x = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return net(x)


def prefixed(sd: dict, prefix: str = "module.") -> dict:
    return {prefix + k: v for k, v in sd.items()}


@pytest.fixture
def nets():
    return tiny(1), tiny(2)


@pytest.mark.parametrize(
    "layout",
    ["params_ema_and_params", "params_only", "bare", "bare_module_prefix", "params_ema_module_prefix"],
)
def test_real_esrgan_layouts_load_with_identical_output(tmp_path, nets, layout):
    ema, plain = nets
    sd_ema, sd_plain = ema.state_dict(), plain.state_dict()
    obj, want = {
        "params_ema_and_params": ({"params": sd_plain, "params_ema": sd_ema}, ema),
        "params_only": ({"params": sd_plain}, plain),
        "bare": (sd_ema, ema),
        "bare_module_prefix": (prefixed(sd_ema), ema),
        "params_ema_module_prefix": ({"params": prefixed(sd_plain), "params_ema": prefixed(sd_ema)}, ema),
    }[layout]
    path = tmp_path / "model.pth"
    torch.save(obj, path)
    loaded = load_model(path)
    assert loaded.spec.describe() == "compact 8/2×1"
    assert torch.equal(output(loaded.module), output(want))
    assert loaded.sha256 == weights_sha256(want.state_dict())


def test_safetensors_round_trip_with_metadata(tmp_path, nets):
    net, _ = nets
    spec = compact.spec_for(8, 2, 1)
    path = tmp_path / "m.safetensors"
    profiles = {"subtle": 0.1, "normal": 0.3, "heavy": 0.6}
    hashes = {"subtle": "a" * 16, "normal": "b" * 16, "heavy": "c" * 16}
    save_safetensors(path, net.state_dict(), spec, role="medium", iterations=12345, source="run-7",
                     profiles=profiles, profile_hashes=hashes)
    loaded = load_model(path)
    meta = loaded.metadata
    assert (meta["arch"], meta["num_feat"], meta["num_conv"], meta["scale"]) == ("compact", 8, 2, 1)
    assert (meta["role"], meta["iterations"], meta["source"]) == ("medium", 12345, "run-7")
    assert meta["profiles"] == profiles and meta["profile_hashes"] == hashes
    assert meta["params"] == sum(p.numel() for p in net.parameters())
    assert meta["sha256"] == loaded.sha256 == weights_sha256(net.state_dict())
    assert loaded.spec == spec
    assert torch.equal(output(loaded.module), output(net))
    # The weights hash is the same whatever the file format.
    torch.save({"params": net.state_dict()}, tmp_path / "m.pth")
    assert load_model(tmp_path / "m.pth").sha256 == loaded.sha256


class Payload:
    """A pickle that runs code when loaded the ordinary way: it creates (or touches) a marker file."""

    def __init__(self, marker, how: str = "open"):
        self.marker, self.how = str(marker), how

    def __reduce__(self):
        if self.how == "system":
            return (os.system, (f"touch {self.marker}",))
        return (open, (self.marker, "w"))


def test_the_payload_is_live(tmp_path):
    """Without weights_only the payload does run: the refusal below is the only thing in the way."""
    marker = tmp_path / "live-marker"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("how", ["open", "system"])
@pytest.mark.parametrize("container", ["torch_zip", "legacy_pickle", "inside_params"])
def test_code_carrying_pickle_is_refused_and_never_runs(tmp_path, nets, how, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    if container == "torch_zip":
        torch.save(Payload(marker, how), path)
    elif container == "legacy_pickle":
        with open(path, "wb") as f:
            pickle.dump(Payload(marker, how), f)
    else:  # good-looking weights with the payload beside them
        torch.save({"params": nets[0].state_dict(), "meta": Payload(marker, how)}, path)
    with pytest.raises(ArchivistError) as err:
        load_model(path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    assert "refused" in msg and "never code" in msg and "weights_only" not in msg
    assert not marker.exists()
    with pytest.raises(ArchivistError):
        Library(tmp_path / "lib", builtin_dir=None).import_file(path, name="evil")
    assert not marker.exists()
    assert not (tmp_path / "lib" / "evil.safetensors").exists()


def _bad_files(tmp_path, nets) -> dict:
    net = nets[0]
    good_pth = tmp_path / "good.pth"
    torch.save({"params": net.state_dict()}, good_pth)
    good_st = tmp_path / "good.safetensors"
    save_safetensors(good_st, net.state_dict(), compact.spec_for(8, 2, 1))
    files = {}

    def put(name: str, data: bytes, expect: str):
        p = tmp_path / name
        p.write_bytes(data)
        files[name] = (p, expect)

    pth, st = good_pth.read_bytes(), good_st.read_bytes()
    put("truncated.pth", pth[: len(pth) // 2], "truncated or corrupt")
    put("truncated.safetensors", st[: len(st) // 2], "truncated or corrupt")
    put("header-only.safetensors", st[:5], "truncated or corrupt")
    put("empty.pth", b"", "empty file")
    put("empty.safetensors", b"", "empty file")
    put("notes.pth", b"these are my notes, not a model\n" * 20, "not a readable PyTorch model file")
    put("image.safetensors", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not a valid safetensors file")
    torch.save({"foo.weight": torch.zeros(4, 4), "bar.bias": torch.zeros(4)}, tmp_path / "random.pth")
    files["random.pth"] = (tmp_path / "random.pth", "unknown architecture")
    torch.save(UNetDiscriminatorSN(num_feat=8).state_dict(), tmp_path / "net_d.pth")
    files["net_d.pth"] = (tmp_path / "net_d.pth", "discriminator")
    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    files["list.pth"] = (tmp_path / "list.pth", "not a model file")
    torch.save({"params": {"epoch": 3}}, tmp_path / "notensors.pth")
    files["notensors.pth"] = (tmp_path / "notensors.pth", "no tensors")
    misfit = dict(net.state_dict())
    misfit["body.2.weight"] = torch.zeros(16, 8, 3, 3)
    torch.save(misfit, tmp_path / "misfit.pth")
    files["misfit.pth"] = (tmp_path / "misfit.pth", "do not fit")
    relu = compact.build(compact.spec_for(8, 2, 1, act_type="relu")).state_dict()
    torch.save(relu, tmp_path / "relu.pth")
    files["relu.pth"] = (tmp_path / "relu.pth", "without PReLU")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    files["model.onnx"] = (tmp_path / "model.onnx", "ONNX is an export format only")
    files["missing.pth"] = (tmp_path / "missing.pth", "no such file")
    return files


BAD = ["truncated.pth", "truncated.safetensors", "header-only.safetensors", "empty.pth", "empty.safetensors",
       "notes.pth", "image.safetensors", "random.pth", "net_d.pth", "list.pth", "notensors.pth", "misfit.pth",
       "relu.pth", "model.onnx", "missing.pth"]


@pytest.mark.parametrize("name", BAD)
def test_bad_file_gives_one_error_naming_the_file(tmp_path, nets, name):
    path, expect = _bad_files(tmp_path, nets)[name]
    with pytest.raises(ArchivistError) as err:
        load_model(path)
    msg = str(err.value)
    assert msg.startswith(str(path)), msg
    assert expect in msg, msg
    assert "\n" not in msg
    lib = Library(tmp_path / "lib", builtin_dir=None)
    with pytest.raises(ArchivistError) as err:
        lib.import_file(path, name="x")
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert lib.list() == [] and (not lib.root.exists() or not any(lib.root.iterdir()))


def test_truncated_pth_is_a_zip_error_not_a_crash(tmp_path, nets):
    """The truncation cuts the zip's central directory: the reader must say so, not raise BadZipFile."""
    path = tmp_path / "cut.pth"
    torch.save({"params": nets[0].state_dict()}, path)
    data = path.read_bytes()
    path.write_bytes(data[:-30])
    assert not zipfile.is_zipfile(path)
    with pytest.raises(ArchivistError, match="truncated or corrupt"):
        load_model(path)


def test_legacy_non_zip_pth_still_loads(tmp_path, nets):
    """The declaration check reads PyTorch's pre-1.6 layout too, and lets an honest file through."""
    path = tmp_path / "old.pth"
    torch.save({"params": nets[0].state_dict()}, path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    loaded = load_model(path)
    assert torch.equal(output(loaded.module), output(nets[0]))
