"""Losses: pixel (L1 / Charbonnier), perceptual (VGG19 features), GAN (vanilla BCE on logits).

VGG19 is defined here (torchvision does not import beside this torch build) with torchvision's
``features.N`` layout, so the standard ``vgg19-dcbb9e9d.pth`` loads into it. Weights come only from
a local file or the torch hub cache; nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ArchivistError
from engine.train.config import VGG_CACHE, VGG_LAYERS

# torchvision's VGG19 "E" configuration: channels per conv, "M" a max-pool.
VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def pixel_loss(kind: str, out: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Mean L1, or Charbonnier ``sqrt(d² + eps)`` (BasicSR's eps)."""
    if kind == "charbonnier":
        return torch.sqrt((out - target) ** 2 + eps).mean()
    return F.l1_loss(out, target)


def _conv_indices() -> dict[str, int]:
    """Layer name (conv1_1 …) → index of its conv in ``features``."""
    names, idx, block, n = {}, 0, 1, 1
    for v in VGG19_CFG:
        if v == "M":
            idx += 1
            block, n = block + 1, 1
        else:
            names[f"conv{block}_{n}"] = idx
            idx += 2  # conv, relu
            n += 1
    return names


CONV_INDEX = _conv_indices()


class VGG19Features(nn.Module):
    """VGG19 ``features`` up to the deepest requested layer; returns the pre-ReLU conv outputs.

    Real-ESRGAN's perceptual loss reads conv outputs before the activation, on ImageNet-normalised
    input. Only the layers up to the deepest one asked for are built and need weights.
    """

    def __init__(self, layers: list[str]):
        super().__init__()
        for name in layers:
            if name not in CONV_INDEX:
                raise ArchivistError(f"unknown VGG19 layer {name!r}: allowed are {', '.join(VGG_LAYERS)}")
        self.layers = list(layers)
        last = max(CONV_INDEX[n] for n in layers)
        modules: list[nn.Module] = []
        c_in = 3
        for v in VGG19_CFG:
            if len(modules) > last:
                break
            if v == "M":
                modules.append(nn.MaxPool2d(2, 2))
            else:
                modules.append(nn.Conv2d(c_in, v, 3, 1, 1))
                modules.append(nn.ReLU(inplace=False))
                c_in = v
        self.features = nn.Sequential(*modules[:last + 1])
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (x - self.mean) / self.std
        wanted = {CONV_INDEX[n]: n for n in self.layers}
        out = {}
        for i, module in enumerate(self.features):
            x = module(x)
            if i in wanted:
                out[wanted[i]] = x
        return out

    def load_weights(self, path: Path) -> None:
        """Load torchvision-layout weights (``features.N.weight``) from a local file, weights only."""
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one clear error
            raise ArchivistError(f"{path}: not a readable VGG19 weights file ({str(exc).splitlines()[0][:120]})") from None
        if not isinstance(state, dict):
            raise ArchivistError(f"{path}: not a VGG19 state dict")
        own = self.state_dict()
        picked = {}
        for key, param in own.items():
            t = state.get(key)
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(param.shape):
                got = "missing" if t is None else f"shape {tuple(t.shape)}"
                raise ArchivistError(f"{path}: not VGG19 weights ({key}: {got}, expected {tuple(param.shape)})")
            picked[key] = t
        self.load_state_dict(picked)


def find_vgg_weights(configured: str | None) -> Path:
    """The VGG19 weights file: the configured path, else the torch hub cache; never downloaded."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ArchivistError(f"losses.perceptual.vgg19: {path}: no such file (weights are never downloaded; "
                                 "set losses.perceptual.weight: 0 to train without the perceptual loss)")
        return path
    cache = VGG_CACHE.expanduser()
    if cache.is_file():
        return cache
    raise ArchivistError(
        f"the perceptual loss needs VGG19 weights: none in the config (losses.perceptual.vgg19) and none at {cache}; "
        "they are never downloaded at run time: copy vgg19-dcbb9e9d.pth there or set losses.perceptual.weight: 0")


class PerceptualLoss(nn.Module):
    """Weighted L1 between VGG19 features of output and target (Real-ESRGAN's perceptual term)."""

    def __init__(self, layer_weights: dict[str, float], weights_path: Path):
        super().__init__()
        self.layer_weights = {k: float(v) for k, v in layer_weights.items()}
        self.vgg = VGG19Features(list(self.layer_weights))
        self.vgg.load_weights(weights_path)

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fo = self.vgg(out)
        with torch.no_grad():
            ft = self.vgg(target.detach())
        return sum(F.l1_loss(fo[k], ft[k]) * w for k, w in self.layer_weights.items())


def gan_loss(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Vanilla GAN loss: BCE with logits against a constant label (real labels may be < 1)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def usm_sharpen(img: torch.Tensor, weight: float = 0.5, radius: int = 50, threshold: float = 10) -> torch.Tensor:
    """Unsharp-masked GT (Real-ESRGAN's USM, off by default: it caused halos in the original work)."""
    k = radius if radius % 2 else radius + 1
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
    ax = torch.arange(k, dtype=img.dtype, device=img.device) - k // 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    g = g / g.sum()
    c = img.shape[1]
    pad = k // 2
    blur = F.conv2d(F.pad(img, (pad, pad, 0, 0), mode="replicate"), g.view(1, 1, 1, k).repeat(c, 1, 1, 1), groups=c)
    blur = F.conv2d(F.pad(blur, (0, 0, pad, pad), mode="replicate"), g.view(1, 1, k, 1).repeat(c, 1, 1, 1), groups=c)
    residual = img - blur
    mask = (residual.abs() * 255 > threshold).to(img.dtype)
    return torch.clamp(img + weight * residual * mask, 0, 1)
