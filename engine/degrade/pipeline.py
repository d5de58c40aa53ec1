"""The pipeline: fixed effect order, one random stream per effect, a record of every drawn value.

Streams are keyed by effect *name* (a SeedSequence spawn key derived from the name), never by
position, so turning one effect off or adding a new one leaves what every other effect draws
unchanged. The profile of a mix is drawn from the seed's own ``mix`` stream.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields, replace
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from engine.degrade.context import FrameContext
from engine.degrade.ops import clip01, keep_freed_memory
from engine.degrade.registry import EFFECTS, Effect
from engine.degrade.schema import EffectSettings, Mix, Profile, as_mix
from engine.document import InvalidValue, describe_range
from engine.errors import ArchivistError

log = logging.getLogger(__name__)

MAX_SEED = 2**63 - 1


@lru_cache(maxsize=256)
def stream_key(name: str) -> int:
    """A stable 32-bit key for a stream name (sha256, so the same in every process)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "little")


def stream(seed: int, name: str, *path: int) -> np.random.Generator:
    """The generator of stream ``name`` (optionally a sub-path, e.g. a frame) of master ``seed``."""
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(stream_key(name), *path))
    return np.random.Generator(np.random.PCG64(ss))


def check_seed(seed: Any) -> int:
    """A master seed must be a whole number from 0 to 2**63 − 1; a refusal is an
    :class:`InvalidValue` naming ``seed`` (the command line shows ``--seed``)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= MAX_SEED:
        raise InvalidValue("seed", seed, seed_words(seed))
    return int(seed)


def seed_words(seed: Any) -> str:
    """What a seed may be, in the words of every other refusal: ``an integer 0 or more`` (as the
    command line and a queued job's spec say it; the 64-bit top is named only to a seed above it)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and int(seed) > MAX_SEED:
        return describe_range(0, MAX_SEED, integer=True)
    return describe_range(0, None, integer=True)


def to_float(image: np.ndarray) -> tuple[np.ndarray, np.dtype]:
    """Validate an HxWx3 RGB image and return it as float32 in [0, 1] plus its original dtype."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ArchivistError(f"degrade: image of shape {shape} is not allowed; allowed: HxWx3 RGB")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ArchivistError(f"degrade: image of {image.shape[1]}x{image.shape[0]} is too small; allowed: 8x8 or more")
    if image.dtype == np.uint8:
        # Convert and scale in one OpenCV pass.
        src = np.ascontiguousarray(image)
        return cv2.addWeighted(src, 1.0 / 255.0, src, 0.0, 0.0, dtype=cv2.CV_32F), image.dtype
    if image.dtype == np.float32:
        return clip01(np.ascontiguousarray(image)), image.dtype
    raise ArchivistError(f"degrade: image dtype {image.dtype} is not allowed; allowed: uint8, float32")


def from_float(img: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Clip to [0, 1] and return in the caller's dtype (uint8 is rounded to nearest)."""
    if dtype == np.uint8:
        # Saturating conversion with rounding, in one OpenCV pass.
        return cv2.addWeighted(img, 255.0, img, 0.0, 0.0, dtype=cv2.CV_8U)
    return clip01(img.astype(np.float32, copy=False))


def _draw(effect: Effect, settings: EffectSettings, rng: np.random.Generator) -> Any:
    values = {name: spec.draw(settings.values[name], rng) for name, spec in effect.specs.items()}
    return effect.params(**values)


def _scale_extreme(effect: Effect, params: Any, factors: dict[str, float]) -> Any:
    if not effect.extreme or not factors:
        return params
    changes = {}
    for pname, which in effect.extreme.items():
        spec = effect.specs[pname]
        value = getattr(params, pname) * factors[which]
        changes[pname] = float(min(max(value, spec.bounds[0]), spec.bounds[1]))
    return replace(params, **changes)


def _extreme(profile: Profile, seed: int) -> tuple[dict[str, Any], dict[str, float]]:
    ex = profile.extreme
    if not ex.enabled:
        return {"enabled": False}, {}
    rng = stream(seed, "extreme")
    applied = bool(rng.random() < ex.probability)
    strength = float(ex.strength[0] + rng.random() * (ex.strength[1] - ex.strength[0]))
    cast = float(ex.cast[0] + rng.random() * (ex.cast[1] - ex.cast[0]))
    record = {"enabled": True, "applied": applied, "strength": strength, "cast": cast}
    return record, ({"strength": strength, "cast": cast} if applied else {})


def choose_profile(profile: Profile | Mix | str, seed: int) -> tuple[Profile, Mix]:
    """The profile a sample uses: a mix's member drawn from the seed's ``mix`` stream."""
    if isinstance(profile, str):
        from engine.degrade.library import load_profile

        profile = load_profile(profile)
    mix = as_mix(profile)
    if len(mix.entries) == 1:
        return mix.entries[0][0], mix
    return mix.choose(float(stream(seed, "mix").random())), mix


def _base_record(seed: int, chosen: Profile, mix: Mix, shape: tuple[int, ...]) -> dict[str, Any]:
    record: dict[str, Any] = {"seed": seed, "profile": chosen.name, "profile_hash": chosen.hash}
    if len(mix.entries) > 1 or mix.name != chosen.name:
        record["mix"] = mix.name
        record["mix_hash"] = mix.hash
    record["size"] = [int(shape[1]), int(shape[0])]
    return record


def _json_params(params: Any) -> dict[str, Any]:
    # Parameters are flat dataclasses of scalars: read the fields directly (asdict deep-copies).
    out = {}
    for f in fields(params):
        v = getattr(params, f.name)
        out[f.name] = float(v) if isinstance(v, (float, np.floating)) else v
    return out


def degrade(image: np.ndarray, profile: Profile | Mix | str, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Damage one image with a profile (or mix, or a name) and a master seed.

    ``image`` is HxWx3 RGB, uint8 or float32 in [0, 1]; the result has the same shape and dtype.
    The record is JSON-able: seed, profile name and hash (and the mix's, if any), the extreme
    draw, and for each effect in pipeline order whether it was enabled and applied and every
    value it drew. The same (image, profile, seed) gives the same bytes in any process.
    """
    seed = check_seed(seed)
    keep_freed_memory()
    img, dtype = to_float(image)
    chosen, mix = choose_profile(profile, seed)
    record = _base_record(seed, chosen, mix, img.shape)
    extreme_record, factors = _extreme(chosen, seed)
    record["extreme"] = extreme_record
    steps, rngs = _plan_still(chosen, seed, factors)
    img, record["effects"] = _apply_steps(img, steps, _still_context(rngs, None))
    return from_float(img, dtype), record


def degrade_window(frame: np.ndarray, profile: Profile | Mix | str, seed: int, top: int, left: int,
                   height: int, width: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Damage the ``height`` × ``width`` window at (``top``, ``left``) of ``frame`` as if the whole
    frame had been damaged with (profile, seed) and the window then cut out.

    Only the window (and a margin as wide as the drawn displacements reach: misregistration,
    crease pulls, weave, blur) is computed, so the cost follows the window, not the frame.
    Effects that depend on the frame's size (vignetting, flicker's gradient, large stains,
    creases, long scratches, grain sized for a reference height) are drawn for the whole frame
    and rendered in the window; with only those effects on, the result equals the window of
    ``degrade(frame, profile, seed)``. Effects spread evenly over the frame (grain, dust, hairs,
    chemistry noise, the codec) are drawn for the window itself: the same statistics, other
    values. ``frame`` may be a view (flipped, rotated); only the window's region is read.
    """
    seed = check_seed(seed)
    keep_freed_memory()
    chosen, mix = choose_profile(profile, seed)
    extreme_record, factors = _extreme(chosen, seed)
    steps, rngs = _plan_still(chosen, seed, factors)
    record = _base_record(seed, chosen, mix, (height, width))
    record["extreme"] = extreme_record
    return _window(frame, top, left, height, width, steps, lambda size: _still_context(rngs, size), record)


def _window(frame: np.ndarray, top: int, left: int, height: int, width: int, steps: list[_Step],
            context: Callable[[tuple[int, int]], _Context], record: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """Cut a window and the margin the steps reach out of ``frame``, damage it, return the window."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        raise ArchivistError(f"degrade: frame of shape {getattr(frame, 'shape', None)} is not allowed; "
                             "allowed: HxWx3 RGB")
    frame_h, frame_w = int(frame.shape[0]), int(frame.shape[1])
    if not (0 <= top and 0 <= left and 8 <= height and 8 <= width and top + height <= frame_h
            and left + width <= frame_w):
        raise ArchivistError(f"degrade: window {width}x{height} at ({left}, {top}) does not fit the "
                             f"{frame_w}x{frame_h} frame (allowed: at least 8x8, inside the frame)")
    margin = window_margin(steps)
    r0, c0 = max(top - margin, 0), max(left - margin, 0)
    r1, c1 = min(top + height + margin, frame_h), min(left + width + margin, frame_w)
    img, dtype = to_float(np.ascontiguousarray(frame[r0:r1, c0:c1]))
    record["window"] = {"frame": [frame_w, frame_h], "left": int(left), "top": int(top), "margin": margin}
    img, record["effects"] = _apply_steps(img, steps, context((frame_h, frame_w)), (r0, c0),
                                          (top - r0, left - c0, height, width))
    return from_float(img, dtype), record


# One planned effect: (effect, parameters as applied or None when it does not happen, its record).
_Step = tuple[Effect, Any, dict[str, Any]]
# The context of step ``i`` for an image at ``origin`` of the frame.
_Context = Callable[[int, tuple[int, int]], FrameContext]


def _plan_still(chosen: Profile, seed: int,
                factors: dict[str, float]) -> tuple[list[_Step], list[np.random.Generator | None]]:
    """Which effects happen on a still and with which values, and each effect's stream, which the
    effect goes on drawing from when it is applied."""
    steps: list[_Step] = []
    rngs: list[np.random.Generator | None] = []
    for name, effect in EFFECTS.items():
        settings = chosen.effects[name]
        rng = stream(seed, name) if settings.enabled else None
        rngs.append(rng)
        if rng is None:
            steps.append((effect, None, {"enabled": False}))
            continue
        if not rng.random() < settings.probability:
            steps.append((effect, None, {"enabled": True, "applied": False}))
            continue
        params = _draw(effect, settings, rng)
        if effect.applies is not None and not effect.applies(params, False):
            steps.append((effect, None, {"enabled": True, "applied": False, "reason": "clip only",
                                         "params": _json_params(params)}))
            continue
        steps.append((effect, _scale_extreme(effect, params, factors),
                      {"enabled": True, "applied": True, "params": _json_params(params)}))
    return steps, rngs


def _still_context(rngs: list[np.random.Generator | None], frame: tuple[int, int] | None) -> _Context:
    def context(i: int, origin: tuple[int, int]) -> FrameContext:
        rng = rngs[i]
        assert rng is not None
        return FrameContext(rng=rng, persistent=lambda: rng, frame=frame, origin=origin)

    return context


# Soft masks (dirt, smudges) spread a pixel or two beyond what they cover.
_MASK_REACH = 2
_MAX_MARGIN = 48


def window_margin(steps: list[_Step]) -> int:
    """Pixels around a window that the planned effects pull picture from (0 when none moves it)."""
    reach = sum(float(effect.reach(params)) for effect, params, _ in steps
                if params is not None and effect.reach is not None)
    return 0 if reach <= 0 else min(int(np.ceil(reach)) + _MASK_REACH, _MAX_MARGIN)


def _apply_steps(img: np.ndarray, steps: list[_Step], context: _Context, origin: tuple[int, int] = (0, 0),
                 crop: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply planned steps in order. With ``crop`` (top, left, height, width within ``img``) the
    image is cut down to it right after the last effect that moves picture, so the effects after
    it work on the window alone."""
    last_moving = max((i for i, (effect, params, _) in enumerate(steps)
                       if params is not None and effect.reach is not None and effect.reach(params) > 0),
                      default=-1)
    effects_record: dict[str, Any] = {}
    for i, (effect, params, eff_record) in enumerate(steps):
        if crop is not None and i > last_moving:
            top, left, height, width = crop
            img = np.ascontiguousarray(img[top:top + height, left:left + width])
            origin = (origin[0] + top, origin[1] + left)
            crop = None
        effects_record[effect.name] = eff_record
        if params is None:
            continue
        ctx = context(i, origin)
        img = effect.apply(img, params, ctx)
        if ctx.values:
            effects_record[effect.name] = {**eff_record, "values": ctx.values}
    if crop is not None:
        top, left, height, width = crop
        img = np.ascontiguousarray(img[top:top + height, left:left + width])
    return img, effects_record


class ClipDegrader:
    """One strip of film: what happens and with which parameters is drawn once, at construction.

    :meth:`frame` damages frame ``index`` of the clip; the result depends only on (profile, seed,
    index, frame), so frames may be produced in any order or resumed part-way.
    """

    def __init__(self, profile: Profile | Mix | str, seed: int):
        self.seed = seed = check_seed(seed)
        keep_freed_memory()
        self.profile, self.mix = choose_profile(profile, seed)
        self.extreme_record, self.factors = _extreme(self.profile, seed)
        self.plan: list[tuple[Effect, Any | None, dict[str, Any]]] = []
        for name, effect in EFFECTS.items():
            settings = self.profile.effects[name]
            if not settings.enabled:
                self.plan.append((effect, None, {"enabled": False}))
                continue
            rng = stream(seed, name, 0)
            if not rng.random() < settings.probability:
                self.plan.append((effect, None, {"enabled": True, "applied": False}))
                continue
            params = _draw(effect, settings, rng)
            self.plan.append((effect, params, {"enabled": True, "applied": True, "params": _json_params(params)}))

    def _steps(self) -> list[_Step]:
        return [(effect, None if params is None else _scale_extreme(effect, params, self.factors), rec)
                for effect, params, rec in self.plan]

    def _context(self, index: int, frame: tuple[int, int] | None) -> _Context:
        seed = self.seed

        def context(i: int, origin: tuple[int, int]) -> FrameContext:
            name = self.plan[i][0].name
            key = stream_key(name)
            return FrameContext(
                rng=stream(seed, name, 2, index),
                persistent=lambda: np.random.Generator(
                    np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=(key, 1)))),
                index=index, clip=True, frame=frame, origin=origin)

        return context

    def frame(self, frame: np.ndarray, index: int) -> tuple[np.ndarray, dict[str, Any]]:
        """Damage frame ``index`` of the clip; same dtype back, plus the record of drawn values."""
        img, dtype = to_float(frame)
        record = _base_record(self.seed, self.profile, self.mix, img.shape)
        record["frame"] = index
        record["extreme"] = self.extreme_record
        img, record["effects"] = _apply_steps(img, self._steps(), self._context(index, None))
        return from_float(img, dtype), record

    def window(self, frame: np.ndarray, index: int, top: int, left: int, height: int,
               width: int) -> tuple[np.ndarray, dict[str, Any]]:
        """Frame ``index`` of the clip damaged whole and its ``height`` × ``width`` window at
        (``top``, ``left``) cut out, computing only the window and its margin (as
        :func:`degrade_window` does for a still)."""
        record = _base_record(self.seed, self.profile, self.mix, (height, width))
        record["frame"] = index
        record["extreme"] = self.extreme_record
        return _window(frame, top, left, height, width, self._steps(), lambda size: self._context(index, size),
                       record)


def degrade_clip(frames: Iterable[np.ndarray], profile: Profile | Mix | str,
                 seed: int) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Damage a sequence of frames as one strip of film; yields ``(lq, record)`` per frame.

    The profile, the extreme draw, which effects happen and their parameters are drawn once per
    clip. Damage on the film persists from frame to frame (long scratches, which drift sideways;
    stains; creases); grain, dust, flicker and the weave offset are fresh every frame.
    """
    clip = ClipDegrader(profile, seed)
    for index, frame in enumerate(frames):
        yield clip.frame(frame, index)
