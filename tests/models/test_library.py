"""The model library: import, list, get, rename, roles, remove, export, names, --force, built-ins."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import ArchivistError
from engine.models import compact
from engine.models.files import load_model, save_safetensors, weights_sha256
from engine.models.library import Library, check_name


def make_net(seed: int = 0, num_feat: int = 8):
    torch.manual_seed(seed)
    return compact.build(compact.spec_for(num_feat, 2, 1)).eval()


def out(net):
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return net(x)


@pytest.fixture
def pth(tmp_path):
    """A Real-ESRGAN-layout .pth of a tiny Compact, and its network."""
    net = make_net(0)
    path = tmp_path / "Archivist_Tiny.pth"
    torch.save({"params_ema": net.state_dict()}, path)
    return path, net


@pytest.fixture
def builtin_dir(tmp_path):
    """A built-in folder holding one read-only model, `starter`."""
    d = tmp_path / "builtin"
    d.mkdir()
    net = make_net(9)
    save_safetensors(d / "starter.safetensors", net.state_dict(), compact.spec_for(8, 2, 1), role="medium")
    return d


@pytest.fixture
def lib(tmp_path, builtin_dir):
    return Library(tmp_path / "models", builtin_dir=builtin_dir)


def test_default_root_is_in_archivist_home(archivist_home):
    lib = Library(builtin_dir=None)
    assert lib.root == archivist_home / "models" and lib.root.is_dir()
    assert (lib.root.stat().st_mode & 0o777) == 0o700


def test_import_list_get(lib, pth):
    path, net = pth
    entry = lib.import_file(path, role="rough")
    assert entry.name == "archivist_tiny"  # from the file name, lower-cased
    assert entry.path == lib.root / "archivist_tiny.safetensors"
    assert (entry.arch, entry.num_feat, entry.num_conv, entry.scale, entry.role) == ("compact", 8, 2, 1, "rough")
    assert entry.params == sum(p.numel() for p in net.parameters())
    assert entry.sha256 == weights_sha256(net.state_dict())
    assert entry.source == str(path.resolve()) and not entry.builtin
    assert torch.equal(out(load_model(entry.path).module), out(net))

    names = [(e.name, e.builtin) for e in lib.list()]
    assert names == [("starter", True), ("archivist_tiny", False)]
    d = lib.get("archivist_tiny").to_dict()
    assert {"name", "arch", "num_feat", "num_conv", "scale", "params", "role", "sha256"} <= set(d)
    assert isinstance(d["path"], str) and "metadata" not in d
    with pytest.raises(ArchivistError, match=r"no model named 'nope' in the library; models: starter, archivist_tiny"):
        lib.get("nope")


def test_import_keeps_training_metadata_and_default_roles(lib, tmp_path):
    net = make_net(1)
    src = tmp_path / "run.safetensors"
    save_safetensors(src, net.state_dict(), compact.spec_for(8, 2, 1), role="soft", iterations=5000,
                     profiles={"heavy": 1.0}, profile_hashes={"heavy": "f" * 16}, source="runs/r1")
    entry = lib.import_file(src, name="r1")
    assert (entry.role, entry.iterations, entry.source) == ("soft", 5000, "runs/r1")
    assert entry.profiles == {"heavy": 1.0} and entry.metadata["profile_hashes"] == {"heavy": "f" * 16}
    torch.save(net.state_dict(), tmp_path / "bare.pth")
    assert lib.import_file(tmp_path / "bare.pth", name="bare").role == "custom"


@pytest.mark.parametrize("name", ["", "-lead", ".hidden", "a/b", "a b", "x" * 65, "ünï", "../up"])
def test_bad_names_are_refused(lib, pth, name):
    with pytest.raises(ArchivistError, match="invalid model name"):
        lib.import_file(pth[0], name=name)
    assert not lib.root.exists() or not any(lib.root.iterdir())


@pytest.mark.parametrize("name", ["a", "Medium_v2", "archivist-medium", "m.1", "x" * 64, "9lives"])
def test_good_names(name):
    assert check_name(name) == name


def test_bad_role_is_refused(lib, pth):
    with pytest.raises(ArchivistError, match=r"invalid role 'sharp': allowed are antilines, rough, medium"):
        lib.import_file(pth[0], name="m", role="sharp")


def test_force_semantics(lib, pth, tmp_path):
    path, net = pth
    lib.import_file(path, name="m", role="medium")
    other = make_net(5)
    torch.save({"params": other.state_dict()}, tmp_path / "other.pth")
    with pytest.raises(ArchivistError, match=r"a model named 'm' exists already; use force to replace it or name$"):
        lib.import_file(tmp_path / "other.pth", name="m")
    assert torch.equal(out(load_model(lib.get("m").path).module), out(net))  # untouched
    replaced = lib.import_file(tmp_path / "other.pth", name="m", force=True, role="soft")
    assert replaced.role == "soft" and replaced.sha256 == weights_sha256(other.state_dict())
    assert torch.equal(out(load_model(replaced.path).module), out(other))
    assert [e.name for e in lib.list() if not e.builtin] == ["m"]
    assert not [p for p in lib.root.iterdir() if p.name.startswith(".")]  # no temp files left


def test_rename_and_set_role(lib, pth):
    path, net = pth
    lib.import_file(path, name="old", role="medium")
    lib.import_file(path, name="taken")
    entry = lib.rename("old", "new")
    assert entry.name == "new" and entry.role == "medium" and entry.metadata["name"] == "new"
    assert not (lib.root / "old.safetensors").exists()
    assert torch.equal(out(load_model(entry.path).module), out(net))
    with pytest.raises(ArchivistError, match="exists already"):
        lib.rename("new", "taken")
    with pytest.raises(ArchivistError, match="invalid model name"):
        lib.rename("new", "bad name")
    with pytest.raises(ArchivistError, match="no model named 'old'"):
        lib.rename("old", "x")
    assert lib.set_role("new", "antilines").role == "antilines"
    assert lib.get("new").role == "antilines"
    with pytest.raises(ArchivistError, match="invalid role"):
        lib.set_role("new", "sharp")
    assert lib.get("new").sha256 == weights_sha256(net.state_dict())


def test_remove(lib, pth):
    lib.import_file(pth[0], name="m")
    lib.remove("m")
    assert lib.find("m") is None and not (lib.root / "m.safetensors").exists()
    with pytest.raises(ArchivistError, match="no model named 'm'"):
        lib.remove("m")


def test_builtins_are_read_only(lib, pth, builtin_dir):
    before = (builtin_dir / "starter.safetensors").read_bytes()
    starter = lib.get("starter")
    assert starter.builtin and starter.role == "medium"
    with pytest.raises(ArchivistError, match="built-in model and cannot be replaced"):
        lib.import_file(pth[0], name="starter")
    with pytest.raises(ArchivistError, match="built-in model and cannot be replaced"):
        lib.import_file(pth[0], name="starter", force=True)
    with pytest.raises(ArchivistError, match="built-in model and cannot be renamed"):
        lib.rename("starter", "mine")
    with pytest.raises(ArchivistError, match="built-in model and cannot be changed"):
        lib.set_role("starter", "soft")
    with pytest.raises(ArchivistError, match="built-in model and cannot be removed"):
        lib.remove("starter")
    lib.import_file(pth[0], name="mine")
    with pytest.raises(ArchivistError, match="built-in model and cannot be replaced"):
        lib.rename("mine", "starter")
    assert (builtin_dir / "starter.safetensors").read_bytes() == before
    # Built-ins can be exported and resolved like any model.
    assert lib.resolve("starter") == builtin_dir / "starter.safetensors"


def test_resolve_names_and_paths(lib, pth):
    lib.import_file(pth[0], name="m")
    assert lib.resolve("m") == lib.root / "m.safetensors"
    assert lib.resolve(str(pth[0])) == pth[0]
    with pytest.raises(ArchivistError, match="no such model file"):
        lib.resolve("/nowhere/x.pth")
    with pytest.raises(ArchivistError, match="no model named 'zzz'"):
        lib.resolve("zzz")


def test_export_pth_safetensors_onnx(lib, pth, tmp_path):
    path, net = pth
    lib.import_file(path, name="m", role="medium")
    outdir = tmp_path / "out"
    outdir.mkdir()

    p = lib.export("m", "pth", outdir / "m.pth")
    raw = torch.load(p, weights_only=True)
    assert list(raw) == ["params", "metadata"]  # the Real-ESRGAN layout, plus what the weights cannot tell
    assert all(isinstance(v, str) for v in raw["metadata"].values()) and raw["metadata"]["act_type"] == "prelu"
    assert list(raw["params"]) == list(net.state_dict())
    assert all(torch.equal(raw["params"][k], v) for k, v in net.state_dict().items())

    s = lib.export("m", "safetensors", outdir)  # a folder: NAME.safetensors inside
    assert s == outdir / "m.safetensors" and s.read_bytes() == (lib.root / "m.safetensors").read_bytes()

    o = lib.export("m", "onnx", outdir / "m.onnx")
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(o), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        want = net(x).numpy()
    np.testing.assert_allclose(sess.run(None, {"input": x.numpy()})[0], want, rtol=0, atol=1e-4)

    # Exported files import back to the same weights.
    for f, name in ((p, "from-pth"), (s, "from-st")):
        assert lib.import_file(f, name=name).sha256 == weights_sha256(net.state_dict())
    assert sorted(x.name for x in outdir.iterdir()) == ["m.onnx", "m.pth", "m.safetensors"]

    with pytest.raises(ArchivistError, match="invalid export format 'tflite'"):
        lib.export("m", "tflite", outdir / "m.tflite")
    with pytest.raises(ArchivistError, match="output folder does not exist"):
        lib.export("m", "pth", tmp_path / "missing" / "m.pth")
    with pytest.raises(ArchivistError, match="no model named 'q'"):
        lib.export("q", "pth", outdir / "q.pth")


def test_listing_reads_headers_only_and_ignores_hidden_files(lib, pth):
    lib.import_file(pth[0], name="m")
    (lib.root / ".downloads").mkdir()
    (lib.root / ".downloads" / "x.part").write_bytes(b"partial")
    (lib.root / ".m.safetensors.abc.part").write_bytes(b"temp")
    (lib.root / "notes.txt").write_text("hello")
    assert [e.name for e in lib.list() if not e.builtin] == ["m"]


def test_broken_library_file_is_named(lib):
    lib.root.mkdir(parents=True, exist_ok=True)
    (lib.root / "broken.safetensors").write_bytes(b"\x01")
    with pytest.raises(ArchivistError, match=r"broken\.safetensors: unreadable model file in the library"):
        lib.list()


def test_names_that_look_like_json_stay_names(tmp_path):
    """A model named "123" (or "null") keeps its name and source as text in the metadata."""
    lib = Library(tmp_path / "models", builtin_dir=None)
    path = tmp_path / "m.safetensors"
    save_safetensors(path, make_net().state_dict(), compact.spec_for(8, 2, 1), role="custom", source="null")
    entry = lib.import_file(path, name="123")
    assert entry.name == "123" and entry.source == "null" and isinstance(entry.metadata["sha256"], str)
    assert lib.find("123").metadata.get("name", "123") == "123"
