"""What reaches the terminal: JSON for scripts, aligned tables for people, progress on a TTY."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any


def print_json(obj: Any) -> None:
    """One JSON document on stdout (arrays for listings, objects for show/info)."""
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
    """A plain aligned table; empty cells print as '-'."""
    rows = [["-" if c is None or c == "" else str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*headers).rstrip())
    for row in rows:
        print(fmt.format(*row).rstrip())


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal.

    Usable as the engine's ``progress(done, total)`` callback.
    """

    def __init__(self, label: str, unit: str = "", stream=None):
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self._last = 0.0

    def __call__(self, done: float, total: float | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and (total is None or done < total):
            return
        self._last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        if total:
            frac = min(max(done / total, 0.0), 1.0)
            bar = "█" * int(frac * 24) + "░" * (24 - int(frac * 24))
            eta = (total - done) / rate if rate > 0 else 0
            text = f"{self.label} {bar} {frac * 100:5.1f}% {done:g}/{total:g} {self.unit} " \
                   f"{rate:.2f}/s ETA {int(eta) // 60}:{int(eta) % 60:02d}"
        else:
            text = f"{self.label} {done:g} {self.unit} {rate:.2f}/s"
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
