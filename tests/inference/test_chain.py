"""The chain: strengths, DRUNet's σ channel, tiling equal to untiled, parsing, bad stages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.imagefiles import write_image
from engine.inference.chain import Chain, Stage, parse_stage
from engine.inference.tiling import run_tiled


def _reference(net, img, clamp=True):
    with torch.no_grad():
        x = torch.from_numpy(img).permute(2, 0, 1)[None]
        out = net(x)[0].permute(1, 2, 0)
        return (out.clamp(0, 1) if clamp else out).numpy()


def test_parse_stage():
    assert parse_stage("medium") == Stage("medium", 1.0, None)
    assert parse_stage("medium:0.5") == Stage("medium", 0.5, None)
    assert parse_stage("drunet:0.5:5") == Stage("drunet", 0.5, 5.0)
    assert parse_stage("/models/a:b.pth:0.3") == Stage("/models/a:b.pth", 0.3, None)
    with pytest.raises(ArchivistError, match="strength 1.5 out of range"):
        parse_stage("m:1.5")
    with pytest.raises(ArchivistError, match="sigma 80 out of range"):
        parse_stage("m:0.5:80")


@pytest.mark.parametrize("text, words", [("archivist-starter:abc", "'abc' is not a number"),
                                         ("medium:0.5:x", "'x' is not a number"),
                                         ("medium:0.5:1:2", "more than two numbers")])
def test_a_stage_whose_strength_is_not_a_number_says_so(text, words, archivist_home, tmp_path, capsys):
    """A library name holds no ':', so 'NAME:abc' is a bad strength, not a model called 'NAME:abc'."""
    with pytest.raises(ArchivistError, match=words):
        parse_stage(text)
    write_image(tmp_path / "in.png", np.zeros((16, 16, 3), np.uint8))
    assert main(["restore", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "-m", text]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "no model named" not in err


def test_single_stage_matches_network(tiny_compact, rgb_image):
    path, net = tiny_compact
    chain = Chain.load([Stage(str(path))], device="cpu")
    np.testing.assert_allclose(chain.run(rgb_image), _reference(net, rgb_image), atol=1e-5)
    assert chain.scale == 1 and chain.device.type == "cpu"


def test_strength_blends_with_input(tiny_compact, rgb_image):
    path, net = tiny_compact
    full = _reference(net, rgb_image, clamp=False)
    half = Chain.load([Stage(str(path), 0.5)], device="cpu").run(rgb_image)
    np.testing.assert_allclose(half, np.clip(rgb_image + 0.5 * (full - rgb_image), 0, 1), atol=1e-5)
    zero = Chain.load([Stage(str(path), 0.0)], device="cpu").run(rgb_image)
    np.testing.assert_allclose(zero, rgb_image, atol=1e-6)


def test_two_stage_chain_with_drunet_sigma(tiny_compact, tiny_drunet, rgb_image):
    cpath, cnet = tiny_compact
    dpath, dnet = tiny_drunet
    chain = Chain.load([Stage(str(cpath)), Stage(str(dpath), 0.5, 5.0)], device="cpu")
    first = _reference(cnet, rgb_image, clamp=False)
    with torch.no_grad():
        x = torch.from_numpy(first).permute(2, 0, 1)[None]
        x = torch.cat([x, torch.full_like(x[:, :1], 5 / 255)], 1)
        second = dnet(x)[0].permute(1, 2, 0).numpy()
    expected = np.clip(first + 0.5 * (second - first), 0, 1)
    np.testing.assert_allclose(chain.run(rgb_image), expected, atol=1e-5)
    assert chain.describe() == "tiny ×1 › tinydrunet ×0.5 σ5"
    ident = chain.identity()
    assert [i["strength"] for i in ident] == [1.0, 0.5] and len(ident[0]["sha256"]) == 64


def test_drunet_odd_sizes_are_padded(tiny_drunet):
    path, _ = tiny_drunet
    img = np.random.default_rng(1).random((37, 45, 3), dtype=np.float32)
    out = Chain.load([Stage(str(path))], device="cpu").run(img)
    assert out.shape == img.shape


def test_sigma_for_compact_refused(tiny_compact):
    path, _ = tiny_compact
    with pytest.raises(ArchivistError, match="takes no noise level"):
        Chain.load([Stage(str(path), 1.0, 5.0)], device="cpu")


def test_tiled_matches_untiled_away_from_borders():
    from engine.models import compact

    torch.manual_seed(3)
    net = compact.build(compact.spec_for(8, 4, 1)).eval()  # receptive field 13 px
    x = torch.rand(1, 3, 150, 190)
    with torch.no_grad():
        full = net(x)
        tiled = run_tiled(net, x, tile=64, overlap=16)
    assert tiled.shape == full.shape
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert (tiled[inner] - full[inner]).abs().max().item() < 1 / 255


def test_tiled_scale_two():
    from engine.models import compact

    torch.manual_seed(4)
    net = compact.build(compact.spec_for(8, 2, 2)).eval()
    x = torch.rand(1, 3, 100, 90)
    with torch.no_grad():
        full = net(x)
        tiled = run_tiled(net, x, tile=64, overlap=16, scale=2)
    assert tiled.shape == (1, 3, 200, 180)
    assert (tiled[..., 16:-16, 16:-16] - full[..., 16:-16, 16:-16]).abs().max().item() < 1 / 255


def test_chain_tile_option_gives_same_picture(tiny_compact):
    path, _ = tiny_compact
    img = np.random.default_rng(2).random((130, 150, 3), dtype=np.float32)
    whole = Chain.load([Stage(str(path))], device="cpu").run(img)
    tiled = Chain.load([Stage(str(path))], device="cpu", tile=64, tile_overlap=16).run(img)
    assert np.abs(whole - tiled)[4:-4, 4:-4].max() < 1 / 255


def test_bad_tile_and_device(tiny_compact):
    path, _ = tiny_compact
    with pytest.raises(ArchivistError, match="^tile = 10 invalid: allowed 0 \\(no tiling\\) or an integer 64 or more \\(pixels\\)$"):
        Chain.load([Stage(str(path))], device="cpu", tile=10)
    with pytest.raises(ArchivistError, match="^device = .* invalid: allowed auto, cpu, cuda or cuda:N"):
        Chain.load([Stage(str(path))], device="gpu7")
    if not torch.cuda.is_available():
        with pytest.raises(ArchivistError, match="CUDA is not available"):
            Chain.load([Stage(str(path))], device="cuda")
        with pytest.raises(ArchivistError, match="fp16 needs a CUDA device"):
            Chain.load([Stage(str(path))], device="cpu", precision="fp16")


def test_bf16_on_cpu_runs(tiny_compact, rgb_image):
    path, net = tiny_compact
    out = Chain.load([Stage(str(path))], device="cpu", precision="bf16").run(rgb_image)
    assert np.abs(out - _reference(net, rgb_image)).max() < 0.05


def test_model_with_wrong_channels_refused(tmp_path):
    from engine.models import compact
    from engine.models.files import save_safetensors

    spec = compact.spec_for(8, 2, 1, channels=1)
    save_safetensors(tmp_path / "gray.safetensors", compact.build(spec).state_dict(), spec)
    with pytest.raises(ArchivistError, match="1 input and 1 output channels"):
        Chain.load([Stage(str(tmp_path / "gray.safetensors"))], device="cpu")


def test_unknown_model_name_lists_library():
    with pytest.raises(ArchivistError, match="no model named 'nope'"):
        Chain.load([Stage("nope")], device="cpu")


@pytest.mark.parametrize("size", [(64, 65), (65, 200), (129, 127), (300, 70)])
def test_tiling_covers_every_pixel(size):
    x = torch.rand(1, 3, *size)
    out = run_tiled(lambda t: t * 2, x, tile=64, overlap=40)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, x * 2, atol=1e-5)


def test_integer_frames_convert_on_device(tiny_compact, rgb_image):
    path, net = tiny_compact
    chain = Chain.load([Stage(str(path))], device="cpu")
    as_float = chain.run(rgb_image)
    u8 = np.round(rgb_image * 255).astype(np.uint8)
    out8 = chain.run_batch(u8[None])[0]
    assert out8.dtype == np.uint8 and out8.shape == u8.shape
    expected8 = np.round(np.clip(chain.run(u8.astype(np.float32) / 255), 0, 1) * 255)
    assert np.abs(out8.astype(int) - expected8).max() <= 1
    u16 = np.round(rgb_image * 65535).astype(np.uint16)
    out16 = chain.run(u16)
    assert out16.dtype == np.uint16
    assert np.abs(out16 / 65535.0 - as_float).max() < 2e-4
    with pytest.raises(ArchivistError, match="must be uint8, uint16 or float32"):
        chain.run(rgb_image.astype(np.float64))


@pytest.mark.parametrize("size", [(37, 45), (41, 64), (64, 51)])
def test_drunet_borders_match_the_reference_padding(tiny_drunet, size):
    """At a size that is not a multiple of 8 DRUNet runs as KAIR runs it: the frame and its noise map
    padded on the bottom and right by repeating the edge (``ReplicationPad2d``), then cropped."""
    path, net = tiny_drunet
    h, w = size
    img = np.random.default_rng(2).random((h, w, 3), dtype=np.float32)
    sigma = 15.0
    got = Chain.load([Stage(str(path), 1.0, sigma)], device="cpu", precision="fp32").run(img)

    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    x = torch.cat([x, torch.full_like(x[:, :1], sigma / 255.0)], dim=1)
    pad = torch.nn.ReplicationPad2d((0, -w % 8, 0, -h % 8))
    with torch.no_grad():
        ref = net(pad(x))[..., :h, :w].clamp(0, 1)[0].permute(1, 2, 0).numpy()
    assert np.abs(got - ref).max() < 1e-5
