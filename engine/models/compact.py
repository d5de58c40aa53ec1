"""SRVGGNetCompact, the Real-ESRGAN *Compact* network (Wang et al., Real-ESRGAN, 2021).

A plain stack of 3×3 convolutions at the input resolution, a pixel shuffle at the end and the
nearest-upsampled input added back, so the body learns only the residual. The state-dict layout is
Real-ESRGAN's: ``body.0`` first conv, ``body.1`` its activation, then (conv, activation) pairs,
the last conv at ``body.{2*num_conv+2}``. A 48nf/16nc network has 336,003 parameters.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.spec import ModelSpec

ARCH = "compact"
ACTIVATIONS = ("prelu", "relu", "leakyrelu")


class SRVGGNetCompact(nn.Module):
    """Compact VGG-style restoration/super-resolution network.

    Args:
        num_in_ch: channels of the input image (3 for RGB).
        num_out_ch: channels of the output image.
        num_feat: feature channels of every hidden conv (48 for the Archivist models).
        num_conv: hidden 3×3 convs after the first one (16 for the Archivist models).
        upscale: output scale factor (1: same size in and out).
        act_type: ``prelu`` (one slope per channel), ``relu`` or ``leakyrelu`` (slope 0.1).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: str = "prelu",
    ):
        super().__init__()
        if act_type not in ACTIVATIONS:
            raise ValueError(f"act_type must be one of {ACTIVATIONS}, not {act_type!r}")
        self.num_in_ch, self.num_out_ch = num_in_ch, num_out_ch
        self.num_feat, self.num_conv = num_feat, num_conv
        self.upscale, self.act_type = upscale, act_type

        self.body = nn.ModuleList([nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), self._activation()])
        for _ in range(num_conv):
            self.body.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            self.body.append(self._activation())
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def _activation(self) -> nn.Module:
        if self.act_type == "prelu":
            return nn.PReLU(num_parameters=self.num_feat)
        if self.act_type == "relu":
            return nn.ReLU(inplace=True)
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        if self.num_in_ch == self.num_out_ch:
            base = x if self.upscale == 1 else F.interpolate(x, scale_factor=self.upscale, mode="nearest")
            out = out + base
        return out


def detect(state_dict: dict[str, torch.Tensor], act_type: str | None = None) -> ModelSpec | None:
    """Recognise Compact weights and read nf, nc, channels and scale from the keys and shapes.

    ``act_type`` comes from a file's metadata when known; PReLU weights are recognised by their
    ``body.1.weight``; ReLU/LeakyReLU leave no weights and need the metadata.
    """
    first = state_dict.get("body.0.weight")
    if first is None or first.dim() != 4 or tuple(first.shape[2:]) != (3, 3):
        return None
    indices = sorted({int(m.group(1)) for k in state_dict if (m := re.match(r"body\.(\d+)\.", k))})
    highest = indices[-1]
    if highest < 2 or highest % 2:
        return None
    num_feat, num_in_ch = int(first.shape[0]), int(first.shape[1])
    num_conv = (highest - 2) // 2
    last_bias = state_dict.get(f"body.{highest}.bias")
    if last_bias is None:
        return None
    out_total = int(last_bias.shape[0])
    scale = math.isqrt(max(out_total // num_in_ch, 1))
    num_out_ch = out_total // (scale * scale) if scale else out_total
    if num_out_ch * scale * scale != out_total:
        num_out_ch, scale = out_total, 1
    if act_type is None:
        if "body.1.weight" in state_dict:
            act_type = "prelu"
        else:
            return None
    hyper = dict(
        num_in_ch=num_in_ch,
        num_out_ch=num_out_ch,
        num_feat=num_feat,
        num_conv=num_conv,
        upscale=scale,
        act_type=act_type,
    )
    return ModelSpec(
        arch=ARCH,
        hyper=hyper,
        in_channels=num_in_ch,
        out_channels=num_out_ch,
        scale=scale,
    )


def spec_for(
    num_feat: int = 48, num_conv: int = 16, scale: int = 1, act_type: str = "prelu", channels: int = 3
) -> ModelSpec:
    """The spec of a fresh Compact (for the trainer and the tests)."""
    hyper = dict(
        num_in_ch=channels,
        num_out_ch=channels,
        num_feat=num_feat,
        num_conv=num_conv,
        upscale=scale,
        act_type=act_type,
    )
    return ModelSpec(arch=ARCH, hyper=hyper, in_channels=channels, out_channels=channels, scale=scale)


def build(spec: ModelSpec) -> SRVGGNetCompact:
    """Instantiate a Compact from its spec."""
    return SRVGGNetCompact(**spec.hyper)
