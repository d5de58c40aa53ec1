"""Reading and writing model files, paranoid about what they contain.

Reads ``.pth``/``.pt``/``.ckpt``/``.bin`` (PyTorch; BasicSR/Real-ESRGAN layout ``params_ema`` >
``params`` > bare state dict, ``module.`` prefixes stripped) and ``.safetensors``. PyTorch files
are opened with ``torch.load(weights_only=True)``: a file that holds anything but tensors and
plain containers is refused and no code in it ever runs. The architecture and its
hyper-parameters are detected from the keys and shapes.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.errors import ArchivistError
from engine.models.library import decode_metadata, encode_metadata  # noqa: F401 - re-exported
from engine.models.spec import ModelSpec

log = logging.getLogger(__name__)

ARCH_MODULES = ("compact", "drunet", "discriminator")
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
MODEL_SUFFIXES = TORCH_SUFFIXES + (".safetensors",)
# Keys a BasicSR/Real-ESRGAN/Lightning file may wrap its weights in, best first.
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net_g", "generator")


def arch_module(arch: str):
    """The module that defines an architecture (``compact``, ``drunet``, ``unet_discriminator``)."""
    name = {"unet_discriminator": "discriminator"}.get(arch, arch)
    if name not in ARCH_MODULES:
        raise ArchivistError(f"unknown architecture {arch!r}: known are compact, drunet")
    return importlib.import_module(f"engine.models.{name}")


@dataclass
class LoadedModel:
    """A network ready for inference (eval mode, on the CPU) and what is known about it."""

    path: Path
    spec: ModelSpec
    module: torch.nn.Module
    metadata: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read the weights and (for safetensors) the metadata of a model file.

    Raises :class:`ArchivistError` naming the file and what is wrong for a missing, empty,
    truncated, non-model or code-carrying file.
    """
    path = Path(path)
    if not path.exists():
        raise ArchivistError(f"{path}: no such file")
    if path.is_dir():
        raise ArchivistError(f"{path}: is a folder, not a model file")
    size = path.stat().st_size
    if size == 0:
        raise ArchivistError(f"{path}: empty file, not a model")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return _read_safetensors(path)
    if suffix in TORCH_SUFFIXES or suffix == "":
        return _read_torch(path), {}
    raise ArchivistError(
        f"{path}: unsupported model file type {suffix!r}: allowed are {', '.join(MODEL_SUFFIXES)}"
    )


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            raw_meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ArchivistError(f"{path}: not a valid safetensors file (truncated or corrupt: {exc})") from None
    return tensors, decode_metadata(raw_meta)


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    import pickle

    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols before refusing them
            warnings.simplefilter("ignore")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message opens with advice to retry with weights_only=False; keep only the reason.
        text = str(exc)
        if "WeightsUnpickler error:" in text:
            text = text.split("WeightsUnpickler error:", 1)[1]
        noise = ("Weights only load failed", "Please file an issue", "Check the documentation", "(1)", "(2)")
        lines = [ln.strip() for ln in text.splitlines()]
        first = next((ln for ln in lines if ln and not ln.startswith(noise)), "").split(". Please use")[0]
        raise ArchivistError(
            f"{path}: refused: the file holds Python objects other than tensors and Archivist loads "
            f"weights only, never code ({first[:160]})"
        ) from None
    except Exception as exc:  # arbitrary bytes make the unpickler fail in arbitrary ways
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArchivistError(f"{path}: not a readable PyTorch model file (truncated or corrupt: {msg[:160]})") from None
    return unwrap_state_dict(obj, path)


def unwrap_state_dict(obj: Any, path: Path | str = "<memory>") -> dict[str, torch.Tensor]:
    """Find the state dict in a loaded object (``params_ema`` > ``params`` > bare) and strip ``module.``."""
    if not isinstance(obj, dict):
        raise ArchivistError(f"{path}: not a model file (holds a {type(obj).__name__}, not a state dict)")
    for key in WRAPPER_KEYS:
        inner = obj.get(key)
        if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            obj = inner
            break
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ArchivistError(f"{path}: not a model file (no tensors found)")
    out = {}
    for k, v in tensors.items():
        while k.startswith("module."):
            k = k[len("module."):]
        out[k] = v
    return out


