"""Odd frame sizes with encoders that subsample chroma: decided before any frame, written exactly.

Before: 321×241 into .mp4 failed ("cannot open encoder libx264 ... Generic error in an external
library", later "the planned streams cannot be written ... choose another --audio"), and ProRes
4:2:2 at an odd width wrote a damaged last column.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.video.options import VideoOptions
from engine.video.plan import plan_restore
from engine.video.restore import restore_video
from engine.video.synthetic import pattern_frame
from tests.video.conftest import read_video


@pytest.fixture
def odd(clip):
    # Lossless RGB source, so the restored frames can be compared with the pattern itself.
    return clip("odd.mkv", codec="ffv1", pix_fmt="bgr0", width=321, height=241, frames=3)


def _worst(frames, width, height) -> tuple[float, float]:
    """Mean absolute error over the frame and over its last column, against the source pattern."""
    whole, last = 0.0, 0.0
    for i, f in enumerate(frames):
        d = np.abs(f[:height, :width].astype(np.float64) - pattern_frame(i, width, height))
        whole, last = max(whole, d.mean()), max(last, d[:, -1].mean())
    return whole, last


@pytest.mark.parametrize("codec, suffix, pix_fmt", [("x264", ".mp4", "yuv444p"), ("x265", ".mkv", "yuv444p"),
                                                    ("prores", ".mov", "yuv444p10le")])
def test_odd_size_is_written_exactly_in_444_with_one_warning(odd, identity_chain, tmp_path, caplog, codec, suffix,
                                                             pix_fmt):
    out = tmp_path / f"out{suffix}"
    with caplog.at_level(logging.WARNING):
        plan = plan_restore(odd, out, VideoOptions(codec=codec))
        assert plan.to_dict()["pix_fmt"] == pix_fmt and plan.to_dict()["size"] == "321x241"
        restore_video(odd, out, identity_chain, VideoOptions(codec=codec, preset="ultrafast" if codec != "prores"
                                                             else None))
    warnings = [r.getMessage() for r in caplog.records if "--pad-even" in r.getMessage()]
    assert len(warnings) == 2  # once per plan: the --plan check above, then the run
    _, _, frames, facts = read_video(out)
    assert facts["pix_fmt"] == pix_fmt and frames[0].shape[:2] == (241, 321) and len(frames) == 3
    frames = [f if f.dtype == np.uint8 else np.rint(f / 257.0) for f in frames]
    whole, last = _worst(frames, 321, 241)
    assert whole < 4 and last < whole + 2  # the last column is as good as the rest


@pytest.mark.parametrize("codec, suffix, pix_fmt, size", [("x264", ".mp4", "yuv420p", (322, 242)),
                                                          ("x265", ".mp4", "yuv420p", (322, 242)),
                                                          ("prores", ".mov", "yuv422p10le", (322, 241))])
def test_pad_even_adds_one_edge_row_and_column(odd, identity_chain, tmp_path, codec, suffix, pix_fmt, size):
    out = tmp_path / f"out{suffix}"
    restore_video(odd, out, identity_chain, VideoOptions(codec=codec, pad_even=True,
                                                         preset="ultrafast" if codec != "prores" else None))
    _, _, frames, facts = read_video(out)
    assert facts["pix_fmt"] == pix_fmt and frames[0].shape[:2] == (size[1], size[0])
    frames = [f if f.dtype == np.uint8 else np.rint(f / 257.0) for f in frames]
    whole, _ = _worst(frames, 321, 241)
    assert whole < 15  # the picture in place (4:2:0 blurs the pattern's sharp colour edges)
    # The added column repeats the last one (within what 4:2:0 does to colour edges).
    f = frames[0].astype(np.float64)
    assert np.abs(f[:241, 321] - f[:241, 320]).mean() < 6


def test_explicit_422_prores_profile_at_odd_width_is_refused_up_front(odd, identity_chain, tmp_path, archivist_home):
    out = tmp_path / "out.mov"
    with pytest.raises(ArchivistError, match="use pad_even, or encoder_opts profile=4"):
        restore_video(odd, out, identity_chain, VideoOptions(codec="prores", encoder_opts={"profile": "3"}))
    jobs = archivist_home / "jobs"
    assert not out.exists() and not (jobs.exists() and any(jobs.iterdir()))


def test_odd_height_only_keeps_prores_422(clip, identity_chain, tmp_path):
    src = clip("tall.mkv", codec="ffv1", pix_fmt="bgr0", width=64, height=47, frames=2)
    assert plan_restore(src, tmp_path / "o.mov").to_dict()["pix_fmt"] == "yuv422p10le"


def test_cli_pad_even_and_plan(odd, tiny_compact, tmp_path, capsys):
    import json

    model = str(tiny_compact[0])
    out = tmp_path / "out.mp4"
    assert main(["restore", str(odd), "-m", model, "-o", str(out), "--plan", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pix_fmt"] == "yuv444p" and doc["size"] == "321x241"
    assert main(["restore", str(odd), "-m", model, "-o", str(out), "--plan", "--json", "--pad-even"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pix_fmt"] == "yuv420p" and doc["size"] == "322x242"
    assert "padded to 322x242" in doc["streams"][0]["reason"]
    assert main(["restore", str(odd), "-m", model, "-o", str(out), "--pad-even", "--preset", "ultrafast"]) == 0
    assert read_video(out)[2][0].shape[:2] == (242, 322)
