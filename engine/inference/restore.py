"""Restoring still images: one file, or a folder of images into a folder with the same names.

A black-and-white image (one stored channel, or three equal ones) is restored in black and white:
the network sees three equal channels and its output is made gray again (:mod:`engine.inference.tone`),
written as a one-channel file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ArchivistError
from engine.inference.imageio import OUTPUT_FORMATS, is_image, read_picture, write_picture
from engine.inference.tone import check_tone, luma, replicate

log = logging.getLogger(__name__)


@dataclass
class RestoreResult:
    """What a restore wrote."""

    outputs: list[Path] = field(default_factory=list)
    skipped: int = 0
    stopped: bool = False


def plan_images(input_path: Path, output: Path, fmt: str | None) -> list[tuple[Path, Path]]:
    """Pair every input image with its output path (same name, PNG unless ``fmt``)."""
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise ArchivistError(f"--format {fmt!r} invalid: allowed are {', '.join(OUTPUT_FORMATS)}")
    suffix = "." + (fmt or "png")
    if input_path.is_dir():
        sources = sorted(p for p in input_path.iterdir() if p.is_file() and is_image(p))
        if not sources:
            raise ArchivistError(f"{input_path}: folder holds no images")
        if output.exists() and not output.is_dir():
            raise ArchivistError(f"{output}: is a file; a folder input needs an output folder")
        return [(src, output / (src.stem + suffix)) for src in sources]
    if not input_path.exists():
        raise ArchivistError(f"{input_path}: no such file or folder")
    if output.is_dir() or str(output).endswith(os.sep):
        return [(input_path, output / (input_path.stem + suffix))]
    if fmt is None and output.suffix.lower() not in (".png", ".tif", ".tiff"):
        raise ArchivistError(f"{output}: output image must end in .png, .tif or .tiff")
    return [(input_path, output.with_suffix(suffix) if fmt else output)]


def restore_images(
    input_path: str | os.PathLike,
    output: str | os.PathLike,
    chain,
    fmt: str | None = None,
    skip_existing: bool = False,
    progress: Callable[[float, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    tone: str = "auto",
) -> RestoreResult:
    """Restore an image or a folder of images through ``chain``; each output is written atomically.

    ``skip_existing`` makes a re-run continue where it stopped (outputs are only ever complete).
    ``should_stop`` is polled between images (a paused queue job). ``tone``: ``auto`` restores a
    gray image (stored gray, or RGB with equal channels) in black and white, ``color`` never,
    ``gray`` always.
    """
    check_tone(tone)
    pairs = plan_images(Path(input_path), Path(output), fmt)
    out_dir = pairs[0][1].parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchivistError(f"{out_dir}: cannot create output folder: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK):
        raise ArchivistError(f"{out_dir}: output folder is not writable")
    result = RestoreResult()
    neutral = 0
    for i, (src, dst) in enumerate(pairs):
        if should_stop is not None and should_stop():
            result.stopped = True
            break
        if skip_existing and dst.exists():
            result.skipped += 1
        else:
            pic = read_picture(src)
            if pic.is_gray(tone):
                # Three exactly equal channels in, one gray channel out: no colour cast survives.
                gray_in = pic.rgb if pic.stored_gray else replicate(luma(pic.rgb))
                restored = luma(chain.run(gray_in))
                neutral += tone == "auto" and not pic.stored_gray
            else:
                restored = chain.run(pic.rgb)
            write_picture(dst, restored, pic.bit_depth, pic.alpha)
            result.outputs.append(dst)
            log.info("restored %s -> %s", src, dst)
        if progress is not None:
            progress(i + 1, len(pairs))
    if neutral:
        log.warning("%d RGB image(s) with equal colour channels restored in black and white (written as gray); "
                    "--color keeps them in colour", neutral)
    return result
