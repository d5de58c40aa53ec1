"""Procedural cel frames: reproducible from the seed, flat fills with dark outlines, motion in clips."""

import numpy as np

from engine.synth import cel_clip, cel_frame


def test_same_seed_same_frame_other_seed_other_frame():
    a, b = cel_frame(7, 96, 64), cel_frame(7, 96, 64)
    assert a.dtype == np.uint8 and a.shape == (64, 96, 3)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - cel_frame(8, 96, 64)).mean() > 5


def test_cel_look_flat_fills_and_dark_ink():
    img = cel_frame(3, 256, 256).astype(np.float32)
    luma = img.mean(axis=2)
    assert (luma < 60).mean() > 0.005  # ink lines exist
    # Most of the picture is flat: small neighbour differences almost everywhere.
    grad = np.abs(np.diff(luma, axis=1))
    assert np.median(grad) < 1.5


def test_clip_moves_smoothly():
    frames = list(cel_clip(5, 6, 128, 96))
    diffs = [np.abs(frames[i + 1].astype(int) - frames[i]).mean() for i in range(5)]
    assert all(0 < d < 20 for d in diffs)
