"""Small file systems of a test's own: a tmpfs mounted on a folder (root, as in CI), and filling one.

The way to meet a full disk without filling the machine's. A test that cannot mount one (not root)
is skipped, never passed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(folder: Path, size: str, options: str = "mode=0700") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (``1m``, ``160k``) on ``folder`` (made if missing); unmounted after."""
    folder.mkdir(parents=True, exist_ok=True)
    opts = ",".join(filter(None, (f"size={size}", options)))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip() or done.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def fill(folder: Path) -> Path:
    """Write into ``folder`` until its file system is full, to the last byte; returns the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):  # big steps, then to the last byte
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler
