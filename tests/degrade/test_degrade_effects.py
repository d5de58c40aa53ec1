"""Each effect changes the image the way the physics says it should."""

from __future__ import annotations

import numpy as np
import pytest

from engine.degrade import degrade
from engine.errors import ArchivistError

from .helpers import flat, only


def run(effect: str, img: np.ndarray, seed: int = 1, **values) -> np.ndarray:
    lq, record = degrade(img, only(effect, **values), seed)
    assert record["effects"][effect]["applied"] is True
    return lq


def test_grain_vanishes_toward_black_and_white_and_is_strongest_in_midtones():
    kw = dict(strength=20, size=1.0, monochrome=0.0, generations=1)
    std = {v: (run("grain", flat(v), **kw) - v).std() for v in (0.02, 0.5, 0.98)}
    assert std[0.5] > 0.02
    assert std[0.02] < std[0.5] * 0.15
    assert std[0.98] < std[0.5] * 0.15


def test_grain_blue_layer_is_noisiest():
    d = run("grain", flat(0.5), strength=15, blue_ratio=2.0, red_ratio=1.0, monochrome=0.0) - 0.5
    assert d[..., 2].std() > 1.5 * d[..., 1].std()


def test_grain_monochrome_is_the_same_in_every_layer():
    d = run("grain", flat(0.5), strength=15, monochrome=1.0) - 0.5
    assert np.allclose(d[..., 0], d[..., 2], atol=1e-5)


def test_grain_is_flakes_whose_size_is_a_parameter():
    def neighbour_corr(size):
        d = (run("grain", flat(0.5), strength=15, size=size, monochrome=1.0) - 0.5)[..., 1]
        return np.corrcoef(d[:, :-1].ravel(), d[:, 1:].ravel())[0, 1]

    assert neighbour_corr(4.0) > neighbour_corr(1.0) + 0.2


def test_grain_is_fresh_for_every_seed():
    a = run("grain", flat(0.5), seed=1, strength=10)
    b = run("grain", flat(0.5), seed=2, strength=10)
    assert np.abs(a - b).mean() > 0.005


def test_crease_lines_are_horizontal():
    d = np.abs(run("crease", flat(0.6), spacing=16, continuity=1.0, darken=0.5, displacement=0) - 0.6).mean(axis=2)
    rows, cols = d.mean(axis=1), d.mean(axis=0)
    assert rows.std() > 5 * cols.std()
    assert d.max() > 0.1


def test_crease_displaces_the_image_vertically_along_the_lines():
    h = w = 96
    vertical = np.repeat(np.linspace(0, 1, h, dtype=np.float32)[:, None, None], w, 1).repeat(3, 2)
    horizontal = np.ascontiguousarray(vertical.transpose(1, 0, 2))
    kw = dict(spacing=12, continuity=1.0, darken=0.0, displacement=6, color_shift=0.0)
    assert np.abs(run("crease", vertical, **kw) - vertical).max() > 0.02
    assert np.abs(run("crease", horizontal, **kw) - horizontal).max() < 1e-3


def test_emulsion_shift_misregisters_red_and_blue_in_opposite_directions():
    img = np.zeros((64, 64, 3), np.float32)
    img[:, 32:] = 1.0
    out = run("emulsion_shift", img, shift=4, angle=0, ghost=0.0)

    def edge(channel):
        return int(np.argmax(out[32, :, channel] > 0.5))

    assert edge(1) == 32
    assert edge(0) == 36
    assert edge(2) == 28


def test_emulsion_shift_ghost_is_a_faint_shifted_luma_copy():
    img = np.zeros((64, 64, 3), np.float32)
    img[:, 32:] = 1.0
    out = run("emulsion_shift", img, shift=6, angle=0, ghost=1.0, ghost_opacity=0.3)
    assert np.allclose(out[..., 0], out[..., 2], atol=1e-5)
    assert 0.05 < out[32, 34, 1] < 0.95


def test_debris_is_dark_on_a_positive_and_bright_on_a_negative():
    kw = dict(count=400, intensity=0.9, size=2)
    dark = run("debris", flat(0.5, 256), bright=0.0, **kw)
    bright = run("debris", flat(0.5, 256), bright=1.0, **kw)
    assert (dark < 0.45).sum() > 3 * (dark > 0.55).sum() > 0
    assert (bright > 0.55).sum() > 3 * (bright < 0.45).sum() > 0


def test_scratches_run_along_the_film():
    d = np.abs(run("scratches", flat(0.5, 128), count=3, hair_count=0, intensity=-0.8, length=1.0) - 0.5).mean(axis=2)
    cols, rows = d.sum(axis=0), d.sum(axis=1)
    # Long vertical scratches: a few columns hold the damage, every row has some.
    assert np.sort(cols)[-16:].sum() > 0.8 * cols.sum()
    assert (rows > 0).mean() > 0.5


def test_scratch_hairs_are_thin_and_short():
    out = run("scratches", flat(0.5, 128), count=0, hair_count=60, hair_length=20, intensity=0.8)
    changed = np.abs(out - 0.5).max(axis=2) > 0.02
    assert 0.005 < changed.mean() < 0.3


def test_micro_defects_are_dense_tiny_specks():
    import cv2

    out = run("micro_defects", flat(0.5, 256), dust_count=1000, smudge_count=0, intensity=0.8)
    changed = (np.abs(out - 0.5).max(axis=2) > 0.05).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(changed)
    assert n > 30
    assert np.median(stats[1:, cv2.CC_STAT_AREA]) <= 3


def test_stains_are_large_soft_and_strongest_in_midtones():
    img = flat(0.5, 128)
    img[:, 64:] = 0.99
    out = run("stains", img, large=1.0, speckle=0.0, large_count=6, large_size=0.5, large_strength=0.6)
    d = np.abs(out - img).max(axis=2)
    assert (d > 1 / 255).mean() > 0.05
    mid, white = d[:, :64], d[:, 64:]
    assert mid.max() > 2 * white.max()


def test_speckle_stains_are_coloured():
    d = run("stains", flat(0.5), large=0.0, speckle=1.0, speckle_strength=0.8) - 0.5
    assert np.abs(d).max() > 0.05
    assert np.abs(d[..., 0] - d[..., 2]).max() > 0.02


def test_emulsion_degradation_hits_the_victim_layer_hardest():
    for victim, index in (("red", 0), ("blue", 2)):
        d = run("emulsion_degradation", flat(0.35), strength=100, mix=0.5, victim=victim, others=0.2) - 0.35
        stds = d.reshape(-1, 3).std(axis=0)
        assert stds[index] > 3 * max(np.delete(stds, index))


def test_dye_fading_gives_a_magenta_cast_and_low_contrast_red_and_blue():
    ramp = np.repeat(np.linspace(0.05, 0.95, 128, dtype=np.float32)[None, :, None], 32, 0).repeat(3, 2)
    out = run("dye_fading", ramp, amount=0.5, magenta_ratio=0.1, yellow_ratio=1.0, base_fog=0.0)
    mean = out.reshape(-1, 3).mean(axis=0)
    assert mean[0] > mean[1] + 0.05 and mean[2] > mean[1] + 0.05
    span = out.reshape(-1, 3).max(axis=0) - out.reshape(-1, 3).min(axis=0)
    assert span[0] < span[1] and span[2] < span[1]


def test_color_cast_tints_the_whole_frame():
    out = run("color_cast", flat(0.5), strength=0.3, tint="warm", shadow_tint=0.0)
    r, g, b = out[0, 0]
    assert r > 0.55 and b < 0.45 and abs(g - 0.53) < 0.02


def test_luminance_grain_is_colourless():
    d = run("luminance_grain", flat(0.4), strength=20) - 0.4
    assert d.std() > 0.01
    assert np.allclose(d[..., 0], d[..., 2], atol=1e-5)


def test_banding_quantises_flat_gradients():
    ramp = np.repeat(np.linspace(0.2, 0.8, 256, dtype=np.float32)[None, :, None], 32, 0).repeat(3, 2)
    out = run("banding", ramp, levels=8, opacity=1.0, threshold=0.05)
    steps = np.abs(np.diff(out[16, :, 0]))
    assert np.abs(np.diff(ramp[16, :, 0])).max() < 0.003
    assert steps.max() > 0.1  # a band edge: one jump of a whole quantisation step
    assert (steps > 0.01).sum() <= 8


def test_blur_softens_and_anisotropic_blur_has_a_direction():
    stripes_x = np.zeros((64, 64, 3), np.float32)
    stripes_x[:, ::4] = 1.0  # vertical lines: detail along x
    stripes_y = np.ascontiguousarray(stripes_x.transpose(1, 0, 2))
    kw = dict(kind="anisotropic", sigma=3.0, anisotropy=4.0, angle=0.0)
    along_x = run("blur", stripes_x, **kw).std()
    along_y = run("blur", stripes_y, **kw).std()
    assert along_x < 0.5 * along_y
    assert run("blur", stripes_x, kind="gaussian", sigma=2.0).std() < 0.5 * stripes_x.std()


