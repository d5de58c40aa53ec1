"""`archivist preview`: one frame before/after, by index or time, side by side or split."""

from __future__ import annotations

import numpy as np

from archivist_tui.cli import main
from engine.inference.imageio import read_picture
from engine.video.preview import compose, grab_frame, preview_frame
from engine.video.synthetic import pattern_frame


def test_grab_frame_by_index_and_time(clip):
    src = clip("p.nut", codec="ffv1", pix_fmt="bgr0", frames=12)
    rgb, depth = grab_frame(src, frame=5)
    assert depth == 8
    assert np.array_equal(np.round(rgb * 255).astype(np.uint8), pattern_frame(5, 64, 48))
    at_time, _ = grab_frame(src, time=0.25)  # 24 fps: frame 6
    assert np.array_equal(np.round(at_time * 255).astype(np.uint8), pattern_frame(6, 64, 48))


def test_compose_layouts():
    a = np.zeros((8, 10, 3), np.float32)
    b = np.ones((8, 10, 3), np.float32) * 0.5
    assert compose(a, b, "side").shape == (8, 24, 3)
    split = compose(a, b, "split")
    assert split.shape == (8, 10, 3) and split[0, 0, 0] == 0 and split[0, 9, 0] == 0.5


def test_preview_cli(clip, tiny_compact, tmp_path, capsys):
    src = clip("v.mkv", frames=6)
    out = tmp_path / "pv.png"
    assert main(["preview", str(src), "-m", str(tiny_compact[0]), "--frame", "2", "-o", str(out),
                 "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert read_picture(out).rgb.shape == (48, 64 * 2 + 4, 3)
    assert main(["preview", str(src), "-m", str(tiny_compact[0]), "--frame", "2", "-o", str(out),
                 "--device", "cpu"]) == 1
    assert f"{out}: output exists" in capsys.readouterr().err
    assert main(["preview", str(src), "-m", str(tiny_compact[0]), "--frame", "99", "-o", str(out),
                 "--device", "cpu", "--overwrite"]) == 1
    assert "no frame 99" in capsys.readouterr().err


def test_preview_of_a_black_and_white_film_is_gray(clip, chain, tmp_path):
    import cv2

    src = clip("film.mp4", gray=True, frames=3)
    out = tmp_path / "p.png"
    preview_frame(src, chain, out, frame=1)
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).ndim == 2
