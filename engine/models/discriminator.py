"""UNetDiscriminatorSN, Real-ESRGAN's discriminator (Wang et al., 2021).

A U-Net with spectral normalisation that judges every pixel, not the whole image: three strided
convs down, three convs up with bilinear upsampling and additive skips, two extra convs and a
one-channel output map of logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from engine.models.spec import Hints, ModelSpec

ARCH = "unet_discriminator"


class UNetDiscriminatorSN(nn.Module):
    """Per-pixel U-Net discriminator with spectral norm.

    Args:
        num_in_ch: channels of the judged image.
        num_feat: channels of the first level (64 in Real-ESRGAN).
        skip_connection: add the encoder features to the decoder's.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True):
        super().__init__()
        self.skip_connection = skip_connection
        f = num_feat
        self.conv0 = nn.Conv2d(num_in_ch, f, 3, 1, 1)
        self.conv1 = spectral_norm(nn.Conv2d(f, f * 2, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(f * 4, f * 8, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(f * 8, f * 4, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(f * 4, f * 2, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(f * 2, f, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, negative_slope=0.2)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)


def detect(state_dict: dict[str, torch.Tensor], hints: Hints | None = None) -> ModelSpec | None:
    """Recognise discriminator weights (so a discriminator file is named as such, not as a model)."""
    w = state_dict.get("conv0.weight")
    if w is None or "conv9.weight" not in state_dict:
        return None
    return ModelSpec(
        arch=ARCH,
        hyper=dict(num_in_ch=int(w.shape[1]), num_feat=int(w.shape[0])),
        in_channels=int(w.shape[1]),
        out_channels=1,
        size_multiple=8,
    )


def build(spec: ModelSpec) -> UNetDiscriminatorSN:
    """Instantiate a discriminator from its spec."""
    return UNetDiscriminatorSN(**spec.hyper)
