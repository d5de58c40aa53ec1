"""The degrader: a fast, reproducible, physically motivated film-damage simulator.

Public API::

    from engine.degrade import load_profile, degrade, degrade_clip

    profile = load_profile("normal")          # a name, a mix name or a YAML path
    lq, record = degrade(image, profile, seed=1234)
    lq, record = degrade_window(frame, profile, 1234, top, left, height, width)  # a window of a frame

Effects live one family per module (grain, defects, chemistry, geometry, optics, compression),
listed once in :mod:`engine.degrade.registry`; profiles are validated by :mod:`engine.degrade.schema`.
"""

from engine.degrade.library import load_profile
from engine.degrade.pipeline import degrade, degrade_clip, degrade_window
from engine.degrade.schema import Mix, Profile

__all__ = ["Mix", "Profile", "degrade", "degrade_clip", "degrade_window", "load_profile"]
