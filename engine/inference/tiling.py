"""Tiled inference with overlap and feathered blending, so a 4K scan fits a memory budget.

Each tile is run with ``overlap`` pixels of real context on every inner side; where tiles overlap
their outputs are blended with linear ramps, so a fully convolutional network whose receptive
field fits in the overlap gives the same picture as an untiled run.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Pad NCHW ``x`` on the bottom/right to a multiple of ``multiple`` by repeating its edge; returns the pads.

    Edge repetition is what DRUNet's authors run it with (KAIR pads with ``ReplicationPad2d`` and
    crops after), so its borders come out as theirs; a mirrored pad changed them by several levels.
    """
    if multiple <= 1:
        return x, 0, 0
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, ph, pw


def run_padded(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, multiple: int, scale: int) -> torch.Tensor:
    """Run ``fn`` on ``x`` padded to the size multiple and crop the result back."""
    h, w = x.shape[-2:]
    xp, _, _ = pad_to_multiple(x, multiple)
    out = fn(xp)
    return out[..., : h * scale, : w * scale]


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = max(tile - 2 * overlap, 1)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return sorted(set(starts))


def _ramp(length: int, margin: int, has_prev: bool, has_next: bool, device, dtype) -> torch.Tensor:
    """Blend weights along one axis of a tile.

    Neighbouring tiles share ``2 * margin`` samples. A tile's outermost ``margin / 2`` samples there
    (the ones its zero padding contaminates) get weight 0, the next ``margin`` samples rise linearly,
    so the cross-fade sits in the middle of the shared zone where both tiles saw real context.
    """
    w = torch.ones(length, device=device, dtype=dtype)
    if margin <= 0:
        return w
    zero = margin // 2
    rise = (torch.arange(margin, device=device, dtype=dtype) + 0.5) / margin
    if has_prev:
        w[:zero] = 0
        w[zero:zero + margin] = torch.minimum(w[zero:zero + margin], rise[: max(0, min(margin, length - zero))])
    if has_next:
        end = length - zero
        w[end:] = 0
        start = max(0, end - margin)
        w[start:end] = torch.minimum(w[start:end], rise.flip(0)[margin - (end - start):])
    return w


def run_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int = 32,
    scale: int = 1,
    multiple: int = 1,
) -> torch.Tensor:
    """Run ``fn`` over NCHW ``x`` in ``tile``×``tile`` pieces and blend them (``tile`` 0 = whole frame).

    Neighbouring tiles share ``2 * overlap`` input pixels and cross-fade in the middle of that zone,
    so a network whose receptive radius is at most ``overlap / 2`` gives the untiled picture. The
    overlap is clamped to a quarter of the tile. Accumulation is in float32 whatever the network's
    precision.
    """
    n, _, h, w = x.shape
    if tile <= 0 or (h <= tile and w <= tile):
        return run_padded(fn, x, multiple, scale)
    overlap = max(0, min(overlap, tile // 4))
    out = None
    weight = None
    ys, xs = _starts(h, tile, overlap), _starts(w, tile, overlap)
    for y0 in ys:
        for x0 in xs:
            th, tw = min(tile, h - y0), min(tile, w - x0)
            piece = run_padded(fn, x[..., y0:y0 + th, x0:x0 + tw], multiple, scale).float()
            if out is None:
                out = torch.zeros(n, piece.shape[1], h * scale, w * scale, device=piece.device)
                weight = torch.zeros(1, 1, h * scale, w * scale, device=piece.device)
            o = overlap * scale
            wy = _ramp(th * scale, o, y0 > 0, y0 + th < h, piece.device, torch.float32)
            wx = _ramp(tw * scale, o, x0 > 0, x0 + tw < w, piece.device, torch.float32)
            mask = wy[:, None] * wx[None, :]
            ys_, xs_ = slice(y0 * scale, (y0 + th) * scale), slice(x0 * scale, (x0 + tw) * scale)
            out[..., ys_, xs_] += piece * mask
            weight[..., ys_, xs_] += mask
    return out / weight
