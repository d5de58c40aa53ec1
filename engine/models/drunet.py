"""DRUNet (KAIR's ``UNetRes``, Zhang et al., *Plug-and-Play Image Restoration with Deep Denoiser Prior*, 2021).

A four-level U-Net of residual blocks with no batch norm and no biases. Its input has one channel
more than the image: a constant noise-level map σ/255 that tells the network how hard to denoise.
Strided 2×2 convs go down, 2×2 transposed convs go up, and skips are added (not concatenated),
so the input size must be a multiple of 8: other sizes are padded on the bottom and right by
repeating the edge and cropped after (:func:`engine.inference.tiling.pad_to_multiple`), as KAIR's
own test code does, so the borders match the reference. The state-dict layout is KAIR's ``drunet_color.pth``:
``m_head``, ``m_down{1,2,3}``, ``m_body``, ``m_up{3,2,1}``, ``m_tail``.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from engine.models.spec import Hints, ModelSpec

ARCH = "drunet"


class ResBlock(nn.Module):
    """conv → ReLU → conv, added to its input (KAIR's ``ResBlock`` with mode ``CRC``, no bias)."""

    def __init__(self, channels: int):
        super().__init__()
        self.res = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res(x)


class DRUNet(nn.Module):
    """KAIR's UNetRes.

    Args:
        in_nc: input channels, image channels + 1 for the noise-level map (4 for colour).
        out_nc: output channels (3 for colour).
        nc: feature channels of the four levels.
        nb: residual blocks per level.
    """

    def __init__(self, in_nc: int = 4, out_nc: int = 3, nc: tuple[int, ...] = (64, 128, 256, 512), nb: int = 4):
        super().__init__()
        nc = list(nc)
        self.in_nc, self.out_nc, self.nc, self.nb = in_nc, out_nc, nc, nb
        self.m_head = nn.Conv2d(in_nc, nc[0], 3, 1, 1, bias=False)

        def down(level: int) -> nn.Sequential:
            blocks = [ResBlock(nc[level]) for _ in range(nb)]
            return nn.Sequential(*blocks, nn.Conv2d(nc[level], nc[level + 1], 2, 2, 0, bias=False))

        def up(level: int) -> nn.Sequential:
            blocks = [ResBlock(nc[level]) for _ in range(nb)]
            return nn.Sequential(nn.ConvTranspose2d(nc[level + 1], nc[level], 2, 2, 0, bias=False), *blocks)

        self.m_down1, self.m_down2, self.m_down3 = down(0), down(1), down(2)
        self.m_body = nn.Sequential(*[ResBlock(nc[3]) for _ in range(nb)])
        self.m_up3, self.m_up2, self.m_up1 = up(2), up(1), up(0)
        self.m_tail = nn.Conv2d(nc[0], out_nc, 3, 1, 1, bias=False)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x1 = self.m_head(x0)
        x2 = self.m_down1(x1)
        x3 = self.m_down2(x2)
        x4 = self.m_down3(x3)
        x = self.m_body(x4)
        x = self.m_up3(x + x4)
        x = self.m_up2(x + x3)
        x = self.m_up1(x + x2)
        return self.m_tail(x + x1)


def detect(state_dict: dict[str, torch.Tensor], hints: Hints | None = None) -> ModelSpec | None:
    """Recognise KAIR DRUNet weights; read channels, level widths and blocks per level.

    Every DRUNet hyper-parameter shows in the shapes, so ``hints`` are not needed.
    """
    head = state_dict.get("m_head.weight")
    tail = state_dict.get("m_tail.weight")
    if head is None or tail is None or "m_body.0.res.0.weight" not in state_dict:
        return None
    nb = len({int(m.group(1)) for k in state_dict if (m := re.match(r"m_body\.(\d+)\.", k))})
    try:
        nc = [
            int(head.shape[0]),
            int(state_dict[f"m_down1.{nb}.weight"].shape[0]),
            int(state_dict[f"m_down2.{nb}.weight"].shape[0]),
            int(state_dict[f"m_down3.{nb}.weight"].shape[0]),
        ]
    except KeyError:
        return None
    in_nc, out_nc = int(head.shape[1]), int(tail.shape[0])
    return ModelSpec(
        arch=ARCH,
        hyper=dict(in_nc=in_nc, out_nc=out_nc, nc=nc, nb=nb),
        in_channels=in_nc - 1,
        out_channels=out_nc,
        scale=1,
        size_multiple=8,
        takes_sigma=True,
    )


def spec_for(nc: tuple[int, ...] = (64, 128, 256, 512), nb: int = 4, channels: int = 3) -> ModelSpec:
    """The spec of a fresh DRUNet (tests use tiny ones)."""
    return ModelSpec(
        arch=ARCH,
        hyper=dict(in_nc=channels + 1, out_nc=channels, nc=list(nc), nb=nb),
        in_channels=channels,
        out_channels=channels,
        size_multiple=8,
        takes_sigma=True,
    )


def build(spec: ModelSpec) -> DRUNet:
    """Instantiate a DRUNet from its spec."""
    h = spec.hyper
    return DRUNet(in_nc=h["in_nc"], out_nc=h["out_nc"], nc=tuple(h["nc"]), nb=h["nb"])
