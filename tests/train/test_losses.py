"""Loss building blocks: VGG19 layout, pixel losses, GAN labels, USM, schedule, PSNR/SSIM."""

from __future__ import annotations

import numpy as np
import torch

from engine.quality import psnr
from engine.train.losses import CONV_INDEX, VGG19Features, gan_loss, pixel_loss, usm_sharpen
from engine.train.metrics import ssim


def test_vgg19_layout_matches_torchvision_indices():
    assert CONV_INDEX["conv1_1"] == 0 and CONV_INDEX["conv1_2"] == 2 and CONV_INDEX["conv2_2"] == 7
    assert CONV_INDEX["conv3_4"] == 16 and CONV_INDEX["conv4_4"] == 25 and CONV_INDEX["conv5_4"] == 34
    vgg = VGG19Features(["conv1_2", "conv2_1"])
    feats = vgg(torch.rand(1, 3, 16, 16))
    assert feats["conv1_2"].shape == (1, 64, 16, 16) and feats["conv2_1"].shape == (1, 128, 8, 8)
    assert not any(p.requires_grad for p in vgg.parameters())


def test_pixel_and_gan_losses():
    a, b = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    assert float(pixel_loss("l1", a, b)) == 0.5
    assert abs(float(pixel_loss("charbonnier", a, b)) - 0.5) < 1e-5
    logits = torch.zeros(1, 1, 4, 4)  # p = 0.5: BCE is ln 2 for any label
    assert abs(float(gan_loss(logits, 0.9)) - np.log(2)) < 1e-6
    # The capped real label: the loss is lowest at p = 0.9, not p → 1.
    lo = float(gan_loss(torch.full((1, 1, 2, 2), float(np.log(9))), 0.9))
    hi = float(gan_loss(torch.full((1, 1, 2, 2), 10.0), 0.9))
    assert lo < hi


def test_usm_sharpen_keeps_range_and_shape():
    img = torch.zeros(1, 3, 24, 24)
    img[:, :, :, 12:] = 0.8
    out = usm_sharpen(img)
    assert out.shape == img.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert float(out[0, 0, 0, 13]) > 0.8  # the bright side of the edge is lifted


def test_psnr_ssim():
    rng = np.random.default_rng(0)
    a = rng.random((32, 32, 3)).astype(np.float32)
    assert psnr(a, a) == 99.0 and abs(ssim(a, a) - 1) < 1e-6
    b = np.clip(a + 0.05, 0, 1)
    assert 20 < psnr(a, b) < 40 and ssim(a, b) < 1


def test_schedule_warmup_multistep_and_cosine():
    from engine.train.config import config_from_dict
    from engine.train.trainer import _lr_lambda

    cfg = config_from_dict({"schedule": {"type": "multistep", "milestones": [10, 20], "gamma": 0.5,
                                         "warmup_iters": 4}, "train": {"total_iters": 30}})
    f = _lr_lambda(cfg)
    assert [f(s, 1e-4) for s in (0, 3, 5, 10, 25)] == [0.25, 1.0, 1.0, 0.5, 0.25]
    cfg = config_from_dict({"schedule": {"type": "cosine", "min_lr": 0}, "train": {"total_iters": 100}})
    f = _lr_lambda(cfg)
    assert f(0, 1e-4) == 1.0 and abs(f(50, 1e-4) - 0.5) < 1e-9 and f(100, 1e-4) == 0.0
