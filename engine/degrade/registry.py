"""The one list of effects: name → parameter dataclass and function, in pipeline order.

The pipeline, the schema, the CLI and the profile reference know effects only through ``EFFECTS``.
The order is physical: what happens to the picture on the film (fading, grain, layers, creases),
then dirt on the film, then projection and telecine (light, weave, lens), then digitisation
(scanner noise, banding) and, last, the 8-bit codec.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.degrade import chemistry, compression, defects, geometry, grain, optics
from engine.degrade.context import FrameContext
from engine.degrade.params import ParamSpec, param_specs


@dataclass(frozen=True)
class Effect:
    """One effect: its name, family, parameter dataclass, function and what ``extreme`` scales.

    ``extreme`` maps a parameter name to ``"strength"`` or ``"cast"``: the factor of the profile's
    extreme block that multiplies it when an extreme sample is drawn. ``applies(params, clip)``,
    when given, says whether drawn parameters act on a still (``clip`` False) or a clip frame.
    ``reach(params)``, when given, is how far (pixels) the effect moves picture on a still: a window
    of a frame is damaged with that much of its surroundings (:func:`engine.degrade.pipeline.degrade_window`).
    """

    name: str
    family: str
    params: type
    apply: Callable[[np.ndarray, Any, FrameContext], np.ndarray]
    summary: str
    extreme: dict[str, str] = field(default_factory=dict)
    applies: Callable[[Any, bool], bool] | None = None
    reach: Callable[[Any], float] | None = None

    @property
    def specs(self) -> dict[str, ParamSpec]:
        """Parameter specs in declaration order."""
        return param_specs(self.params)


_ALL = (
    Effect("texture_trap", "optics", optics.TextureTrapParams, optics.apply_texture_trap,
           "fine blurred noise and speckles only in flat areas"),
    Effect("dye_fading", "chemistry", chemistry.DyeFadingParams, chemistry.apply_dye_fading,
           "cyan and yellow dyes fade faster than magenta, in density space"),
    Effect("color_cast", "chemistry", chemistry.ColorCastParams, chemistry.apply_color_cast,
           "global colour cast of a faded print", {"strength": "cast", "shadow_tint": "cast"}),
    Effect("emulsion_degradation", "chemistry", chemistry.EmulsionDegradationParams,
           chemistry.apply_emulsion_degradation,
           "blurred per-layer chemical noise, one victim layer strongest", {"strength": "strength"}),
    Effect("stains", "chemistry", chemistry.StainsParams, chemistry.apply_stains,
           "large soft chemical stains and fine coloured speckle stains",
           {"large_strength": "strength", "speckle_strength": "strength"}),
    Effect("grain", "grain", grain.GrainParams, grain.apply_grain,
           "per-layer, signal-dependent film grain flakes, blue strongest", {"strength": "strength"}),
    Effect("emulsion_shift", "geometry", geometry.EmulsionShiftParams, geometry.apply_emulsion_shift,
           "red and blue layers misregistered in opposite directions, or a luma ghost",
           reach=lambda p: p.shift + 1.0),
    Effect("crease", "geometry", geometry.CreaseParams, geometry.apply_crease,
           "projector stretch: periodic horizontal lines, displaced, darkened and tinted",
           reach=geometry.crease_reach),
    Effect("debris", "defects", defects.DebrisParams, defects.apply_debris,
           "specks, blobs, crumbs and hairs with warped outlines"),
    Effect("micro_defects", "defects", defects.MicroDefectsParams, defects.apply_micro_defects,
           "dense tiny dust and smudges"),
    Effect("scratches", "defects", defects.ScratchesParams, defects.apply_scratches,
           "long Bézier scratches along the film and short hairs, bright or dark",
           reach=lambda p: 2.0 if p.count > 0 else 0.0),  # a long scratch's soft edge, across windows
    Effect("vignette", "optics", optics.VignetteParams, optics.apply_vignette,
           "uneven illumination, darker toward the corners"),
    Effect("flicker", "optics", optics.FlickerParams, optics.apply_flicker,
           "per-frame exposure flicker"),
    Effect("gate_weave", "geometry", geometry.GateWeaveParams, geometry.apply_gate_weave,
           "frame jitter in the projector or scanner gate",
           applies=lambda p, clip: clip or p.mode == "always",
           reach=lambda p: p.amplitude * max(1.0, p.vertical_ratio) + 1.0),
    Effect("blur", "optics", optics.BlurParams, optics.apply_blur,
           "lens or telecine softness, Gaussian or anisotropic",
           reach=lambda p: 3.0 * p.sigma + 1.0 if p.sigma >= 0.05 else 0.0),
    Effect("luminance_grain", "grain", grain.LuminanceGrainParams, grain.apply_luminance_grain,
           "coarse luminance noise of scanners and high-ISO telecine", {"strength": "strength"}),
    Effect("banding", "optics", optics.BandingParams, optics.apply_banding,
           "quantisation banding in flat gradients"),
    Effect("compression", "compression", compression.CompressionParams, compression.apply_compression,
           "real JPEG, MPEG-2 or H.264 round trip (8-bit, always last)"),
)

EFFECTS: dict[str, Effect] = {e.name: e for e in _ALL}
"""Every effect by name, in pipeline order."""
