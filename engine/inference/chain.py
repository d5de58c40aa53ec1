"""A restoration chain: models applied one after another, each blended with its input by a strength.

``archivist restore -m medium -m drunet:0.5:5`` is the chain *medium at full strength, then DRUNet
at half strength with noise level σ=5*. DRUNet takes σ/255 as a constant fourth input channel.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.document import Conflict, InvalidValue, describe_range
from engine.errors import ArchivistError

log = logging.getLogger(__name__)

SIGMA_MAX = 50.0
TILING_KEYS = ("tile", "tile_overlap")


def tiling_problem(key: str, value: object) -> str | None:
    """What is wrong with a ``tile`` size or a ``tile_overlap`` (pixels), or None when it is allowed.

    One rule for every face: the chain, a queued job's spec at submit, the command line's flags and
    the TUI's form all ask here, and each names the value its own way (a key, a flag, a field).
    """
    if key == "tile" and (not isinstance(value, int) or isinstance(value, bool) or value < 0 or 0 < value < MIN_TILE):
        return f"allowed 0 (no tiling) or {describe_range(MIN_TILE, None, integer=True, unit='pixels')}"
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return f"allowed {describe_range(0, None, integer=True, unit='pixels')}"
    return None


def check_tiling(tile: object, tile_overlap: object) -> None:
    """Raise one error naming the key (``tile``, ``tile_overlap``) of a value the chain cannot use."""
    for key, value in zip(TILING_KEYS, (tile, tile_overlap)):
        problem = tiling_problem(key, value)
        if problem:
            raise InvalidValue(key, value, problem.removeprefix("allowed "))
DEFAULT_SIGMA = 5.0
MIN_TILE = 64


@dataclass(frozen=True)
class Stage:
    """One step of a chain: a model (library name or file), its strength in [0, 1], σ for DRUNet."""

    model: str
    strength: float = 1.0
    sigma: float | None = None

    def __post_init__(self):
        if not (0.0 <= self.strength <= 1.0) or math.isnan(self.strength):
            raise ArchivistError(f"stage {self.model!r}: strength {self.strength:g} out of range: allowed "
                                 f"{describe_range(0, 1)}")
        if self.sigma is not None and not (0.0 <= self.sigma <= SIGMA_MAX):
            raise ArchivistError(f"stage {self.model!r}: sigma {self.sigma:g} out of range: allowed "
                                 f"{describe_range(0, SIGMA_MAX, unit='levels of 255')}")

    def to_dict(self) -> dict:
        return {"model": self.model, "strength": self.strength, "sigma": self.sigma}


def parse_stage(text: str) -> Stage:
    """Parse ``MODEL[:strength[:sigma]]`` (``medium``, ``medium:0.8``, ``drunet:0.5:5``)."""
    parts = text.split(":")
    numbers: list[float] = []
    while len(parts) > 1 and len(numbers) < 2:
        try:
            numbers.insert(0, float(parts[-1]))
        except ValueError:
            break
        parts.pop()
    model = ":".join(parts)
    if not model:
        raise ArchivistError(f"invalid model stage {text!r}: expected MODEL[:strength[:sigma]]")
    head, _, rest = model.partition(":")
    from engine.models.library import NAME_RE

    if rest and NAME_RE.match(head) and not os.path.lexists(os.path.expanduser(model)):
        # A library name cannot hold ':': what follows one was meant as a strength or a sigma.
        bad = next((p for p in rest.split(":") if not _is_number(p)), None)
        why = f"{bad!r} is not a number" if bad is not None else "more than two numbers"
        raise ArchivistError(f"invalid model stage {text!r}: {why}; expected MODEL[:strength[:sigma]] "
                             "(medium:0.8, drunet:0.5:5)")
    strength = numbers[0] if numbers else 1.0
    sigma = numbers[1] if len(numbers) > 1 else None
    return Stage(model, strength, sigma)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class _LoadedStage:
    stage: Stage
    name: str
    sha256: str
    spec: object
    module: object
    dtype: object
    runner: object = None  # engine.inference.backends.StageRunner: how the module runs
    path: Path | None = None  # the model file it was read from (a cluster run ships its bytes)


class Chain:
    """Loaded models on one device, ready to restore frames.

    Build with :meth:`load`; :meth:`run` and :meth:`run_batch` take RGB frames from the host,
    :meth:`run_tensor` frames already on the device.
    """

    def __init__(self, stages: list[_LoadedStage], device, tile: int, tile_overlap: int, backend: str = "eager"):
        self.stages = stages
        self.device = device
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.backend = backend
        self.scale = 1
        self.load_args: dict = {}
        for s in stages:
            self.scale *= s.spec.scale

    @classmethod
    def load(cls, stages: list[Stage], device: str = "auto", precision: str = "auto", tile: int = 0,
             tile_overlap: int = 40, library=None, backend: str = "eager", cuda_graphs: bool | None = None,
             compile_mode: str | None = None) -> Chain:
        """Resolve each stage's model (library name or path), load it weights-only and move it to the device.

        ``backend`` (``auto``, ``eager``, ``compile``, ``tensorrt``) says how the networks run
        (:mod:`engine.inference.backends`); compiled forms are built per input shape on first use.
        The default is eager, so evaluation, previews and the demo run exactly as before; ``restore``
        and its queued jobs pass ``auto`` unless told otherwise.
        ``cuda_graphs`` None replays compiled networks through CUDA graphs on CUDA; True or False
        forces it for eager ones too. ``compile_mode`` overrides torch.compile's mode.
        """
        import torch

        from engine.devices import resolve_device, resolve_precision
        from engine.inference.backends import AUTO_AFTER, StageRunner, check_backend, plan_steps
        from engine.models.files import load_model
        from engine.models.library import Library

        if not stages:
            raise ArchivistError("no model given: use -m MODEL (a library name or a model file)")
        check_tiling(tile, tile_overlap)
        check_backend(backend)
        dev = resolve_device(device)
        dtype = resolve_precision(precision, dev)
        steps = plan_steps(backend, dev.type, cuda_graphs)
        if dev.type == "cuda":
            # Video frames keep one size: let cuDNN pick its fastest kernels once.
            torch.backends.cudnn.benchmark = True
        library = library or Library()
        loaded = []
        for stage in stages:
            path = library.resolve(stage.model)
            model = load_model(path)
            spec = model.spec
            if spec.in_channels != 3 or spec.out_channels != 3:
                raise ArchivistError(
                    f"{path}: model has {spec.in_channels} input and {spec.out_channels} output channels; "
                    "a restoration chain needs RGB models (3 in, 3 out)"
                )
            if stage.sigma is not None and not spec.takes_sigma:
                raise ArchivistError(f"stage {stage.model!r}: sigma given but {spec.arch} takes no noise level")
            if spec.takes_sigma and stage.sigma is None:
                stage = Stage(stage.model, stage.strength, DEFAULT_SIGMA)
            stage_dtype = dtype
            if dtype == torch.float16 and not spec.supports_fp16:
                stage_dtype = torch.float32
            # channels_last pays on CUDA and on CPU alike (1.6× for a 48/16 Compact on these CPUs,
            # see benchmarks/bench_compact.py).
            module = model.module.to(device=dev, dtype=stage_dtype, memory_format=torch.channels_last)
            name = Path(path).stem
            runner = StageRunner(module, steps, name, model.sha256, compile_mode=compile_mode,
                                 build_after=AUTO_AFTER if backend == "auto" else 1)
            loaded.append(_LoadedStage(stage, name, model.sha256, spec, module, stage_dtype, runner, Path(path)))
        chosen = ", else ".join(str(s) for s in steps[:-1]) or "eager"
        if backend == "auto" and dev.type == "cuda" and steps[0].backend != "tensorrt":
            from engine.inference.backends import tensorrt_missing

            log.info("backend auto on %s: %s (tensorrt not used: %s not installed)", dev, chosen,
                     " and ".join(tensorrt_missing()))
        else:
            log.info("backend %s on %s: %s", backend, dev, chosen)
        chain = cls(loaded, dev, tile, tile_overlap, backend=str(steps[0]))
        # How it was asked for, so a cluster worker loads the same chain (engine.cluster).
        chain.load_args = {"precision": precision, "tile": tile, "tile_overlap": tile_overlap, "backend": backend,
                           "cuda_graphs": cuda_graphs, "compile_mode": compile_mode}
        return chain

    def describe(self) -> str:
        """``medium ×1.0 › drunet ×0.5 σ5``."""
        parts = []
        for s in self.stages:
            text = f"{s.name} ×{s.stage.strength:g}"
            if s.stage.sigma is not None:
                text += f" σ{s.stage.sigma:g}"
            parts.append(text)
        return " › ".join(parts)

    def identity(self) -> list[dict]:
        """What makes this chain's output what it is: model names, weight hashes, strengths, σ."""
        return [
            {"model": s.name, "sha256": s.sha256, "strength": s.stage.strength, "sigma": s.stage.sigma}
            for s in self.stages
        ]

    def speed(self, size: int = 128, seconds: float = 1.0) -> dict:
        """Frames per second of this chain on ``size``×``size`` noise frames, after one warm-up frame.

        Runs for at least ``seconds`` and two frames; returns ``fps``, ``frames``, ``size``,
        ``device`` and ``chain`` (:meth:`describe`).
        """
        import time

        if size < 8:
            raise ArchivistError(f"size {size} invalid: allowed 8 pixels or more")
        img = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
        self.run(img)  # warm-up: kernels chosen, memory allocated
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or n < 2:
            self.run(img)
            n += 1
        dt = time.perf_counter() - t0
        return {"fps": n / dt, "frames": n, "size": size, "device": str(self.device), "chain": self.describe()}

    def run(self, image: np.ndarray) -> np.ndarray:
        """Restore one H×W×3 RGB image (uint8, uint16 or float32 in [0, 1]); same dtype back."""
        return self.run_batch(image[None])[0]

    def run_batch(self, images: np.ndarray) -> np.ndarray:
        """Restore N×H×W×3 RGB frames (uint8, uint16 or float32 in [0, 1]); returns the same dtype.

        Integer frames travel to the device as integers and are converted there: a quarter of the
        bytes of float32 for 8-bit video, which is what keeps a fast GPU fed. N×H×W×C is already
        the channels_last layout the networks run in, so no transpose copy is made.
        """
        import torch

        if images.ndim != 4 or images.shape[-1] != 3:
            raise ArchivistError(f"expected N×H×W×3 RGB frames, got shape {tuple(images.shape)}")
        peaks = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}
        peak = peaks.get(images.dtype)
        if peak is None:
            raise ArchivistError(f"frames must be uint8, uint16 or float32, not {images.dtype}")
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(images))
            if images.dtype == np.uint16:  # torch has no uint16 arithmetic on every device
                t = t.to(torch.int32)
            t = t.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
            x = t.float()
            if peak != 1.0:
                x = x.mul_(1.0 / peak)
            # One flag per stage, read once the frames are back on the host: no extra device sync.
            finite: list = []
            x = self.run_tensor(x, finite)
            if peak != 1.0:
                x = x.mul_(peak).round_()
                x = x.to(torch.uint8) if images.dtype == np.uint8 else x.to(torch.int32)
            out = x.permute(0, 2, 3, 1).contiguous().cpu().numpy()
            ok = torch.stack(finite).cpu().tolist()
        if not all(ok):
            self._refuse_nonfinite(ok.index(False))
        return out.astype(images.dtype, copy=False)

    def run_tensor(self, x, finite: list | None = None):
        """Restore N×3×H×W float32 frames in [0, 1] already on the chain's device; returns the same, clamped.

        Nothing is copied to or from the host and nothing waits for the device: this is the model
        alone, as the benchmarks time it. ``finite``, when given, receives one boolean tensor per
        stage (whether its output held only finite values), to be read once the frames are back.
        """
        import torch

        with torch.inference_mode():
            for stage in self.stages:
                x = self._run_stage(stage, x)
                if finite is not None:
                    finite.append(torch.isfinite(x).all())
            return x.clamp_(0, 1)

    def _refuse_nonfinite(self, index: int) -> None:
        # NaN or infinity would be clamped into black or white frames: stop instead, before the
        # frame is written, and say which stage broke and what may help.
        import torch

        s = self.stages[index]
        hint = ("its weights overflow in this precision: try {0} fp32"
                if s.dtype != torch.float32 else "its weights overflow (the model is broken)")
        # The advice names the key ``precision`` (a job's, the API's); the command line shows ``--precision``.
        raise Conflict(("precision",), f"model {s.name!r} (stage {index + 1} of the chain) gave non-finite values "
                                       f"(NaN or infinity) on this frame, so nothing was written for it: {hint}")

    def _run_stage(self, s: _LoadedStage, x):
        import torch
        import torch.nn.functional as F

        from engine.inference.tiling import run_tiled

        def forward(t):
            t = t.to(s.dtype)
            if s.spec.takes_sigma:
                level = torch.full_like(t[:, :1], s.stage.sigma / 255.0)
                t = torch.cat([t, level], dim=1)
            t = t.contiguous(memory_format=torch.channels_last)
            return s.runner(t).float()

        tile = self.tile
        while True:
            try:
                out = run_tiled(forward, x, tile, self.tile_overlap, s.spec.scale, s.spec.size_multiple)
                break
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                current = tile or max(x.shape[-2:])
                if current // 2 < MIN_TILE:
                    raise ArchivistError(
                        f"out of GPU memory on {self.device} even with {current}px tiles; "
                        "try fp16 precision, a smaller tile or another device"
                    ) from None
                tile = current // 2
                log.warning("CUDA out of memory: retrying with %dpx tiles", tile)
        if s.stage.strength >= 1.0:
            return out
        base = x if s.spec.scale == 1 else F.interpolate(x, scale_factor=s.spec.scale, mode="bicubic")
        return base + (out - base) * s.stage.strength
