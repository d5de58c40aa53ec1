"""Clean frames the project draws itself: procedural cel animation for training and the demo."""

from engine.synth.cel import cel_clip, cel_frame

__all__ = ["cel_frame", "cel_clip"]
