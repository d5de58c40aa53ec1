"""`archivist models interpolate`: a new model blended weight by weight from two of the same network."""

from __future__ import annotations

import pytest
import torch

from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.models import compact
from engine.models.files import load_model, save_safetensors
from engine.models.library import Library

SPEC = compact.spec_for(8, 2, 1)
MIX_A = {"name": "default", "hash": "a" * 64, "profiles": {"heavy": {"weight": 1.0, "hash": "b" * 64}}}
MIX_B = {"name": "starter-v2", "hash": "c" * 64, "profiles": {"subtle": {"weight": 1.0, "hash": "d" * 64}}}


def _net(seed: int, spec=SPEC):
    torch.manual_seed(seed)
    return compact.build(spec).eval()


@pytest.fixture
def lib(archivist_home):
    """A library holding `parent` and `child` (fine-tuned from parent, by its metadata) and `stranger`."""
    lib = Library(builtin_dir=None)
    parent, child = _net(1), _net(2)
    meta = save_safetensors(lib.root / "parent.safetensors", parent.state_dict(), SPEC, role="medium",
                            name="parent", profiles=MIX_A)
    save_safetensors(lib.root / "child.safetensors", child.state_dict(), SPEC, role="soft", name="child",
                     profiles=MIX_B, pretrained={"model": "parent", "sha256": meta["sha256"]})
    save_safetensors(lib.root / "stranger.safetensors", _net(3).state_dict(), SPEC, role="custom", name="stranger")
    relu = compact.spec_for(8, 2, 1, "relu")  # the same sizes, another activation
    save_safetensors(lib.root / "relu.safetensors", _net(5, relu).state_dict(), relu, role="custom", name="relu")
    wide = compact.spec_for(16, 2, 1)
    save_safetensors(lib.root / "wide.safetensors", _net(4, wide).state_dict(), wide, role="custom", name="wide")
    return lib


def _weights(lib: Library, name: str) -> dict[str, torch.Tensor]:
    return load_model(lib.get(name).path).module.state_dict()


def test_every_weight_is_the_weighted_sum_and_the_ends_are_the_parents(lib, capsys):
    assert main(["models", "interpolate", "parent", "child", "--weight", "0.25", "--name", "blend"]) == 0
    out = capsys.readouterr().out
    assert "wrote blend: parent x 0.75 + child x 0.25" in out and "note:" not in out
    a, b, blend = _weights(lib, "parent"), _weights(lib, "child"), _weights(lib, "blend")
    for key in a:
        torch.testing.assert_close(blend[key], 0.75 * a[key] + 0.25 * b[key], rtol=0, atol=1e-6)
    entry = lib.get("blend")
    assert entry.role == "soft"  # the second model's, unless given
    assert entry.metadata["interpolated"]["a"] == {"name": "parent", "sha256": lib.get("parent").sha256,
                                                   "weight": 0.75}
    assert entry.metadata["interpolated"]["b"]["weight"] == 0.25
    assert entry.profiles == [MIX_A, MIX_B]  # both training mixes, listed by `models info`
    assert main(["models", "info", "blend"]) == 0
    assert "mix default" in capsys.readouterr().out

    for weight, same in (("0", "parent"), ("1", "child")):
        assert main(["models", "interpolate", "parent", "child", "--weight", weight, "--name", f"end{weight}",
                     "--role", "rough"]) == 0
        ends, parent = _weights(lib, f"end{weight}"), _weights(lib, same)
        assert all(torch.equal(ends[k], parent[k]) for k in parent)
        assert lib.get(f"end{weight}").role == "rough"


@pytest.mark.parametrize(("argv", "says"), [
    (["parent", "child", "--weight", "1.5", "--name", "x"], "--weight: 1.5 out of range: allowed a number 0 to 1"),
    (["parent", "child", "--weight", "nan", "--name", "x"], "--weight: nan out of range"),
    (["parent", "wide", "--weight", "0.5", "--name", "x"], "only two models of the same network"),
    (["parent", "relu", "--weight", "0.5", "--name", "x"],
     "cannot interpolate 'parent' (act_type prelu) and 'relu' (act_type relu): only two models of the same network"),
    (["parent", "missing", "--weight", "0.5", "--name", "x"], "no model named 'missing'"),
    (["parent", "child", "--weight", "0.5", "--name", "child"], "a model named 'child' exists already"),
    (["parent", "child", "--weight", "0.5", "--name", "bad name"], "bad name"),
])
def test_refusals_are_one_line_and_write_nothing(lib, capsys, argv, says):
    before = sorted(p.name for p in lib.root.iterdir())
    child = lib.get("child").sha256
    assert main(["models", "interpolate", *argv]) != 0
    err = capsys.readouterr().err.strip()
    assert says in err and err.startswith("archivist: error:") and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in lib.root.iterdir()) == before
    assert lib.get("child").sha256 == child


