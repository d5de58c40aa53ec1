"""PSNR, the one convention every figure of the project uses (NumPy only: no torch, no OpenCV).

Used by training validation (``metrics.jsonl``), ``archivist evaluate`` (the recorded tables in
``recipes/*/evaluation.json`` and ``docs/starter.md``), ``archivist demo`` and the benchmarks.

The convention:

- **Peak** from the array type: 255 for 8-bit images, 65535 for 16-bit, 1.0 for float images in
  [0, 1]. An 8-bit image and the same image divided by 255 score the same (the recorded tables
  are float32 images /255 against a peak of 1).
- **All values together**: one mean squared error over every pixel and channel of the arrays (a
  stack of frames is one measurement, not a mean of per-frame figures; callers that want a mean
  of per-image figures take it themselves, as ``evaluate`` does).
- **No clipping**: values are measured as given. Clamp a network's output to the valid range
  first, as writing it to an image file would.
- **Capped at** :data:`PSNR_CAP` (99 dB): identical images give 99, never infinity, so means,
  JSON records and charts stay finite; any error too small to matter (below a mean squared error
  of about 1.3e-10 of the peak²) reads 99 too, so a smaller error never scores below a larger one.
"""

from __future__ import annotations

import numpy as np

PSNR_CAP = 99.0  # dB


def peak_of(dtype: np.dtype) -> float:
    """The peak value PSNR uses for images of ``dtype``: the maximum of an unsigned integer type,
    1.0 for floating point; anything else must give ``data_range`` explicitly."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.unsignedinteger):
        return float(np.iinfo(dtype).max)
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise ValueError(f"psnr: no peak for images of type {dtype}: give data_range")


def psnr(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float:
    """PSNR in dB of ``a`` against ``b``: two images (or stacks of them) of the same shape and kind.

    ``data_range`` is the peak (default from the arrays' type: 255, 65535 or 1.0, see the module's
    docstring); the result is capped at :data:`PSNR_CAP`. Refuses (ValueError) arrays of different
    shapes (NumPy would broadcast them into a wrong figure) and an integer image against a float
    one without an explicit ``data_range``.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ ({a.shape} and {b.shape})")
    if data_range is None:
        peak = peak_of(a.dtype)
        if peak_of(b.dtype) != peak:
            raise ValueError(f"psnr: images of types {a.dtype} and {b.dtype} have different peaks: give data_range")
    else:
        peak = float(data_range)
        if not peak > 0:
            raise ValueError(f"psnr: data_range must be above 0, not {data_range}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0:
        return PSNR_CAP
    return min(float(10 * np.log10(peak * peak / mse)), PSNR_CAP)
