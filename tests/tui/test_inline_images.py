"""Inline pictures through the kitty graphics protocol and sixel, checked on the bytes written.

The workstation runs in a pty whose far end plays a kitty (or a sixel) terminal: it answers the
queries textual-image sends, and the test decodes what comes back (the APC ``_G`` transmissions and
placement; the sixel raster attributes and pixel data) into a picture whose size and content it
checks against the preview file.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from tests.tui.fake_terminal import FakeTerminal, kitty_images, png_size, sixel_images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CELL = (10, 20)  # pixels per cell the fake terminal reports


def write_preview_run(home) -> np.ndarray:
    """A run whose latest preview is a 3:1 strip, as LQ │ out │ GT previews are: blue, green over black."""
    import cv2

    rdir = home / "runs" / "r1"
    (rdir / "previews").mkdir(parents=True)
    (rdir / "config.yaml").write_text("name: r1\ntrain:\n  total_iters: 100\n")
    (rdir / "run.json").write_text(json.dumps({"status": "done", "iteration": 10}))
    rgb = np.zeros((32, 96, 3), np.uint8)
    rgb[:, :32] = (0, 0, 255)
    rgb[:16, 32:] = (0, 255, 0)
    cv2.imwrite(str(rdir / "previews" / "iter_000000010.png"), rgb[..., ::-1])
    return rgb


def open_workstation(kind: str, home) -> FakeTerminal:
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "ARCHIVIST_IMAGES")}
    env.update(ARCHIVIST_HOME=str(home), TERM="xterm-kitty" if kind == "kitty" else "xterm-256color",
               PYTHONPATH=ROOT)
    terminal = FakeTerminal(kind, cols=120, rows=40, cell=CELL)
    terminal.start([sys.executable, "-m", "archivist_tui.cli", "tui", "--images", kind, "--screen", "training"],
                   env)
    return terminal


def check_picture(width: int, height: int, columns: int, rows: int, colour_at) -> None:
    """The picture fills its cells exactly, keeps the strip's 3:1 shape and shows the strip."""
    assert (width, height) == (columns * CELL[0], rows * CELL[1])
    assert 30 <= columns <= 120 and rows <= 40  # most of the panel, inside the screen
    assert abs(width / height - 3.0) <= 3.0 * CELL[1] / height  # within one cell row of 3:1
    for (fx, fy), want in (((1 / 6, 1 / 2), (0, 0, 255)), ((2 / 3, 1 / 4), (0, 255, 0)), ((2 / 3, 3 / 4), (0, 0, 0))):
        got = colour_at(int(fx * width), int(fy * height))
        assert max(abs(a - b) for a, b in zip(got, want)) <= 40, (fx, fy, got, want)


@pytest.mark.slow
def test_kitty_graphics_picture_has_the_right_size(archivist_home):
    from PIL import Image

    write_preview_run(archivist_home)
    terminal = open_workstation("kitty", archivist_home)
    try:
        terminal.run_until(lambda: any(i.columns for i in kitty_images(bytes(terminal.output)).values()), 90,
                           "a kitty image transmitted and placed")
        placed = [i for i in kitty_images(bytes(terminal.output)).values() if i.columns]
        assert len(placed) == 1
        image = placed[0]
        width, height = png_size(image.png)
        import io

        pixels = Image.open(io.BytesIO(image.png)).convert("RGB")
        check_picture(width, height, image.columns, image.rows, lambda x, y: pixels.getpixel((x, y)))
        # The cells hold the Unicode placeholders that show the placement.
        terminal.run_until(lambda: bytes(terminal.output).count("\U0010eeee".encode()) >= image.columns * image.rows,
                           30, "the placeholder cells")
        assert any(a.startswith("\x1b_G") for a in terminal.answered)  # it asked, as on a real terminal
        terminal.send(b"q")
        terminal.run_until(lambda: terminal.proc.poll() is not None, 30, "quit")
        assert terminal.proc.returncode == 0
    finally:
        terminal.close()


@pytest.mark.slow
def test_sixel_picture_has_the_right_size(archivist_home):
    write_preview_run(archivist_home)
    terminal = open_workstation("sixel", archivist_home)
    try:
        terminal.run_until(lambda: sixel_images(bytes(terminal.output)), 90, "a sixel picture")
        picture = sixel_images(bytes(terminal.output))[-1]
        # The raster attributes announce the size the pixel data really covers.
        assert picture.raster == (picture.width, picture.height)
        check_picture(picture.width, picture.height, picture.width // CELL[0], picture.height // CELL[1],
                      lambda x, y: picture.pixels.get((x, y), (0, 0, 0)))
        terminal.send(b"q")
        terminal.run_until(lambda: terminal.proc.poll() is not None, 30, "quit")
        assert terminal.proc.returncode == 0
    finally:
        terminal.close()
