"""How a chain's networks run (``--backend auto|eager|compile|tensorrt``).

- ``eager``: plain PyTorch, one kernel launch per layer.
- ``compile``: ``torch.compile`` with static shapes, compiled once per input shape (a resolution,
  a tile size, a batch size) on first use; on CUDA in mode ``max-autotune-no-cudagraphs`` with
  CUDA graphs on top (:class:`GraphedForward`), on the CPU in inductor's default mode.
- ``tensorrt``: a TensorRT engine built from the network's ONNX export for each input shape,
  cached under ``ARCHIVIST_HOME/cache/tensorrt/`` (:func:`engine_cache_key`) and reused.
- ``auto``: eager on the CPU; on CUDA TensorRT where it is installed, else ``compile``, for every
  input shape seen :data:`AUTO_AFTER` times (a video, a folder of same-sized scans), so a folder of
  images of many sizes is not compiled image by image.

A backend that cannot be built falls back to the next one (``tensorrt`` → ``compile`` → ``eager``)
with one warning line naming why; only the final eager step cannot fail. Frames keep the chain's
precision and channels_last layout whichever backend runs them. This module imports torch only
inside functions, so job specs are validated without it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.document import Conflict
from engine.errors import ArchivistError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "eager", "compile", "tensorrt")
# What the TensorRT backend imports: TensorRT itself, and onnx to hand it the network.
TENSORRT_PACKAGES = ("tensorrt", "onnx")
# ``{0}`` is the key ``backend`` (a Conflict's words): the command line shows it as ``--backend``.
TENSORRT_HINT = "pip install tensorrt onnx (TensorRT for this machine's CUDA), or use {0} compile"
# auto builds a compiled form of an input shape once the shape has run this many times eagerly.
AUTO_AFTER = 3
# On CUDA the graphs are ours (they wrap compile and eager alike), so inductor's are left out.
COMPILE_MODE_CUDA = "max-autotune-no-cudagraphs"
COMPILE_MODE_CPU = "default"
# Dynamo's default of 8 compiled shapes per function is soon reached by tiles, batch sizes and
# several models of one architecture; past the limit it silently runs eagerly.
RECOMPILE_LIMIT = 64
ENGINE_FORMAT = "archivist-tensorrt-1"
PRECISION_NAMES = ("fp32", "fp16", "bf16")


def check_backend(name: str) -> str:
    """Validate a ``--backend`` value (also a queued job's ``backend``) without importing torch.

    ``tensorrt`` must also be importable here: otherwise the one-line install hint.
    """
    if name not in BACKENDS:
        raise ArchivistError(f"invalid backend {name!r}: allowed are {', '.join(BACKENDS)}")
    if name == "tensorrt":
        missing = tensorrt_missing()
        if missing:
            raise Conflict(("backend",), f"backend tensorrt needs the {' and '.join(missing)} package"
                                         f"{'s' if len(missing) > 1 else ''}, not installed here: {TENSORRT_HINT}")
    return name


def tensorrt_missing() -> list[str]:
    """The packages of :data:`TENSORRT_PACKAGES` that cannot be imported here (found, not imported)."""
    missing = []
    for name in TENSORRT_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a module hidden as None in sys.modules, a broken package
            found = False
        if not found:
            missing.append(name)
    return missing


@dataclass(frozen=True)
class Step:
    """One way to run a network: a backend, and whether CUDA graphs replay it."""

    backend: str
    graphs: bool = False

    def __str__(self) -> str:
        return self.backend + ("+cudagraphs" if self.graphs else "")


def plan_steps(backend: str, device_type: str, cuda_graphs: bool | None = None) -> list[Step]:
    """What to try for ``backend`` on a device, best first; the last step, eager, always works.

    ``cuda_graphs``: None replays compiled networks through CUDA graphs on CUDA and leaves eager
    ones alone; True or False forces it for both (True needs CUDA).
    """
    if backend not in BACKENDS:
        raise ArchivistError(f"invalid backend {backend!r}: allowed are {', '.join(BACKENDS)}")
    cuda = device_type == "cuda"
    if cuda_graphs and not cuda:
        raise ArchivistError("CUDA graphs need a CUDA device")
    if backend == "tensorrt" and not cuda:
        raise Conflict(("backend",), "backend tensorrt needs a CUDA device: use {0} compile or eager on the CPU")
    graphs_compiled = cuda if cuda_graphs is None else cuda_graphs
    graphs_eager = bool(cuda_graphs)
    if backend == "eager" or (backend == "auto" and not cuda):
        steps = [Step("eager", True)] if graphs_eager else []
        return steps + [Step("eager")]
    steps = [Step("compile", graphs_compiled), Step("eager")]
    if backend == "tensorrt" or (backend == "auto" and not tensorrt_missing()):
        steps.insert(0, Step("tensorrt"))
    if graphs_eager:
        steps.insert(-1, Step("eager", True))
    return steps


def precision_name(dtype) -> str:
    """``fp32``, ``fp16`` or ``bf16`` for a torch dtype."""
    import torch

    names = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
    if dtype not in names:
        raise ArchivistError(f"no backend runs networks in {dtype}")
    return names[dtype]


class StageRunner:
    """Runs one stage's network through the planned steps, built once per input shape.

    Called with NCHW input already in the stage's dtype and layout; returns the network's output.
    A smaller batch of a shape already built (the last frames of a video) runs padded to it
    rather than being compiled again.
    """

    def __init__(self, module, steps: list[Step], label: str, model_sha256: str, *, build_after: int = 1,
                 compile_mode: str | None = None):
        self.module = module
        self.steps = list(steps)
        self.label = label
        self.model_sha256 = model_sha256
        self.build_after = max(1, build_after)
        self.compile_mode = compile_mode
        self._built: dict[tuple, tuple[Step, Callable]] = {}
        self._seen: dict[tuple, int] = {}
        self._compiled = None

    def built(self) -> dict[tuple, str]:
        """Each input shape built so far and the step that runs it (``compile+cudagraphs``)."""
        return {shape: str(step) for shape, (step, _fn) in self._built.items()}

    def __call__(self, x):
        shape = (tuple(x.shape), x.dtype, x.device)
        entry = self._built.get(shape)
        if entry is None:
            padded = self._fit(x)
            if padded is not None:
                return padded
            if len(self.steps) == 1:  # nothing to build: eager
                return self.module(x)
            self._seen[shape] = self._seen.get(shape, 0) + 1
            if self._seen[shape] < self.build_after:
                return self.module(x)
            entry = self._built[shape] = self._build(x)
        return entry[1](x)

    def _fit(self, x):
        import torch

        n = x.shape[0]
        for (shape, dtype, device), (step, fn) in self._built.items():
            if step == Step("eager"):  # eager runs any batch as it comes: padding would only cost time
                continue
            if shape[1:] == tuple(x.shape[1:]) and shape[0] > n and dtype == x.dtype and device == x.device:
                pad = x[-1:].expand(shape[0] - n, *x.shape[1:])
                full = torch.cat([x, pad]).contiguous(memory_format=torch.channels_last)
                return fn(full)[:n]
        return None

    def _build(self, x) -> tuple[Step, Callable]:
        import torch

        while True:
            step = self.steps[0]
            if step.backend == "eager" and not step.graphs:
                return step, self.module
            try:
                fn = self._make(step, x)
                fn(x)  # a compiled network compiles here; a failure is a build failure, not a frame's
                log.info("model %r: %s for input %s", self.label, step, "×".join(map(str, x.shape)))
                return step, fn
            except torch.cuda.OutOfMemoryError:
                raise  # the chain answers this with smaller tiles
            except Exception as exc:  # noqa: BLE001 - any build failure falls back, with its reason
                self.steps.pop(0)
                log.warning("backend %s could not be built for model %r at %s (%s): falling back to %s",
                            step, self.label, "×".join(map(str, x.shape)), _reason(exc), self.steps[0])

    def _make(self, step: Step, x) -> Callable:
        if step.backend == "tensorrt":
            return TensorRTForward(self.module, x, self.model_sha256)
        fn = self.module
        if step.backend == "compile":
            fn = self._compiled_module(x.device.type)
        if step.graphs:
            fn = GraphedForward(fn, x)
        return fn

    def _compiled_module(self, device_type: str):
        import torch

        if self._compiled is None:
            config = torch._dynamo.config
            for name in ("recompile_limit", "cache_size_limit"):
                if hasattr(config, name):
                    setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))
            mode = self.compile_mode or (COMPILE_MODE_CUDA if device_type == "cuda" else COMPILE_MODE_CPU)
            # dynamic=False: every resolution gets kernels of its own, as a film keeps one size.
            self._compiled = torch.compile(self.module, mode=mode, dynamic=False)
        return self._compiled


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first[:160]}" if first else type(exc).__name__


class GraphedForward:
    """A network captured once as a CUDA graph for one input shape and replayed for each batch.

    Replaying the graph launches every kernel of the network in one call, which is what the CPU
    side of a small network cannot keep up with at hundreds of frames a second. The input is copied
    into the graph's own buffer; the output is copied out, so the next replay cannot overwrite a
    result still in use.
    """

    def __init__(self, fn: Callable, example):
        import torch

        self.static_in = example.clone()
        stream = torch.cuda.Stream(device=example.device)
        stream.wait_stream(torch.cuda.current_stream(example.device))
        with torch.cuda.stream(stream):  # warm-up off the capture: cuDNN and autotuning choose here
            for _ in range(2):
                fn(self.static_in)
        torch.cuda.current_stream(example.device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = fn(self.static_in)

    def __call__(self, x):
        self.static_in.copy_(x)
        self.graph.replay()
        return self.static_out.clone()


# -- TensorRT -------------------------------------------------------------------------------------
def engine_cache_key(model_sha256: str, shape: tuple[int, ...], precision: str, gpu: str,
                     versions: dict[str, str]) -> str:
    """The name of a cached TensorRT engine: a hash of everything an engine is only valid for.

    The model's weights (their sha256), the input shape (N, C, H, W), the precision, the GPU (name
    and compute capability) and the versions of TensorRT, torch and CUDA. Pure: no GPU needed.
    """
    if len(model_sha256) != 64 or any(c not in "0123456789abcdef" for c in model_sha256):
        raise ValueError(f"model_sha256 must be 64 lower-case hex digits, not {model_sha256!r}")
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(f"shape must be four positive integers (N, C, H, W), not {shape!r}")
    if precision not in PRECISION_NAMES:
        raise ValueError(f"precision must be one of {', '.join(PRECISION_NAMES)}, not {precision!r}")
    doc = {"format": ENGINE_FORMAT, "model": model_sha256, "shape": list(shape), "precision": precision,
           "gpu": gpu, "versions": {str(k): str(v) for k, v in versions.items()}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def engine_cache_dir() -> Path:
    """``ARCHIVIST_HOME/cache/tensorrt``, created 0700."""
    from engine.paths import state_subdir

    path = state_subdir("cache") / "tensorrt"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def cached_engine(key: str, build: Callable[[], bytes], load: Callable[[bytes], Any], describe: dict) -> Any:
    """Load engine ``key`` from the cache, or build it, store it and load it.

    ``load`` returns None for bytes it cannot use (a truncated file, another TensorRT's engine):
    such a file is built again and replaced. The engine is written atomically beside a
    ``KEY.json`` that says what it was built for. Only engines this function wrote are ever read:
    an engine is code for the GPU, so none is taken from anywhere else.
    """
    from engine.atomic import atomic_write

    folder = engine_cache_dir()
    path = folder / f"{key}.engine"
    if path.is_file():
        engine = load(path.read_bytes())
        if engine is not None:
            log.info("TensorRT engine reused: %s", path)
            return engine
        log.warning("cached TensorRT engine %s could not be loaded: building it again", path)
    blob = build()
    engine = load(blob)
    if engine is None:
        raise RuntimeError("TensorRT built an engine it cannot load")
    atomic_write(path, lambda tmp: tmp.write_bytes(blob))
    text = json.dumps(describe, indent=1, sort_keys=True) + "\n"
    atomic_write(folder / f"{key}.json", lambda tmp: tmp.write_text(text))
    log.info("TensorRT engine built and cached: %s", path)
    return engine


def _float_io(module, dtype):
    """The network with float32 input and output. TensorRT's strongly typed build keeps the types the
    graph carries, so the casts inside the graph are what make it an fp16 or bf16 engine."""
    from torch import nn

    class FloatIO(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = module

        def forward(self, x):
            return self.net(x.to(dtype)).float()

    return FloatIO().eval()


def export_onnx_for_tensorrt(module, shape: tuple[int, ...], dtype, path: str | Path) -> None:
    """Export ``module`` at one static ``shape`` to ONNX, float32 in and out, the network in ``dtype``."""
    import warnings

    import torch

    device = next(module.parameters()).device
    example = torch.zeros(shape, dtype=torch.float32, device=device)
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice is not ours to show
        torch.onnx.export(_float_io(module, dtype), (example,), str(path), input_names=["input"],
                          output_names=["output"], opset_version=17, dynamo=False)


def _trt_logger():
    import tensorrt as trt

    global _LOGGER
    if _LOGGER is None:
        _LOGGER = trt.Logger(trt.Logger.ERROR)
    return _LOGGER


_LOGGER = None


def build_tensorrt_engine(module, shape: tuple[int, ...], dtype) -> bytes:
    """Build a serialized TensorRT engine for one input shape from the network's ONNX export."""
    import tempfile

    import tensorrt as trt

    with tempfile.TemporaryDirectory(prefix="archivist-trt-") as tmp:
        onnx_path = Path(tmp) / "network.onnx"
        export_onnx_for_tensorrt(module, shape, dtype, onnx_path)
        builder = trt.Builder(_trt_logger())
        flags = 0
        strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if strongly is not None:  # TensorRT 10 asks for it; 11 is always strongly typed
            flags |= 1 << int(strongly)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, _trt_logger())
        if not parser.parse_from_file(str(onnx_path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise RuntimeError("TensorRT could not read the ONNX export: " + (errors[0] if errors else "no reason"))
        config = builder.create_builder_config()
        blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise RuntimeError("TensorRT could not build an engine for this network")
    return bytes(blob)


def gpu_identity(device) -> str:
    """``NVIDIA H200 sm_90``: what a TensorRT engine is built for."""
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    return f"{torch.cuda.get_device_name(device)} sm_{major}{minor}"


class TensorRTForward:
    """One TensorRT engine for one input shape, taken from the cache or built, run on torch's stream."""

    def __init__(self, module, example, model_sha256: str):
        import tensorrt as trt
        import torch

        shape = tuple(int(d) for d in example.shape)
        precision = precision_name(example.dtype)
        versions = {"tensorrt": trt.__version__, "torch": torch.__version__, "cuda": torch.version.cuda or ""}
        gpu = gpu_identity(example.device)
        key = engine_cache_key(model_sha256, shape, precision, gpu, versions)
        runtime = trt.Runtime(_trt_logger())
        describe = {"format": ENGINE_FORMAT, "model_sha256": model_sha256, "shape": list(shape),
                    "precision": precision, "gpu": gpu, "versions": versions}
        self.engine = cached_engine(key, lambda: build_tensorrt_engine(module, shape, example.dtype),
                                    lambda blob: runtime.deserialize_cuda_engine(blob), describe)
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.out_shape = tuple(self.context.get_tensor_shape(self.output))

    def __call__(self, x):
        import torch

        inp = x.float().contiguous()  # the engine reads plain NCHW float32
        out = torch.empty(self.out_shape, dtype=torch.float32, device=x.device)
        self.context.set_tensor_address(self.input, inp.data_ptr())
        self.context.set_tensor_address(self.output, out.data_ptr())
        # Same stream as torch: the buffers' reuse by the caching allocator stays ordered after it.
        if not self.context.execute_async_v3(torch.cuda.current_stream(x.device).cuda_stream):
            raise RuntimeError("TensorRT could not run the engine")
        return out
