"""Photographic frames: reproducible from the seed, gray when asked, with the statistics of photographs."""

import numpy as np
import pytest

from engine.synth import cel_frame, photo_frame


def _spectrum_slope(img: np.ndarray) -> float:
    """Slope of the radially averaged power spectrum of the luma in log-log (photographs: about −2
    to −3.5; the real photographs engine.evaluate uses measure −2.9 and −3.6)."""
    luma = img.astype(np.float64).mean(axis=2)
    side = min(luma.shape)
    luma = luma[:side, :side]
    window = np.outer(np.hanning(side), np.hanning(side))
    power = np.abs(np.fft.fftshift(np.fft.fft2((luma - luma.mean()) * window))) ** 2
    yy, xx = np.mgrid[-side // 2:side - side // 2, -side // 2:side - side // 2]
    radius = np.sqrt(yy ** 2 + xx ** 2).astype(int)
    profile = np.bincount(radius.ravel(), power.ravel()) / np.bincount(radius.ravel())
    freqs = np.arange(4, side // 2)
    return float(np.polyfit(np.log(freqs), np.log(profile[freqs]), 1)[0])


def test_same_seed_same_frame_other_seed_other_frame_any_size():
    a, b = photo_frame(11, 100, 60), photo_frame(11, 100, 60)
    assert a.dtype == np.uint8 and a.shape == (60, 100, 3)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - photo_frame(12, 100, 60)).mean() > 5
    with pytest.raises(ValueError, match="too small"):
        photo_frame(1, 4, 4)


def test_black_and_white_frames_have_equal_channels_and_the_same_scene():
    colour, gray = photo_frame(5, 96, 96), photo_frame(5, 96, 96, gray=True)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    assert np.corrcoef(colour.mean(axis=2).ravel(), gray[..., 0].ravel())[0, 1] > 0.8


def test_photographic_statistics_unlike_cels():
    """Texture everywhere (few flat pixels, thousands of colours), a full tonal range without
    clipping, and a power spectrum falling as photographs' do."""
    slopes = []
    for seed in range(8):
        img = photo_frame(seed, 192, 192)
        luma = img.astype(np.float32).mean(axis=2)
        flat = (np.abs(np.diff(luma, axis=1)) < 0.5).mean()
        colours = len(np.unique(img.reshape(-1, 3), axis=0))
        assert flat < 0.6 and colours > 3000, (seed, flat, colours)
        assert np.percentile(luma, 99) - np.percentile(luma, 1) > 90, seed
        assert ((luma < 1) | (luma > 254)).mean() < 0.05, seed
        slopes.append(_spectrum_slope(img))
    assert -4.0 < np.median(slopes) < -2.3, slopes
    cel = cel_frame(0, 192, 192)
    assert (np.abs(np.diff(cel.astype(np.float32).mean(axis=2), axis=1)) < 0.5).mean() > 0.9
    assert len(np.unique(cel.reshape(-1, 3), axis=0)) < 1500
