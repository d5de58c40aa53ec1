"""DRUNet in KAIR's layout and the UNet discriminator."""

from __future__ import annotations

import pytest
import torch

from engine.errors import ArchivistError
from engine.models import discriminator, drunet
from engine.models.files import detect_spec, load_model, save_safetensors
from engine.models.library import Library


def kair_unetres_shapes(in_nc: int, out_nc: int, nc: list[int], nb: int) -> dict[str, tuple[int, ...]]:
    """The keys and shapes of KAIR's ``UNetRes`` (models/network_unet.py) written out by hand.

    ``B.sequential`` flattens; a ResBlock is ``res = Sequential(conv, ReLU, conv)``; the strided
    down-conv is the last item of each ``m_down``, the transposed up-conv the first of each ``m_up``;
    no biases anywhere.
    """
    keys: dict[str, tuple[int, ...]] = {"m_head.weight": (nc[0], in_nc, 3, 3)}

    def blocks(prefix: str, first: int, ch: int) -> None:
        for i in range(first, first + nb):
            keys[f"{prefix}.{i}.res.0.weight"] = (ch, ch, 3, 3)
            keys[f"{prefix}.{i}.res.2.weight"] = (ch, ch, 3, 3)

    for level in (1, 2, 3):
        blocks(f"m_down{level}", 0, nc[level - 1])
        keys[f"m_down{level}.{nb}.weight"] = (nc[level], nc[level - 1], 2, 2)
    blocks("m_body", 0, nc[3])
    for level in (3, 2, 1):
        keys[f"m_up{level}.0.weight"] = (nc[level], nc[level - 1], 2, 2)  # ConvTranspose2d: (in, out, k, k)
        blocks(f"m_up{level}", 1, nc[level - 1])
    keys["m_tail.weight"] = (out_nc, nc[0], 3, 3)
    return keys


def test_module_layout_is_kairs():
    """The full-size DRUNet has exactly drunet_color.pth's keys and shapes (32.6 M parameters)."""
    net = drunet.build(drunet.spec_for())
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert got == kair_unetres_shapes(4, 3, [64, 128, 256, 512], 4)
    assert round(sum(v.numel() for v in net.state_dict().values()) / 1e6, 1) == 32.6


@pytest.mark.parametrize("nc,nb", [((8, 16, 32, 64), 2), ((4, 8, 8, 16), 3)])
def test_kair_file_detects_loads_and_round_trips(tmp_path, nc, nb):
    """A bare KAIR state dict (as in drunet_color.pth), built from the key list above, not from our module."""
    g = torch.Generator().manual_seed(7)
    sd = {k: torch.randn(shape, generator=g) * 0.1 for k, shape in kair_unetres_shapes(4, 3, list(nc), nb).items()}
    path = tmp_path / "drunet_color.pth"
    torch.save(sd, path)
    loaded = load_model(path)
    spec = loaded.spec
    assert spec.arch == "drunet" and spec.hyper == dict(in_nc=4, out_nc=3, nc=list(nc), nb=nb)
    assert spec.takes_sigma and spec.size_multiple == 8 and spec.in_channels == 3 and spec.scale == 1
    x = torch.rand(1, 4, 24, 32, generator=g)
    with torch.no_grad():
        before = loaded.module(x)
    assert before.shape == (1, 3, 24, 32)

    lib = Library(tmp_path / "lib", builtin_dir=None)
    entry = lib.import_file(path, name="drunet")
    assert entry.role == "denoise" and entry.arch == "drunet" and entry.hyper["nc"] == list(nc)
    again = load_model(entry.path)
    assert again.spec == spec
    with torch.no_grad():
        assert torch.equal(again.module(x), before)
    out = lib.export("drunet", "pth", tmp_path / "back.pth")
    back = torch.load(out, weights_only=True)["params"]
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


def test_tiny_drunet_nb1_round_trips(tmp_path):
    spec = drunet.spec_for((8, 16, 32, 64), nb=1)
    torch.manual_seed(0)
    net = drunet.build(spec).eval()
    assert detect_spec(net.state_dict()) == spec
    save_safetensors(tmp_path / "d.safetensors", net.state_dict(), spec, role="denoise")
    loaded = load_model(tmp_path / "d.safetensors")
    assert loaded.spec == spec and loaded.metadata["role"] == "denoise"
    x = torch.rand(2, 4, 16, 40)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), net(x))


def test_sigma_channel_matters():
    torch.manual_seed(0)
    net = drunet.build(drunet.spec_for((8, 16, 32, 64), nb=1)).eval()
    img = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        low = net(torch.cat([img, torch.full((1, 1, 16, 16), 5 / 255)], 1))
        high = net(torch.cat([img, torch.full((1, 1, 16, 16), 50 / 255)], 1))
    assert not torch.allclose(low, high)


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (1, 3, 32, 48)])
def test_unet_discriminator_judges_every_pixel(shape):
    net = discriminator.UNetDiscriminatorSN(num_in_ch=3, num_feat=8)
    out = net(torch.rand(shape))
    assert out.shape == (shape[0], 1, shape[2], shape[3])
    out.mean().backward()  # trainable: gradients reach the first conv
    assert net.conv0.weight.grad is not None and net.conv0.weight.grad.abs().sum() > 0


def test_discriminator_is_recognised_but_not_loadable_as_a_model(tmp_path):
    sd = discriminator.UNetDiscriminatorSN(num_feat=8).state_dict()
    spec = detect_spec(sd)
    assert spec.arch == "unet_discriminator" and spec.hyper == dict(num_in_ch=3, num_feat=8)
    discriminator.build(spec).load_state_dict(sd, strict=True)
    torch.save({"params": sd}, tmp_path / "net_d_100.pth")
    with pytest.raises(ArchivistError, match=r"net_d_100\.pth: is a discriminator"):
        load_model(tmp_path / "net_d_100.pth")
