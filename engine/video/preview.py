"""A before/after picture of one frame: what a chain does to a video (or an image) at a glance."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engine.document import InvalidValue
from engine.errors import ArchivistError

log = logging.getLogger(__name__)

LAYOUTS = ("side", "split")


def grab_frame(path: str | Path, frame: int | None = None, time: float | None = None) -> tuple[np.ndarray, int]:
    """Decode one frame of a video as float32 RGB (by index, or the first at or after ``time`` seconds).

    An image file is read as it is. Returns (rgb, bit depth).
    """
    from engine.inference.imageio import is_image, read_picture
    from engine.video.frames import VideoSource
    from engine.video.probe import probe

    path = Path(path)
    if path.is_file() and is_image(path):
        pic = read_picture(path)
        return pic.rgb, pic.bit_depth
    if frame is not None and frame < 0:
        raise InvalidValue("frame", frame, "an integer 0 or more")
    info = probe(path)
    if time is not None:
        source = VideoSource(info, start=time)
        wanted = 0
    else:
        source = VideoSource(info)
        wanted = frame or 0
    for got in source:
        if got.index == wanted:
            return got.rgb, info.bit_depth
    where = f"time {time:g} s" if time is not None else f"frame {wanted}"
    count = info.frame_count if info.frame_count else "?"
    raise ArchivistError(f"{path}: no {where} (the video has {count} frames, {info.duration or 0:.2f} s)")


def compose(before: np.ndarray, after: np.ndarray, layout: str = "side") -> np.ndarray:
    """``side``: before | after with a 4-pixel gap; ``split``: left half before, right half after."""
    if layout not in LAYOUTS:
        raise InvalidValue("layout", layout, f"one of {', '.join(LAYOUTS)}")
    if before.shape != after.shape:
        import cv2

        before = cv2.resize(before, (after.shape[1], after.shape[0]), interpolation=cv2.INTER_CUBIC)
    if layout == "split":
        out = after.copy()
        mid = out.shape[1] // 2
        out[:, :mid] = before[:, :mid]
        out[:, mid:mid + 1] = 1.0
        return out
    gap = np.ones((after.shape[0], 4, 3), np.float32)
    return np.concatenate([before, gap, after], axis=1)


SAMPLE_SEED = 7  # the built-in sample frame: a procedural cel frame, 256×192


def sample_frame() -> np.ndarray:
    """The built-in sample frame (float32 RGB in [0, 1]) a preview uses when given no input."""
    from engine.synth.cel import cel_frame

    return cel_frame(SAMPLE_SEED, 256, 192).astype(np.float32) / 255.0


def preview_frame(input_path: str | Path | None, chain, output: str | Path, frame: int | None = None,
                  time: float | None = None, layout: str = "side", overwrite: bool = False) -> Path:
    """Restore one frame of ``input_path`` (None: :func:`sample_frame`) with ``chain`` and write the
    before/after picture to ``output``.

    The output may not be the input; an existing one is refused unless ``overwrite``.
    """
    from engine.inference.imageio import write_picture

    output = Path(output)
    if output.suffix.lower() not in (".png", ".tif", ".tiff"):
        raise ArchivistError(f"{output}: preview must be a .png or .tiff file")
    if not output.parent.is_dir():
        raise ArchivistError(f"{output.parent}: output folder does not exist")
    from engine.ownership import check_absent, check_not_input

    check_not_input(output, [input_path] if input_path is not None else [])
    check_absent(output, overwrite)
    if layout not in LAYOUTS:
        raise InvalidValue("layout", layout, f"one of {', '.join(LAYOUTS)}")
    rgb, depth = grab_frame(input_path, frame, time) if input_path is not None else (sample_frame(), 8)
    if input_path is not None and _is_gray(Path(input_path)):
        # As the restore itself would do it: three equal channels in, gray out (engine.video.tone).
        from engine.inference.tone import luma, replicate

        gray = replicate(luma(rgb))
        picture = luma(compose(gray, replicate(luma(chain.run_batch(gray[None])[0])), layout))
    else:
        picture = compose(rgb, chain.run_batch(rgb[None])[0], layout)
    write_picture(output, picture, 16 if depth > 8 else 8)
    log.info("preview written to %s", output)
    return output


def _is_gray(path: Path) -> bool:
    """Whether ``restore`` would restore this input in black and white (its ``auto`` tone)."""
    from engine.inference.imageio import is_image, read_picture

    if path.is_file() and is_image(path):
        return read_picture(path).is_gray()
    from engine.video.probe import probe
    from engine.video.tone import decide_video_tone

    return decide_video_tone(probe(path), "auto").gray
