"""SSIM for validation (PSNR is :func:`engine.quality.psnr`), the metrics log, and its tail for faces.

Importing this module costs no numpy, OpenCV or torch: the TUI reads metrics tails through it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004, 11×11 Gaussian σ 1.5) on 0–255 RGB, averaged over channels."""
    import cv2
    import numpy as np

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for ch in range(a.shape[2]):
        x = a[:, :, ch].astype(np.float64) * 255
        y = b[:, :, ch].astype(np.float64) * 255
        blur = lambda t: cv2.GaussianBlur(t, (11, 11), 1.5)  # noqa: E731
        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
        vals.append(m[5:-5, 5:-5].mean() if min(m.shape) > 10 else m.mean())
    return float(np.mean(vals))


class MetricsLog:
    """``metrics.jsonl`` (one JSON object per line) plus TensorBoard events when tensorboard is installed."""

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except Exception:  # noqa: BLE001 - tensorboard is an optional extra
                self.tb = None

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record, default=float) + "\n")
        if self.tb is not None:
            step = record.get("iteration", 0)
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("iteration", "time"):
                    self.tb.add_scalar(f"{record.get('kind', 'train')}/{k}", v, step)

    def truncate_after(self, iteration: int) -> None:
        """Drop lines past ``iteration`` (written after the checkpoint a resume starts from)."""
        if not self.enabled or not self.path.is_file():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("iteration", 0) <= iteration:
                    keep.append(line)
            except ValueError:
                pass
        self.path.write_text("".join(line + "\n" for line in keep))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


class MetricsTail:
    """Reads a ``metrics.jsonl`` incrementally: only the lines added since the last read.

    A half-written last line is left for the next read; a file that shrank (rewritten by a resume's
    :meth:`MetricsLog.truncate_after`) is read again from the start. Keeps the newest ``keep`` rows.
    """

    def __init__(self, path: Path, keep: int = 5000):
        self.path = path
        self.offset = 0
        self.keep = keep
        self.rows: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        """Every row read so far (the newest ``keep``), after reading what was appended."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return self.rows
        if size < self.offset:  # rewritten from scratch
            self.offset, self.rows = 0, []
        if size == self.offset:
            return self.rows
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        end = data.rfind(b"\n") + 1  # leave a half-written last line for next time
        self.offset += end
        for line in data[:end].splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                self.rows.append(row)
        if len(self.rows) > self.keep:
            self.rows = self.rows[-self.keep:]
        return self.rows
