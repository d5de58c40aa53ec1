"""SRVGGNetCompact: the forward pass against a hand-written reference, sizes, detection from keys."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.models import compact
from engine.models.files import detect_spec, param_count


def known_state(num_feat: int, num_conv: int, scale: int, channels: int = 3, seed: int = 0):
    """A Compact with every weight drawn from a fixed generator, PReLU slopes included (all distinct)."""
    net = compact.build(compact.spec_for(num_feat, num_conv, scale, channels=channels)).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() == 1 and name.endswith("weight"):  # PReLU slopes, some negative
                p.copy_(torch.rand(p.shape, generator=g) * 1.2 - 0.4)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return net


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, num_conv: int, scale: int) -> torch.Tensor:
    """Real-ESRGAN's SRVGGNetCompact written out by hand: conv, PReLU, ..., conv, pixel shuffle, + upsampled input."""

    def prelu(t, slope):
        return torch.where(t >= 0, t, t * slope.view(1, -1, 1, 1))

    out = prelu(F.conv2d(x, sd["body.0.weight"], sd["body.0.bias"], padding=1), sd["body.1.weight"])
    for i in range(num_conv):
        conv, act = 2 + 2 * i, 3 + 2 * i
        out = prelu(F.conv2d(out, sd[f"body.{conv}.weight"], sd[f"body.{conv}.bias"], padding=1),
                    sd[f"body.{act}.weight"])
    last = 2 * num_conv + 2
    out = F.conv2d(out, sd[f"body.{last}.weight"], sd[f"body.{last}.bias"], padding=1)
    n, c, h, w = out.shape
    c_out = c // (scale * scale)
    # Pixel shuffle by hand: channel c*s*s + i*s + j goes to pixel (y*s + i, x*s + j).
    out = out.view(n, c_out, scale, scale, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c_out, h * scale, w * scale)
    base = x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    return out + base


@pytest.mark.parametrize("num_feat,num_conv,scale", [(8, 2, 1), (8, 3, 2), (6, 1, 4)])
def test_forward_equals_hand_written_reference(num_feat, num_conv, scale):
    net = known_state(num_feat, num_conv, scale)
    x = torch.rand(2, 3, 13, 17, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = net(x)
        want = reference_forward(net.state_dict(), x, num_conv, scale)
    assert got.shape == (2, 3, 13 * scale, 17 * scale)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_state_dict_layout_is_real_esrgans():
    keys = list(compact.build(compact.spec_for(8, 2, 1)).state_dict())
    assert keys == ["body.0.weight", "body.0.bias", "body.1.weight",
                    "body.2.weight", "body.2.bias", "body.3.weight",
                    "body.4.weight", "body.4.bias", "body.5.weight",
                    "body.6.weight", "body.6.bias"]


def test_archivist_size_has_336003_parameters():
    net = compact.build(compact.spec_for(48, 16, 1))
    assert sum(p.numel() for p in net.parameters()) == 336_003
    assert param_count(net.state_dict()) == 336_003


@pytest.mark.parametrize(
    "num_feat,num_conv,scale,channels",
    [(8, 2, 1, 3), (8, 2, 2, 3), (8, 2, 4, 3), (48, 16, 1, 3), (16, 4, 3, 1), (12, 5, 3, 3), (8, 0, 1, 3)],
)
def test_detects_hyper_parameters(num_feat, num_conv, scale, channels):
    spec = compact.spec_for(num_feat, num_conv, scale, channels=channels)
    sd = compact.build(spec).state_dict()
    found = detect_spec(sd)
    assert found.arch == "compact"
    assert (found.num_feat, found.num_conv, found.scale) == (num_feat, num_conv, scale)
    assert (found.in_channels, found.out_channels) == (channels, channels)
    assert found.hyper == spec.hyper
    # The detected spec builds a network that takes the weights strictly.
    compact.build(found).load_state_dict(sd, strict=True)


def test_not_compact_is_not_detected():
    assert compact.detect({"conv_first.weight": torch.zeros(8, 3, 3, 3)}) is None
    assert compact.detect({"body.0.weight": torch.zeros(8, 3, 5, 5)}) is None  # not a 3×3 first conv
