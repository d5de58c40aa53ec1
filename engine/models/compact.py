"""SRVGGNetCompact, the Real-ESRGAN *Compact* network (Wang et al., Real-ESRGAN, 2021).

A plain stack of 3×3 convolutions at the input resolution, a pixel shuffle at the end and the
nearest-upsampled input added back, so the body learns only the residual. The state-dict layout is
Real-ESRGAN's: ``body.0`` first conv, ``body.1`` its activation, then (conv, activation) pairs,
the last conv at ``body.{2*num_conv+2}``. A 48nf/16nc network has 336,003 parameters.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ArchivistError
from engine.models.spec import AmbiguousWeights, Hints, ModelSpec

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


# An image network gives grey (1), RGB (3) or RGBA (4): the only output channel counts read from weights.
IMAGE_CHANNELS = (1, 3, 4)


def readings(out_total: int) -> list[tuple[int, int]]:
    """Every (output channels, scale) whose ``channels × scale²`` is the last conv's filter count.

    Only image channel counts (1, 3, 4) are readings. 12 filters read as RGB ×2 only, but 16 read
    as RGBA ×2 or grey ×4: 1 and 4 are squares, so the shapes cannot choose.
    """
    found, s = [], 1
    while s * s <= out_total:
        if out_total % (s * s) == 0 and out_total // (s * s) in IMAGE_CHANNELS:
            found.append((out_total // (s * s), s))
        s += 1
    return found


def _describe_reading(num_in_ch: int, out_ch: int, scale: int) -> str:
    return f"{num_in_ch}\u2192{out_ch} channel{'s' if out_ch > 1 else ''} \u00d7{scale}"


def detect(state_dict: dict[str, torch.Tensor], hints: Hints | None = None) -> ModelSpec | None:
    """Recognise Compact weights and read nf, nc, channels, scale and activation.

    From the shapes alone: nf and input channels (``body.0.weight``), the number of convs (the
    highest ``body.N``), and ``out_channels × scale²`` (the last bias). PReLU leaves its slopes
    (``body.1.weight``); ReLU and LeakyReLU leave nothing. What the shapes leave open is taken
    from ``hints`` (metadata, flags, a config); when that still leaves more than one network,
    :class:`ArchivistError` lists the readings. Nothing is guessed. Returns None for weights that
    are not a Compact's.
    """
    first = state_dict.get("body.0.weight")
    if first is None or first.dim() != 4 or tuple(first.shape[2:]) != (3, 3):
        return None
    indices = sorted({int(m.group(1)) for k in state_dict if (m := re.match(r"body\.(\d+)\.", k))})
    highest = indices[-1]
    if highest < 2 or highest % 2:
        return None
    last_bias = state_dict.get(f"body.{highest}.bias")
    if last_bias is None or last_bias.dim() != 1:
        return None
    hints = hints or Hints()
    num_feat, num_in_ch = int(first.shape[0]), int(first.shape[1])
    num_conv = (highest - 2) // 2
    out_total = int(last_bias.shape[0])

    fits = readings(out_total)
    if not fits:
        raise ArchivistError(f"a Compact whose last conv has {out_total} filters: no image network has that "
                             f"many (channels \u00d7 scale\u00b2 with 1, 3 or 4 channels)")
    choices = [(c, s) for c, s in fits if hints.out_channels in (None, c) and hints.scale in (None, s)]
    if not choices:
        given = " and ".join(f"{hints.label(k)} {v}" for k, v in hints.items() if k != "act_type")
        options = " or ".join(_describe_reading(num_in_ch, c, s) for c, s in fits)
        raise ArchivistError(f"{given} does not fit the weights: the last conv's {out_total} filters read as "
                             f"{options}")

    if "body.1.weight" in state_dict:
        if hints.act_type not in (None, "prelu"):
            raise ArchivistError(f"{hints.label('act_type')} {hints.act_type} does not fit the weights: they hold "
                                 "PReLU slopes (body.1.weight)")
        acts = ["prelu"]
    elif hints.act_type == "prelu":
        raise ArchivistError(f"{hints.label('act_type')} prelu does not fit the weights: they hold no PReLU slopes "
                             "(no body.1.weight)")
    else:
        acts = [hints.act_type] if hints.act_type else ["relu", "leakyrelu"]

    if len(choices) > 1 or len(acts) > 1:
        raise _ambiguity(num_in_ch, choices, acts)
    (num_out_ch, scale), act_type = choices[0], acts[0]
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


def _ambiguity(num_in_ch: int, choices: list[tuple[int, int]], acts: list[str]) -> AmbiguousWeights:
    """The error that says which readings the weights allow and which flags pick one."""
    open_parts, flags = [], []
    if len(choices) > 1:
        open_parts.append(" or ".join(_describe_reading(num_in_ch, c, s) for c, s in choices))
        flags.append("--scale " + "|".join(str(s) for _, s in choices)
                     + " --out-channels " + "|".join(str(c) for c, _ in choices))
    if len(acts) > 1:
        open_parts.append("activation " + " or ".join(acts) + " (a Compact without PReLU: its activation "
                          "leaves no weights)")
        flags.append("--act " + "|".join(acts))
    return AmbiguousWeights("the weights alone do not tell which Compact this is: " + "; ".join(open_parts),
                            " ".join(flags))


def spec_for(
    num_feat: int = 48, num_conv: int = 16, scale: int = 1, act_type: str = "prelu", channels: int = 3,
    out_channels: int | None = None,
) -> ModelSpec:
    """The spec of a fresh Compact (for the trainer and the tests); ``out_channels`` defaults to ``channels``."""
    out = channels if out_channels is None else out_channels
    hyper = dict(
        num_in_ch=channels,
        num_out_ch=out,
        num_feat=num_feat,
        num_conv=num_conv,
        upscale=scale,
        act_type=act_type,
    )
    return ModelSpec(arch=ARCH, hyper=hyper, in_channels=channels, out_channels=out, scale=scale)


def build(spec: ModelSpec) -> SRVGGNetCompact:
    """Instantiate a Compact from its spec."""
    return SRVGGNetCompact(**spec.hyper)