def test_force_replaces_and_strangers_get_a_note(lib, capsys):
    assert main(["models", "interpolate", "parent", "stranger", "--weight", "0.5", "--name", "mixed"]) == 0
    assert "note: parent and stranger are not related" in capsys.readouterr().out
    # A model with itself, or with a blend it is a parent of, is related: no note.
    for a, b in (("stranger", "stranger"), ("mixed", "stranger"), ("mixed", "parent")):
        assert main(["models", "interpolate", a, b, "--weight", "0.5", "--name", f"{a}-{b}"]) == 0
        assert "note:" not in capsys.readouterr().out, (a, b)
    assert main(["models", "info", "mixed"]) == 0
    assert f"interpolated  parent x 0.5  {lib.get('parent').sha256[:12]}" in capsys.readouterr().out
    assert main(["models", "interpolate", "parent", "stranger", "--weight", "-0", "--name", "zero"]) == 0
    assert "parent x 1 + stranger x 0," in capsys.readouterr().out
    first = lib.get("mixed").sha256
    assert main(["models", "interpolate", "parent", "stranger", "--weight", "0.9", "--name", "mixed",
                 "--force"]) == 0
    assert lib.get("mixed").sha256 != first


def test_the_engine_names_the_key(lib):
    with pytest.raises(ArchivistError, match=r"weight = 2 invalid: allowed a number from 0"):
        lib.interpolate("parent", "child", 2, "x")
    with pytest.raises(ArchivistError, match="is a built-in model"):
        Library(lib.root, builtin_dir=lib.root).interpolate("parent", "child", 0.5, "stranger")


def test_models_import_keeps_the_lineage(lib, capsys, tmp_path):
    """A model moved to another library (``models import`` on the machine it is copied to) keeps its
    parents: `pretrained` and `interpolated`. It lost them, and blending the copies then said that a
    fine-tune and the model it came from were not related."""
    assert main(["models", "interpolate", "parent", "child", "--weight", "0.5", "--name", "blend"]) == 0
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("parent", "child", "blend"):
        (moved / f"{name}.safetensors").write_bytes(lib.get(name).path.read_bytes())
    capsys.readouterr()
    for name in ("parent", "child", "blend"):
        assert main(["models", "import", str(moved / f"{name}.safetensors"), "--name", f"copy-{name}"]) == 0
    child, blend = lib.get("copy-child"), lib.get("copy-blend")
    assert child.metadata["pretrained"] == lib.get("child").metadata["pretrained"]
    assert blend.metadata["interpolated"] == lib.get("blend").metadata["interpolated"]
    capsys.readouterr()
    assert main(["models", "interpolate", "copy-parent", "copy-child", "--weight", "0.5", "--name", "again"]) == 0
    assert "note:" not in capsys.readouterr().out
    assert main(["models", "info", "copy-blend"]) == 0
    assert f"interpolated  parent x 0.5  {lib.get('parent').sha256[:12]}" in capsys.readouterr().out


def test_a_grandchild_is_related_and_info_names_the_parent(lib, capsys):
    """A fine-tune of a fine-tune records only its own parent; the generation before is followed
    through the library (the starter recipe's stage 2 against v1 got a false 'not related' note)."""
    child = lib.get("child")
    save_safetensors(lib.root / "grandchild.safetensors", _net(6).state_dict(), SPEC, role="soft", name="grandchild",
                     pretrained={"model": "child", "sha256": child.sha256})
    capsys.readouterr()
    assert main(["models", "interpolate", "parent", "grandchild", "--weight", "0.5", "--name", "g"]) == 0
    assert "note:" not in capsys.readouterr().out
    assert main(["models", "interpolate", "stranger", "grandchild", "--weight", "0.5", "--name", "h"]) == 0
    assert "note: stranger and grandchild are not related" in capsys.readouterr().out
    assert main(["models", "info", "grandchild"]) == 0
    assert f"pretrained    child  {child.sha256[:12]}" in capsys.readouterr().out
