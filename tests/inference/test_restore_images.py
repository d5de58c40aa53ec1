"""``archivist restore`` on images: bit depth, alpha, EXIF orientation, folders, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from archivist_tui.cli import main
from engine.inference.imageio import read_picture


def _write_rgb(path, rgb_float, depth=8, alpha=None):
    peak = 65535 if depth == 16 else 255
    a = np.clip(rgb_float * peak + 0.5, 0, peak).astype(np.uint16 if depth == 16 else np.uint8)[..., ::-1]
    if alpha is not None:
        a = np.dstack([a, alpha])
    assert cv2.imwrite(str(path), a)


def test_restore_one_png(tmp_path, tiny_compact, rgb_image, capsys):
    model, _ = tiny_compact
    src = tmp_path / "in.png"
    _write_rgb(src, rgb_image)
    out = tmp_path / "out.png"
    assert main(["restore", str(src), "-o", str(out), "-m", str(model), "--device", "cpu"]) == 0
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint8 and got.shape == (48, 64, 3)
    assert str(out) in capsys.readouterr().out


def test_sixteen_bit_stays_sixteen_bit(tmp_path, tiny_compact, rgb_image):
    model, net = tiny_compact
    src = tmp_path / "in16.tiff"
    _write_rgb(src, rgb_image, depth=16)
    out = tmp_path / "out16.tiff"
    assert main(["restore", str(src), "-o", str(out), "-m", str(model)]) == 0
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint16
    # Values use the 16-bit range, not an 8-bit one scaled up.
    assert len(np.unique(got[..., 0] % 257)) > 10


def test_alpha_passed_through(tmp_path, tiny_compact, rgb_image):
    model, _ = tiny_compact
    alpha = np.tile(np.arange(64, dtype=np.uint8)[None, :] * 4, (48, 1))
    src = tmp_path / "rgba.png"
    _write_rgb(src, rgb_image, alpha=alpha)
    out = tmp_path / "rgba_out.png"
    assert main(["restore", str(src), "-o", str(out), "-m", str(model)]) == 0
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.shape == (48, 64, 4)
    np.testing.assert_array_equal(got[..., 3], alpha)


def test_exif_orientation_honoured(tmp_path):
    from PIL import Image

    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :10] = 255  # a white band on the left
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    src = tmp_path / "rot.jpg"
    im.save(src, exif=exif, quality=95)
    pic = read_picture(src)
    assert pic.rgb.shape == (40, 20, 3)
    assert pic.rgb[:10].mean() > 0.9 and pic.rgb[-10:].mean() < 0.1  # band now on top


def test_folder_to_folder(tmp_path, tiny_compact, rgb_image):
    model, _ = tiny_compact
    src = tmp_path / "frames"
    src.mkdir()
    for i in range(3):
        _write_rgb(src / f"f{i:03d}.png", rgb_image)
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "restored"
    assert main(["restore", str(src), "-o", str(out), "-m", str(model), "--format", "tiff"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["f000.tiff", "f001.tiff", "f002.tiff"]


def test_library_name_and_chain(tmp_path, tiny_compact, tiny_drunet, rgb_image):
    model, _ = tiny_compact
    dmodel, _ = tiny_drunet
    assert main(["models", "import", str(model), "--name", "tiny-medium", "--role", "medium"]) == 0
    assert main(["models", "import", str(dmodel), "--name", "tiny-drunet"]) == 0
    src = tmp_path / "in.png"
    _write_rgb(src, rgb_image)
    out = tmp_path / "o.png"
    assert main(["restore", str(src), "-o", str(out), "-m", "tiny-medium", "-m", "tiny-drunet:0.5:5"]) == 0
    assert out.exists()


@pytest.mark.parametrize(
    "setup, message",
    [
        ("missing", "no such file or folder"),
        ("notimage", "not a readable image"),
        ("emptydir", "folder holds no images"),
        ("badsuffix", "must end in .png, .tif or .tiff"),
    ],
)
def test_bad_input_one_line(tmp_path, tiny_compact, rgb_image, capsys, setup, message):
    model, _ = tiny_compact
    out = tmp_path / "out.png"
    if setup == "missing":
        src = tmp_path / "nope.png"
    elif setup == "notimage":
        src = tmp_path / "fake.png"
        src.write_text("hello")
    elif setup == "emptydir":
        src = tmp_path / "empty"
        src.mkdir()
        out = tmp_path / "outdir"
    else:
        src = tmp_path / "in.png"
        _write_rgb(src, rgb_image)
        out = tmp_path / "out.jpg"
    assert main(["restore", str(src), "-o", str(out), "-m", str(model)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archivist: error: ") and message in err[0]
    assert not out.exists() or out.is_dir()


def test_unwritable_output_leaves_nothing(tmp_path, tiny_compact, rgb_image, capsys):
    model, _ = tiny_compact
    src = tmp_path / "in.png"
    _write_rgb(src, rgb_image)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    assert main(["restore", str(src), "-o", str(blocker / "sub" / "o.png"), "-m", str(model)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot create output folder" in err[0]
    assert blocker.read_text().startswith("a file")