def detect_spec(state_dict: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None,
                path: Path | str = "<memory>") -> ModelSpec:
    """Detect the architecture and hyper-parameters from the keys and shapes."""
    act = (metadata or {}).get("act_type")
    for name in ARCH_MODULES:
        spec = importlib.import_module(f"engine.models.{name}").detect(state_dict, act)
        if spec is not None:
            return spec
    if "body.0.weight" in state_dict and "body.1.weight" not in state_dict:
        raise ArchivistError(
            f"{path}: looks like a Compact network without PReLU; its activation cannot be read from "
            "the weights (re-save it with Archivist metadata or use a PReLU model)"
        )
    keys = ", ".join(sorted(state_dict)[:4])
    raise ArchivistError(f"{path}: unknown architecture (keys begin {keys}); known are compact and drunet")


def build_module(spec: ModelSpec, state_dict: dict[str, torch.Tensor] | None = None,
                 path: Path | str = "<memory>") -> torch.nn.Module:
    """Instantiate the network for a spec and load weights into it (strictly)."""
    module = arch_module(spec.arch).build(spec)
    if state_dict is not None:
        try:
            module.load_state_dict(state_dict, strict=True)
        except RuntimeError as exc:
            raise ArchivistError(f"{path}: weights do not fit a {spec.describe()} network: "
                                 f"{str(exc).splitlines()[0][:200]}") from None
    return module.eval()


def load_model(path: str | os.PathLike) -> LoadedModel:
    """Read a model file, detect its architecture and return the network in eval mode on the CPU."""
    path = Path(path)
    state_dict, metadata = read_state_dict(path)
    spec = detect_spec(state_dict, metadata, path)
    if spec.arch == "unet_discriminator":
        raise ArchivistError(f"{path}: is a discriminator (training only), not a restoration model")
    module = build_module(spec, state_dict, path)
    sha = metadata.get("sha256") or weights_sha256(state_dict)
    return LoadedModel(path=path, spec=spec, module=module, metadata=metadata, sha256=sha)


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over the weights in key order (names, dtypes, shapes and bytes): file-format independent."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def param_count(state_dict: dict[str, torch.Tensor]) -> int:
    """Number of learnable values (spectral-norm buffers such as ``weight_u`` excluded)."""
    skip = ("weight_u", "weight_v", "weight_orig_u", "num_batches_tracked")
    return int(sum(t.numel() for k, t in state_dict.items() if not k.endswith(skip)))


def atomic_write(path: Path, write) -> None:
    """Write through ``write(tmp_path)`` to a temporary file beside ``path``, then rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_safetensors(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], spec: ModelSpec,
                     **extra: Any) -> dict[str, Any]:
    """Save weights as ``.safetensors`` with Archivist metadata; returns the metadata written.

    Metadata: arch, hyper-parameters, num_feat, num_conv, scale, channels, params, sha256 of the
    weights, plus ``extra`` (role, iterations, source, profiles and their hashes, ...).
    """
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    meta: dict[str, Any] = {
        "format": "archivist-model-1",
        "arch": spec.arch,
        "hyper": spec.hyper,
        "act_type": spec.hyper.get("act_type"),
        "num_feat": spec.hyper.get("num_feat", (spec.hyper.get("nc") or [None])[0]),
        "num_conv": spec.hyper.get("num_conv"),
        "scale": spec.scale,
        "in_channels": spec.in_channels,
        "out_channels": spec.out_channels,
        "params": param_count(tensors),
        "sha256": weights_sha256(tensors),
    }
    meta.update({k: v for k, v in extra.items() if v is not None})
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=encode_metadata(meta)))
    return meta


def export_pth(path: str | os.PathLike, state_dict: dict[str, torch.Tensor]) -> None:
    """Write ``{"params": state_dict}``, the Real-ESRGAN layout chaiNNer and spandrel load unchanged."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    atomic_write(Path(path), lambda tmp: torch.save({"params": tensors}, str(tmp)))


def export_onnx(path: str | os.PathLike, module: torch.nn.Module, spec: ModelSpec, opset: int = 17) -> None:
    """Export to ONNX with dynamic batch, height and width (float32, NCHW, input named ``input``)."""
    in_ch = spec.in_channels + (1 if spec.takes_sigma else 0)
    side = max(16, spec.size_multiple * 4)
    example = torch.rand(1, in_ch, side, side)
    dynamic = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "height", 3: "width"}}

    def write(tmp: Path) -> None:
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(
                module.float().eval(), (example,), str(tmp), input_names=["input"], output_names=["output"],
                dynamic_axes=dynamic, opset_version=opset, dynamo=False,
            )

    try:
        atomic_write(Path(path), write)
    except ImportError as exc:
        raise ArchivistError(f"ONNX export needs the onnx package ({exc.name} missing): "
                             "pip install 'archivist[onnx]'") from None
