"""ONNX export: dynamic height and width, checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models import compact, drunet
from engine.models.files import export_onnx

ort = pytest.importorskip("onnxruntime")


def run_both(module, path, shapes):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert [o.name for o in sess.get_outputs()] == ["output"]
    g = torch.Generator().manual_seed(0)
    for shape in shapes:
        x = torch.rand(shape, generator=g)
        with torch.no_grad():
            want = module(x).numpy()
        got = sess.run(["output"], {"input": x.numpy()})[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


@pytest.mark.parametrize("scale", [1, 2])
def test_compact_onnx_matches_at_two_sizes(tmp_path, scale):
    torch.manual_seed(0)
    spec = compact.spec_for(8, 2, scale)
    net = compact.build(spec).eval()
    path = tmp_path / "tiny.onnx"
    export_onnx(path, net, spec)
    run_both(net, path, [(1, 3, 24, 40), (2, 3, 37, 19)])


def test_drunet_onnx_matches_at_two_sizes(tmp_path):
    torch.manual_seed(0)
    spec = drunet.spec_for((8, 16, 32, 64), nb=1)
    net = drunet.build(spec).eval()
    path = tmp_path / "tinydrunet.onnx"
    export_onnx(path, net, spec)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[1] == 4  # image + σ/255 map
    run_both(net, path, [(1, 4, 32, 48), (1, 4, 56, 24)])
