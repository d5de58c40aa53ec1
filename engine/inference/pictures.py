"""One picture of a restoration: restored, encoded for its output's format, and staged under its
partial name. Both the local image restore (:mod:`engine.inference.restore`) and a cluster's
tasks (:mod:`engine.cluster`) use these, so neither imports the other's module for them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ArchivistError, os_error_line
from engine.inference.imageio import encode_picture, read_picture
from engine.inference.tone import luma, replicate
from engine.ownership import Ledger, write_new

log = logging.getLogger("engine.inference.restore")  # the warnings keep the logger they always had


@dataclass
class RestoreResult:
    """What a restore wrote."""

    outputs: list[Path] = field(default_factory=list)
    skipped: int = 0  # images an earlier attempt of the same job had finished (queued jobs resume)
    stopped: bool = False


def restore_picture(src: Path, dst: Path, chain, tone: str) -> tuple[bytes, bool]:
    """One image restored and encoded for ``dst``'s format: (file bytes, was an RGB image made gray)."""
    pic = read_picture(src)
    neutral = False
    if pic.is_gray(tone):
        # Three exactly equal channels in, one gray channel out: no colour cast survives.
        gray_in = pic.rgb if pic.stored_gray else replicate(luma(pic.rgb))
        restored = luma(chain.run(gray_in))
        neutral = tone == "auto" and not pic.stored_gray
    else:
        restored = chain.run(pic.rgb)
    return encode_picture(restored, dst.suffix.lower().lstrip("."), pic.bit_depth, pic.alpha, shown=dst), neutral


def stage_picture(ledger: Ledger, dst: Path, data: bytes) -> None:
    """Write a restored image under its partial name, recorded in the ledger before and after."""
    partial = ledger.partial_path(dst)
    ledger.record("partial", partial)
    try:
        write_new(partial, data)
    except OSError as exc:
        raise ArchivistError(os_error_line(exc, dst)) from None
    ledger.record("staged", partial)


def warn_neutral(count: int) -> None:
    """One warning for the RGB images restored in black and white because their channels were equal."""
    if count:
        log.warning("%d RGB image(s) with equal colour channels restored in black and white (written as gray); "
                    "tone color (--color) keeps them in colour", count)
