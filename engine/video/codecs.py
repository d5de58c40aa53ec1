"""The encoder choices every face offers: codecs, presets, containers, audio (no numpy, no PyAV).

The command line's ``--codec``/``--preset``/``--audio`` choices, :class:`engine.video.options.VideoOptions`
and the encoders (:mod:`engine.video.encode`) read these lists, so a codec added here is offered,
checked and encoded alike; ``archivist --help`` imports this module and nothing heavy.
"""

from __future__ import annotations

CODECS = ("ffv1", "x264", "x265", "prores", "png", "tiff")
IMAGE_CODECS = ("png", "tiff")
VIDEO_CODECS = tuple(c for c in CODECS if c not in IMAGE_CODECS)  # those that write a video file
CRF_CODECS = ("x264", "x265")  # the codecs that take a quality (crf) and a speed preset
CRF_RANGE = (0, 51)
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")

# Which containers hold which codecs (by output suffix).
CONTAINER_CODECS = {
    ".mkv": ("ffv1", "x264", "x265", "prores"),
    ".mp4": ("x264", "x265"),
    ".mov": ("x264", "x265", "prores"),
    ".nut": ("ffv1", "x264", "x265"),  # NUT has no ProRes tag
    # H.264 in AVI reads back a frame late (readers guess a reorder delay AVI cannot state): FFV1 only.
    ".avi": ("ffv1",),
}
DEFAULT_CODEC = {".mkv": "ffv1", ".mp4": "x264", ".mov": "prores", ".nut": "ffv1", ".avi": "ffv1"}
# The video files a restore (or an aged clip) writes, in the words every help text and refusal uses:
# the faces read these, so what --help offers and what is accepted are one list.
OUTPUT_CONTAINERS = tuple(CONTAINER_CODECS)
CONTAINERS_WORDS = "/".join(OUTPUT_CONTAINERS)  # .mkv/.mp4/.mov/.nut/.avi
DEFAULT_CODEC_WORDS = ", ".join(f"{suffix} {codec}" for suffix, codec in DEFAULT_CODEC.items())

# What may happen to audio streams: copied, converted to one codec, or dropped (None: by container).
AUDIO_CHOICES = ("copy", "aac", "opus", "flac", "drop")