def test_vignette_darkens_the_corners():
    out = run("vignette", flat(0.8), strength=0.5, falloff=2.0, offset=0.0)
    assert out[0, 0, 0] < out[64, 64, 0] - 0.2


def test_flicker_changes_exposure_of_the_whole_frame():
    outs = [run("flicker", flat(0.5), seed=s, amplitude=0.3, gradient=0.0) for s in range(4)]
    for out in outs:
        assert np.ptp(out) < 1e-5  # one gain for the whole frame
    assert np.ptp([o[0, 0, 0] for o in outs]) > 0.02


def test_gate_weave_leaves_stills_alone_unless_asked():
    img = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    lq, record = degrade(img, only("gate_weave", amplitude=4), 3)
    assert np.array_equal(lq, img)
    assert record["effects"]["gate_weave"] == {"enabled": True, "applied": False, "reason": "clip only",
                                               "params": record["effects"]["gate_weave"]["params"]}
    moved = run("gate_weave", img, amplitude=4, jitter=1.0, mode="always")
    assert np.abs(moved - img).mean() > 0.05


def test_texture_trap_only_touches_flat_areas():
    img = flat(0.5, 128)
    img[:, 64:, :] = np.where((np.arange(64) // 2) % 2 == 0, 0.1, 0.9)[None, :, None]
    d = np.abs(run("texture_trap", img, intensity=0.4, threshold=0.05) - img).mean(axis=2)
    assert d[:, :48].mean() > 0.01
    assert d[:, 80:].mean() < 0.1 * d[:, :48].mean()


def _blockiness(img: np.ndarray) -> float:
    """Mean jump across 8-pixel block boundaries over the mean jump elsewhere."""
    y = img.astype(np.float32).mean(axis=2)
    jumps = np.abs(np.diff(y, axis=1)).mean(axis=0)
    at_edges = jumps[7::8].mean()
    inside = np.delete(jumps, np.s_[7::8]).mean()
    return float(at_edges / max(inside, 1e-6))


@pytest.mark.parametrize("codec,values", [("jpeg", {"jpeg_quality": 8}), ("mpeg2", {"mpeg2_qscale": 31})])
def test_compression_makes_8x8_blocks(codec, values):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)
    smooth = (0.3 + 0.4 * np.sin(xx / 9.0) * np.cos(yy / 11.0))[..., None].repeat(3, 2)
    img = np.clip(smooth + rng.normal(0, 0.03, smooth.shape), 0, 1).astype(np.float32)
    out = run("compression", img, codec=codec, **values)
    assert _blockiness(out) > 1.5 * _blockiness(img)
    assert out.dtype == np.float32


def test_compression_h264_is_real_and_deterministic():
    img = (np.random.default_rng(1).random((72, 88, 3)) * 255).astype(np.uint8)  # not a multiple of 16
    a = run("compression", img, codec="h264", h264_qp=45)
    b = run("compression", img, codec="h264", h264_qp=45)
    assert a.shape == img.shape and np.array_equal(a, b)
    assert np.abs(a.astype(int) - img).mean() > 10


def test_a_missing_codec_is_an_error_not_a_skip(monkeypatch):
    import av

    def missing(name, mode):
        raise av.codec.codec.UnknownCodecError(name)

    monkeypatch.setattr(av.CodecContext, "create", missing)
    with pytest.raises(ArchivistError, match="compression: codec 'mpeg2'"):
        degrade(flat(0.5, 32), only("compression", codec="mpeg2"), 1)


def test_compression_quality_is_honoured():
    rng = np.random.default_rng(2)
    # Grey noise: no chroma, so the error is the quantiser's, not 4:2:0 subsampling's.
    img = np.clip(0.5 + rng.normal(0, 0.1, (64, 64, 1)), 0, 1).repeat(3, 2).astype(np.float32)
    for codec, key, good, bad in (("mpeg2", "mpeg2_qscale", 2, 31), ("jpeg", "jpeg_quality", 95, 5),
                                  ("h264", "h264_qp", 10, 50)):
        err_good = np.abs(run("compression", img, codec=codec, **{key: good}) - img).mean()
        err_bad = np.abs(run("compression", img, codec=codec, **{key: bad}) - img).mean()
        assert err_bad > 1.5 * err_good, codec
