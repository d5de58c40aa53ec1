"""Clean frames the project draws itself: procedural cel animation and photographic dead leaves,
for training and the demo."""

from engine.synth.cel import cel_clip, cel_frame
from engine.synth.photo import photo_frame
from engine.synth.seeds import EVALUATION_SEEDS

__all__ = ["EVALUATION_SEEDS", "cel_clip", "cel_frame", "photo_frame"]
