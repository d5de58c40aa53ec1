"""Black-and-white video stays black and white: gray formats, neutral-chroma YUV, every encoder.

The chain is a real tiny Compact, whose random weights put a colour cast on a gray frame: before
the fix a gray source came out tinted (RGB FFV1, or YUV with chroma off neutral).
"""

from __future__ import annotations

import json
import logging
from fractions import Fraction

import av
import numpy as np
import pytest

from archivist_tui.cli import main
from engine.inference.tone import luma, replicate
from engine.video.options import VideoOptions
from engine.video.plan import plan_restore
from engine.video.restore import restore_video
from tests.video.conftest import read_video


def _gray_planes(path):
    """The stored gray planes of a gray-format file (what FFV1 gray/gray16le hold), and its pixel format."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        pix = v.codec_context.pix_fmt
        planes = [f.to_ndarray() for f in c.decode(v)]
    return planes, pix


def _spread(frames) -> int:
    """The largest difference between two colour channels of any pixel of decoded RGB frames."""
    a = np.stack(frames).astype(np.int64)
    return int(max(np.abs(a[..., 0] - a[..., 1]).max(), np.abs(a[..., 1] - a[..., 2]).max()))


@pytest.mark.parametrize("pix_fmt, peak", [("gray", 255), ("gray16le", 65535)])
def test_gray_ffv1_stays_gray_and_is_the_model_on_replicated_channels(clip, chain, tmp_path, pix_fmt, peak):
    src = clip("bw.mkv", codec="ffv1", pix_fmt=pix_fmt, frames=4)
    out = tmp_path / "out.mkv"
    restore_video(src, out, chain, VideoOptions())
    got, pix = _gray_planes(out)
    assert pix == pix_fmt
    source, _ = _gray_planes(src)
    for before, after in zip(source, got, strict=True):
        expected = luma(chain.run(replicate(before.astype(np.float32) / peak)))
        expected = np.clip(np.rint(expected * peak), 0, peak)
        assert np.abs(after.astype(np.int64) - expected).max() <= 1


@pytest.mark.parametrize("codec, suffix", [("x264", ".mp4"), ("x265", ".mkv"), ("prores", ".mov"), ("x264", ".mkv")])
def test_neutral_yuv420p_source_is_restored_in_black_and_white(clip, chain, tmp_path, caplog, codec, suffix):
    """The commonest black-and-white film: plain yuv420p whose chroma is neutral."""
    src = clip("film.mp4", gray=True, frames=6)
    out = tmp_path / f"out{suffix}"
    plans = []
    with caplog.at_level(logging.WARNING):
        restore_video(src, out, chain, VideoOptions(codec=codec, preset="ultrafast" if codec != "prores" else None),
                      on_plan=plans.append)
    _, _, frames, facts = read_video(out)
    assert len(frames) == 6
    assert _spread(frames) == 0, "decoding the output must give R = G = B exactly"
    told = [r.getMessage() for r in caplog.records if "neutral chroma" in r.getMessage()]
    assert len(told) == 1 and "--color" in told[0]
    assert plans[0].to_dict()["tone"] == "gray"
    assert "black and white" in plans[0].streams.lines()[0]


def test_color_overrides_and_gray_forces(clip, chain, tmp_path):
    src = clip("film.mp4", gray=True, frames=3)
    restore_video(src, tmp_path / "colour.mp4", chain, VideoOptions(preset="ultrafast", tone="color"))
    # The tiny network tints a gray frame: in colour that tint reaches the file.
    assert _spread(read_video(tmp_path / "colour.mp4")[2]) > 4
    colour = clip("colour.mkv", frames=3)
    restore_video(colour, tmp_path / "forced.mkv", chain, VideoOptions(tone="gray"))
    assert _gray_planes(tmp_path / "forced.mkv")[1] == "gray"


def test_colour_source_stays_colour(clip, chain, tmp_path):
    src = clip("colour.mp4", frames=3)
    assert plan_restore(src, tmp_path / "o.mkv").to_dict()["tone"] == "color"
    restore_video(src, tmp_path / "o.mkv", chain, VideoOptions())
    _, _, frames, facts = read_video(tmp_path / "o.mkv")
    assert facts["pix_fmt"] == "bgr0" and _spread(frames) > 50


def test_gray_image_sequence_out_and_in(clip, chain, tmp_path):
    import cv2

    src = clip("film.mp4", gray=True, frames=3)
    restore_video(src, f"{tmp_path}/frames/", chain, VideoOptions())
    files = sorted((tmp_path / "frames").iterdir())
    assert len(files) == 3
    assert all(cv2.imread(str(f), cv2.IMREAD_UNCHANGED).ndim == 2 for f in files)
    # Gray images in, FFV1 gray out.
    restore_video(tmp_path / "frames", tmp_path / "back.mkv", chain, VideoOptions(fps=Fraction(24)))
    assert _gray_planes(tmp_path / "back.mkv")[1] == "gray"


def test_ten_bit_gray_in_hevc_keeps_neutral_chroma(clip, chain, tmp_path):
    src = clip("bw16.mkv", codec="ffv1", pix_fmt="gray16le", frames=3)
    out = tmp_path / "out.mkv"
    restore_video(src, out, chain, VideoOptions(codec="x265", preset="ultrafast"))
    _, _, frames, facts = read_video(out)
    assert facts["pix_fmt"] == "yuv420p10le" and frames[0].dtype == np.uint16
    assert _spread(frames) == 0


def test_cli_color_and_gray_flags(clip, tiny_compact, tmp_path, capsys):
    model = str(tiny_compact[0])
    src = clip("film.mp4", gray=True, frames=3)
    out = tmp_path / "plan.mkv"
    assert main(["restore", str(src), "-m", model, "-o", str(out), "--plan", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tone"] == "gray"
    assert main(["restore", str(src), "-m", model, "-o", str(out), "--plan", "--json", "--color"]) == 0
    assert json.loads(capsys.readouterr().out)["tone"] == "color"
    assert main(["restore", str(src), "-m", model, "-o", str(out), "--color", "--gray"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_queued_restore_keeps_tone_and_pad_even(clip, tiny_compact, tmp_path, capsys):
    from engine.queue.kinds.restore import _video_options
    from engine.queue.store import Store

    src = clip("bw.mkv", codec="ffv1", pix_fmt="gray", frames=3, width=63, height=47)
    out = tmp_path / "out.mp4"
    assert main(["restore", str(src), "-o", str(out), "-m", str(tiny_compact[0]), "--queue", "--color",
                 "--pad-even"]) == 0
    job = Store().get(int(capsys.readouterr().out))
    assert job.spec["tone"] == "color" and job.spec["video"]["pad_even"] is True
    options = _video_options(job.spec["video"], tone=job.spec["tone"])
    assert (options.tone, options.pad_even) == ("color", True)
    assert main(["restore", str(src), "-o", str(tmp_path / "gray.mp4"), "-m", str(tiny_compact[0]), "--queue",
                 "--gray"]) == 0
    assert Store().get(int(capsys.readouterr().out)).spec["tone"] == "gray"
