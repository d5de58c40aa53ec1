"""What counts as a video file, by its name (torch-, numpy- and PyAV-free, for every face)."""

from __future__ import annotations

import os
from pathlib import Path

# Containers FFmpeg reads whose files a user would call a video. The restore command, a queued
# job, a degrade run and a training run's clean folders all decide "is this a video?" from here.
VIDEO_SUFFIXES = (".mkv", ".mp4", ".mov", ".avi", ".m4v", ".webm", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts",
                  ".vob", ".wmv", ".flv", ".nut", ".dv", ".mxf", ".ogv", ".3gp")


def is_video(path: str | os.PathLike) -> bool:
    """True when ``path``'s suffix (any case) names a video container."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES
