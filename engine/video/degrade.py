"""Damaging video: a clean clip becomes an aged one (clip mode), or its frames become training pairs.

A whole clip goes through the same decode → process → encode pipeline as a restoration, with the
film-damage simulator in place of the model chain, so timestamps, audio and subtitles are kept.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write
from engine.document import InvalidValue
from engine.errors import ArchivistError
from engine.video.options import VideoOptions
from engine.video.restore import VideoResult, restore_video

log = logging.getLogger(__name__)


class ClipDamage:
    """The video pipeline's processing interface over one strip of simulated film.

    Frames must arrive in order from the clip's first frame (the pipeline's single inference
    thread guarantees it); frame *i* is damaged as frame *i* of the strip.
    """

    scale = 1

    def __init__(self, profile, seed: int):
        from engine.degrade.pipeline import ClipDegrader
        from engine.degrade.schema import as_mix

        self.mix = as_mix(profile)
        self.clip = ClipDegrader(profile, seed)
        self.index = 0

    def run_batch(self, frames: np.ndarray) -> np.ndarray:
        out = np.empty_like(frames)
        for i, frame in enumerate(frames):
            out[i], _ = self.clip.frame(frame, self.index)
            self.index += 1
        return out

    def identity(self) -> list[dict]:
        return [{"degrade": self.mix.name, "profile_hash": self.mix.hash, "seed": self.clip.seed}]


def degrade_video(input_path: str | Path, output: str | Path, profile, seed: int,
                  options: VideoOptions | None = None, progress=None) -> VideoResult:
    """Damage a whole clip in clip mode into ``output`` (any output the restore pipeline writes).

    Scratches persist and drift, grain and dust are fresh every frame, flicker and gate weave vary
    over time. A damaged clip is always made from its first frame (no ``--resume``).
    """
    options = replace(options or VideoOptions(), resume=False)
    return restore_video(input_path, output, ClipDamage(profile, seed), options, progress=progress)


def extract_frames(input_path: str | Path, folder: str | Path, every: int = 1, limit: int | None = None) -> list[Path]:
    """Write every ``every``-th frame of a video as a lossless PNG (``<stem>_f000123.png``) into ``folder``.

    Frames go through the source's own colour matrix and range; >8-bit sources give 16-bit PNGs.
    Existing frames are kept, so an interrupted extraction continues.
    """
    import cv2

    from engine.video.frames import VideoSource
    from engine.video.probe import probe

    if every < 1:
        raise InvalidValue("every", every, "an integer 1 or more")
    input_path, folder = Path(input_path), Path(folder)
    info = probe(input_path)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for frame in VideoSource(info):
        if frame.index % every:
            continue
        target = folder / f"{input_path.stem}_f{frame.index:06d}.png"
        if not target.exists():
            peak = 65535.0 if info.high_bit_depth else 255.0
            dtype = np.uint16 if info.high_bit_depth else np.uint8
            rgb = frame.rgb if frame.rgb.dtype != np.float32 else np.clip(frame.rgb * peak + 0.5, 0, peak).astype(dtype)
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
            if not ok:
                raise ArchivistError(f"{target}: could not encode frame {frame.index}")
            # A fixed partial name: the next extraction writes over what a killed one left.
            atomic_write(target, lambda tmp, buf=buf: buf.tofile(str(tmp)),
                         temp=target.with_name(target.name + ".partial"))
        written.append(target)
        if limit is not None and len(written) >= limit:
            break
    if not written:
        raise ArchivistError(f"{input_path}: no frames decoded")
    return written

