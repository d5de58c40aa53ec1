"""``archivist demo``: the whole idea in a few minutes, with nothing downloaded.

A short clean clip of procedural cel animation (with a tune) is aged with the ``normal`` profile in
clip mode, restored with the starter model through the real video pipeline, and measured: PSNR of
the damaged and of the restored clip against the clean one, and a side-by-side picture whose
panels are labelled clean, damaged and restored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ArchivistError
from engine.quality import psnr

log = logging.getLogger(__name__)

STARTER_MODEL = "archivist-starter"


@dataclass
class DemoResult:
    """The files written and the figures measured."""

    clean: Path
    damaged: Path
    restored: Path
    side_by_side: Path
    frames: int
    psnr_damaged: float
    psnr_restored: float


def _decode_rgb(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def labelled_panels(panels: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """RGB panels side by side, each under a dark band that names it (the band is added, the
    pictures are untouched, so they can still be compared pixel for pixel)."""
    import cv2

    height = panels[0].shape[0]
    band = max(16, height // 10)
    scale = band / 40
    thickness = 1 if band < 30 else 2
    out = []
    for panel, label in zip(panels, labels):
        strip = np.full((band, panel.shape[1], 3), 24, np.uint8)
        (tw, th), below = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        origin = (max(2, (panel.shape[1] - tw) // 2), (band - th - below) // 2 + th)
        cv2.putText(strip, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), thickness, cv2.LINE_AA)
        out.append(np.concatenate([strip, panel], axis=0))
    return np.concatenate(out, axis=1)


def run_demo(out_dir: str | Path, model: str = STARTER_MODEL, seconds: float = 4.0, width: int = 320,
             height: int = 240, seed: int = 2024, profile: str = "normal", device: str = "auto",
             precision: str = "auto", stage: Callable[[str], None] | None = None,
             progress_factory: Callable[[str, str], Callable] | None = None) -> DemoResult:
    """Make, age, restore and measure a demo clip in ``out_dir``; returns the figures.

    ``stage(text)`` is told what happens next; ``progress_factory(label, unit)`` returns a
    ``progress(done, total)`` callable for each long step.
    """
    from engine.degrade import load_profile
    from engine.imagefiles import write_image  # any folder name: cv2.imwrite crashes on non-UTF-8
    from engine.inference.chain import Chain, Stage
    from engine.synth.clip import write_cel_clip
    from engine.video.degrade import degrade_video
    from engine.video.options import VideoOptions
    from engine.video.restore import restore_video

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchivistError(f"{out}: cannot create the demo folder: {exc.strerror}") from None
    say = stage or (lambda text: log.info(text))
    bar = progress_factory or (lambda label, unit: None)
    clean, damaged, restored = out / "clean.mkv", out / "damaged.mkv", out / "restored.mkv"
    chain = Chain.load([Stage(model)], device=device, precision=precision)

    say(f"drawing {seconds:g} s of cel animation ({width}×{height}) with a tune -> {clean}")
    write_cel_clip(clean, seconds, width, height, seed=seed, progress=bar("draw", "frames"))
    say(f"ageing it with the '{profile}' profile in clip mode -> {damaged}")
    # The demo's own files in its own folder: a second demo replaces them (each only once complete).
    options = VideoOptions(check_space=False, overwrite=True)
    degrade_video(clean, damaged, load_profile(profile), seed, options, progress=bar("age", "frames"))
    say(f"restoring it with {chain.describe()} -> {restored}")
    restore_video(damaged, restored, chain, options, progress=bar("restore", "frames"))

    frames_clean, frames_damaged, frames_restored = (_decode_rgb(p) for p in (clean, damaged, restored))
    if not (len(frames_clean) == len(frames_damaged) == len(frames_restored)):
        raise ArchivistError(
            f"demo: frame counts differ (clean {len(frames_clean)}, damaged {len(frames_damaged)}, "
            f"restored {len(frames_restored)})"
        )
    c, d, r = (np.stack(f) for f in (frames_clean, frames_damaged, frames_restored))
    mid = len(frames_clean) // 2
    picture = labelled_panels([c[mid], d[mid], r[mid]], ["clean", "damaged", "restored"])
    side = out / "side_by_side.png"
    write_image(side, np.ascontiguousarray(picture[..., ::-1]))
    return DemoResult(clean, damaged, restored, side, len(frames_clean), psnr(d, c), psnr(r, c))
