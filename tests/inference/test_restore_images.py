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


# -- orientation: applied exactly once, per format, whatever the decoder does itself -------------

def _marked():
    """A 20×40 picture with no symmetry: a white band left, a red block top right, a blue block bottom."""
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :10] = 255
    a[:5, 30:] = (255, 0, 0)
    a[-4:, 20:24] = (0, 0, 255)
    return a


FORMATS = [("jpg", {"quality": 100}), ("png", {}), ("tiff", {}), ("webp", {"lossless": True})]


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("suffix, options", FORMATS, ids=[f[0] for f in FORMATS])
def test_orientation_applied_exactly_once(tmp_path, suffix, options, orientation):
    from PIL import Image, ImageOps

    im = Image.fromarray(_marked())
    exif = im.getexif()
    exif[0x0112] = orientation
    src = tmp_path / f"o{orientation}.{suffix}"
    im.save(src, exif=exif, **options)
    # Pillow's exif_transpose is the reference: the picture as a viewer shows it.
    with Image.open(src) as shown:
        expected = np.asarray(ImageOps.exif_transpose(shown).convert("RGB")).astype(np.int64)
    got = np.rint(read_picture(src).rgb * 255).astype(np.int64)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 8  # JPEG at quality 100 moves a few levels at the edges


@pytest.mark.parametrize("suffix, options", FORMATS, ids=[f[0] for f in FORMATS])
def test_the_decoder_is_handed_an_upright_tag(tmp_path, suffix, options):
    """Whatever a reader does with the tag (OpenCV 5 turns TIFFs, OpenCV 4 with IMREAD_UNCHANGED turns
    nothing, IMREAD_COLOR turns JPEGs), the bytes it gets say 1, so the picture reaches us as stored."""
    from PIL import Image

    from engine.inference.imageio import take_orientation

    im = Image.fromarray(_marked())
    exif = im.getexif()
    exif[0x0112] = 6
    src = tmp_path / f"six.{suffix}"
    im.save(src, exif=exif, **options)
    as_stored = _marked().astype(np.int64)
    if suffix == "jpg":  # lossy: as Pillow decodes it (it does not turn a JPEG unless asked)
        with Image.open(src) as stored:
            as_stored = np.asarray(stored.convert("RGB")).astype(np.int64)
    data = np.fromfile(str(src), dtype=np.uint8)
    assert take_orientation(data) == 6
    assert take_orientation(data.copy()) == 1  # now upright in the bytes
    for flags in (cv2.IMREAD_UNCHANGED, cv2.IMREAD_COLOR):
        decoded = cv2.imdecode(data, flags)
        assert decoded.shape[:2] == (20, 40), flags
        assert np.abs(decoded[..., ::-1][..., :3].astype(np.int64) - as_stored).max() <= 8
    mended = tmp_path / f"mended.{suffix}"
    data.tofile(str(mended))
    with Image.open(mended) as again:  # a PNG's chunk checksum was written again: still a valid file
        again.load()
        assert again.getexif().get(0x0112) == 1


# -- black and white stays black and white -------------------------------------------------------

def _gray_pattern(depth: int) -> np.ndarray:
    y, x = np.mgrid[0:48, 0:64].astype(np.float32)
    g = np.clip(0.1 + 0.8 * (x / 63) * (y / 47) + 0.3 * ((x // 8 + y // 8) % 2), 0, 1)
    peak = 65535 if depth == 16 else 255
    return np.rint(g * peak).astype(np.uint16 if depth == 16 else np.uint8)


def _expected_gray(net_path, gray: np.ndarray, peak: int) -> np.ndarray:
    """The chain run on the gray replicated into three channels, made gray again with BT.601 weights."""
    from engine.inference.chain import Chain, Stage

    chain = Chain.load([Stage(str(net_path))], device="cpu", precision="fp32")
    rgb = np.repeat((gray.astype(np.float32) / peak)[..., None], 3, axis=2)
    out = chain.run(rgb)
    y = 0.299 * out[..., 0] + 0.587 * out[..., 1] + 0.114 * out[..., 2]
    return np.clip(np.floor(y * peak + 0.5), 0, peak)


@pytest.mark.parametrize("name, depth", [("l8.png", 8), ("i16.png", 16), ("gray.jpg", 8), ("g8.tiff", 8),
                                         ("g16.tiff", 16)])
def test_gray_image_stays_gray(tmp_path, tiny_compact, name, depth):
    from PIL import Image

    model, _ = tiny_compact
    gray = _gray_pattern(depth)
    src = tmp_path / name
    if name.endswith(".png") and depth == 8:
        Image.fromarray(gray, mode="L").save(src)
    elif name.endswith(".png"):
        Image.fromarray(gray.astype(np.int32), mode="I").convert("I;16").save(src)
    elif name.endswith(".jpg"):
        Image.fromarray(gray, mode="L").save(src, quality=95)
    else:
        assert cv2.imwrite(str(src), gray)
    stored = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    assert stored.ndim == 2 and stored.dtype == gray.dtype  # the input really is a gray file
    out = tmp_path / ("out" + (".tiff" if name.endswith(".tiff") else ".png"))
    assert main(["restore", str(src), "-o", str(out), "-m", str(model)]) == 0
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.ndim == 2 and got.dtype == gray.dtype
    peak = 65535 if depth == 16 else 255
    assert np.abs(got.astype(np.int64) - _expected_gray(model, stored, peak)).max() <= 1


def test_rgb_with_equal_channels_is_black_and_white_unless_color(tmp_path, tiny_compact, caplog):
    """A black-and-white photo saved as an RGB JPEG (chroma neutral, channels within a level)."""
    import logging

    from PIL import Image

    model, _ = tiny_compact
    gray = _gray_pattern(8)
    src = tmp_path / "scan.jpg"
    Image.fromarray(np.repeat(gray[..., None], 3, axis=2)).save(src, quality=92)
    assert cv2.imread(str(src), cv2.IMREAD_UNCHANGED).ndim == 3
    with caplog.at_level(logging.WARNING):
        assert main(["restore", str(src), "-o", str(tmp_path / "bw.png"), "-m", str(model)]) == 0
    assert cv2.imread(str(tmp_path / "bw.png"), cv2.IMREAD_UNCHANGED).ndim == 2
    assert any("--color" in r.getMessage() for r in caplog.records)
    assert main(["restore", str(src), "-o", str(tmp_path / "colour.png"), "-m", str(model), "--color"]) == 0
    colour = cv2.imread(str(tmp_path / "colour.png"), cv2.IMREAD_UNCHANGED).astype(np.int64)
    assert colour.ndim == 3 and np.abs(colour[..., 0] - colour[..., 1]).max() > 4  # the tiny net's tint

