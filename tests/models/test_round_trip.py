"""Every architecture and activation Archivist supports, through every export format and back.

A model goes into the library, out as ``.pth``, ``.safetensors`` and ONNX, and (for the formats
Archivist reads) back into the library; the network that comes back must be the same network:
same spec, same weights, the same output on the same input. ONNX, which Archivist writes but does
not read, is run with onnxruntime at two sizes and must carry the metadata.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models import compact, drunet
from engine.models.files import load_model, save_safetensors, weights_sha256
from engine.models.library import EXPORT_FORMATS, Library

NETWORKS = {
    # name: spec; the ambiguous ones (3→1 ×4, 4→4 ×1) come back only because the metadata travels.
    "compact-prelu": compact.spec_for(8, 2, 1, "prelu"),
    "compact-relu": compact.spec_for(8, 2, 1, "relu"),
    "compact-leakyrelu": compact.spec_for(8, 2, 1, "leakyrelu"),
    "compact-grey2rgb-x2-relu": compact.spec_for(8, 2, 2, "relu", channels=1, out_channels=3),
    "compact-rgb2grey-x4-prelu": compact.spec_for(6, 1, 4, "prelu", channels=3, out_channels=1),
    "compact-rgba-x1-leakyrelu": compact.spec_for(8, 3, 1, "leakyrelu", channels=4),
    "compact-rgb-x3-prelu": compact.spec_for(8, 2, 3, "prelu"),
    "drunet": drunet.spec_for((8, 16, 32, 64), nb=1),
}


def make(spec):
    torch.manual_seed(7)
    net = (compact.build(spec) if spec.arch == "compact" else drunet.build(spec)).eval()
    with torch.no_grad():  # PReLU slopes start equal; make them differ so a swapped layer shows
        for name, p in net.named_parameters():
            if p.dim() == 1 and name.endswith("weight"):
                p.copy_(torch.rand(p.shape) * 0.5)
    return net


def inputs(spec, sizes):
    g = torch.Generator().manual_seed(11)
    ch = spec.in_channels + (1 if spec.takes_sigma else 0)
    return [torch.rand(1, ch, h, w, generator=g) for h, w in sizes]


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
@pytest.mark.parametrize("name", list(NETWORKS))
def test_export_and_back_gives_the_same_network(tmp_path, name, fmt):
    spec = NETWORKS[name]
    net = make(spec)
    lib = Library(tmp_path / "lib", builtin_dir=None)
    src = tmp_path / "src.safetensors"
    save_safetensors(src, net.state_dict(), spec, role="custom")
    lib.import_file(src, name="orig", role="medium")
    out = lib.export("orig", fmt, tmp_path / f"exported.{fmt}")
    sizes = [(24, 40), (32, 16)]
    xs = inputs(spec, sizes)
    with torch.no_grad():
        wants = [net(x) for x in xs]

    if fmt == "onnx":
        ort = pytest.importorskip("onnxruntime")
        import onnx

        props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert props["arch"] == spec.arch and int(props["scale"]) == spec.scale
        assert int(props["out_channels"]) == spec.out_channels
        if spec.arch == "compact":
            assert props["act_type"] == spec.hyper["act_type"]
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        for x, want in zip(xs, wants):
            got = sess.run(None, {"input": x.numpy()})[0]
            assert got.shape == tuple(want.shape)
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)
        return

    back = lib.import_file(out, name="back")
    assert back.role == "medium"
    loaded = load_model(back.path)
    assert loaded.spec == spec
    assert loaded.sha256 == weights_sha256(net.state_dict())
    with torch.no_grad():
        for x, want in zip(xs, wants):
            assert torch.equal(loaded.module(x), want)
    # The exported file itself loads the same network too (not only its library copy).
    assert load_model(out).spec == spec
