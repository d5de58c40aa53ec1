"""Reading and writing model files, paranoid about what they contain.

Reads ``.pth``/``.pt``/``.ckpt``/``.bin`` (PyTorch; BasicSR/Real-ESRGAN layout ``params_ema`` >
``params`` > bare state dict, ``module.`` prefixes stripped) and ``.safetensors``. What a file
declares (sizes, counts, headers, metadata) is bounded before any tensor data is read
(:mod:`engine.models.declared`). PyTorch files are opened with ``torch.load(weights_only=True)``:
a file that holds anything but tensors and plain containers is refused and no code in it ever
runs. Weights must be finite. The architecture and its hyper-parameters are detected from the
keys and shapes, and from metadata or hints where the shapes cannot tell (see :func:`detect_spec`).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.atomic import atomic_write
from engine.errors import ArchivistError, os_error_line
from engine.models.declared import (
    ALLOWED,
    check_legacy_pickle,
    check_torch_zip,
    clip,
    sniff_torch,
    stat_file,
)
from engine.models.metadata import decode_metadata, encode_metadata, read_safetensors_header
from engine.models.spec import AmbiguousWeights, Hints, ModelSpec

log = logging.getLogger(__name__)

ARCH_MODULES = ("compact", "drunet", "discriminator")
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
MODEL_SUFFIXES = TORCH_SUFFIXES + (".safetensors",)
# Keys a BasicSR/Real-ESRGAN/Lightning file may wrap its weights in, best first.
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net_g", "generator")
# Beside ``params`` in an Archivist ``.pth`` export: the metadata as str→str, as in safetensors.
# Real-ESRGAN, chaiNNer and spandrel read ``params`` and ignore other keys.
PTH_METADATA_KEY = "metadata"


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


def read_state_dict(path: str | os.PathLike, kind: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read the weights and the metadata (safetensors, or an Archivist ``.pth``) of a model file.

    ``kind`` (``safetensors`` or ``pth``) overrides the suffix, for temporary files. Raises
    :class:`ArchivistError` naming the file and what is wrong for a missing, empty, truncated,
    non-model or code-carrying file, and for weights that are not all finite.
    """
    tensors, metadata = _read_any(Path(path), kind)
    bad = find_nonfinite(tensors)
    if bad is not None:
        name, count = bad
        raise ArchivistError(f"{path}: weight {name} holds {count} non-finite value{'s' if count > 1 else ''} "
                             "(NaN or infinity): the model is broken (a diverged training run?) and is refused")
    return tensors, metadata


def find_nonfinite(state_dict: dict[str, torch.Tensor]) -> tuple[str, int] | None:
    """The first floating-point tensor (by name) holding NaN or infinity and how many such values; or None."""
    for key in sorted(state_dict):
        t = state_dict[key]
        if t.is_floating_point() or t.is_complex():
            finite = torch.isfinite(t)
            if not bool(finite.all()):
                return key, int((~finite).sum())
    return None


def _read_any(path: Path, kind: str | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    import stat

    st = stat_file(path)
    if stat.S_ISDIR(st.st_mode):
        raise ArchivistError(f"{path}: is a folder, not a model file")
    if not stat.S_ISREG(st.st_mode):
        raise ArchivistError(f"{path}: not a regular file (a device, pipe or socket), not a model file")
    if st.st_size == 0:
        raise ArchivistError(f"{path}: empty file, not a model")
    suffix = path.suffix.lower() if kind is None else {"safetensors": ".safetensors", "pth": ".pth"}[kind]
    if suffix == ".safetensors":
        return _read_safetensors(path)
    if suffix in TORCH_SUFFIXES or suffix == "":
        return _read_torch(path, st.st_size)
    if suffix == ".onnx":
        raise ArchivistError(f"{path}: an ONNX file; Archivist imports {ALLOWED} (ONNX is an export format only)")
    raise ArchivistError(
        f"{path}: unsupported model file type {suffix!r}: allowed are {', '.join(MODEL_SUFFIXES)}"
    )


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    header = read_safetensors_header(path)  # bounded and checked before any tensor data is read
    raw_meta = header.get("__metadata__") or {}
    try:
        metadata = decode_metadata(raw_meta)
    except ArchivistError as exc:
        raise ArchivistError(f"{path}: {exc}") from None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ArchivistError(f"{path}: not a valid safetensors file (truncated or corrupt: {clip(str(exc))})") from None
    return tensors, metadata


def _read_torch(path: Path, size: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    import pickle

    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise ArchivistError(os_error_line(exc, path, "a model file")) from None
    # What the file declares is bounded before torch reads (and allocates for) any of its data.
    if sniff_torch(path, head, size) == "zip":
        check_torch_zip(path)
    else:
        check_legacy_pickle(path, size)
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
            f"weights only, never code ({clip(first)})"
        ) from None
    except Exception as exc:  # arbitrary bytes make the unpickler fail in arbitrary ways
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArchivistError(f"{path}: not a readable PyTorch model file (truncated or corrupt: {clip(msg)})") from None
    meta = obj.get(PTH_METADATA_KEY) if isinstance(obj, dict) else None
    if isinstance(meta, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        try:
            metadata = decode_metadata(meta)
        except ArchivistError as exc:
            raise ArchivistError(f"{path}: {exc}") from None
    else:
        metadata = {}
    return unwrap_state_dict(obj, path), metadata


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


def hints_from_metadata(metadata: dict[str, Any], path: Path | str = "<memory>") -> Hints:
    """The answers a file's metadata gives to what weights cannot tell (Compact activation, scale, channels).

    Metadata is data from strangers: a value of the wrong type is an error naming the key.
    """
    if metadata.get("arch") not in (None, "compact"):
        return Hints()
    from engine.models.compact import ACTIVATIONS, IMAGE_CHANNELS

    act, scale, out = metadata.get("act_type"), metadata.get("scale"), metadata.get("out_channels")
    if act is not None and act not in ACTIVATIONS:
        raise ArchivistError(f"{path}: metadata act_type {act!r} invalid: allowed are {', '.join(ACTIVATIONS)}")
    for key, value, allowed in (("scale", scale, range(1, 17)), ("out_channels", out, IMAGE_CHANNELS)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value not in allowed):
            shown = "1 to 16" if key == "scale" else ", ".join(map(str, allowed))
            raise ArchivistError(f"{path}: metadata {key} {value!r} invalid: allowed {shown}")
    return Hints.given("metadata", act_type=act, scale=scale, out_channels=out)


def detect_spec(state_dict: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None,
                path: Path | str = "<memory>", hints: Hints | None = None,
                fallback: Hints | None = None) -> ModelSpec:
    """Detect the architecture and hyper-parameters from the keys and shapes.

    What the shapes cannot tell comes from, in order: ``hints`` (command-line flags, which must
    agree with the metadata), the file's ``metadata``, then ``fallback`` (a training config's
    network, used only where the file says nothing). Weights that still fit more than one network
    are refused with the readings; nothing is guessed.
    """
    known = hints_from_metadata(metadata or {}, path)
    if hints is not None:
        try:
            known = hints.combined(known, strict=True)
        except ValueError as exc:
            raise ArchivistError(f"{path}: {exc}") from None
    if fallback is not None:
        known = known.combined(fallback, strict=False)
    for name in ARCH_MODULES:
        try:
            spec = importlib.import_module(f"engine.models.{name}").detect(state_dict, known)
        except AmbiguousWeights as exc:
            raise ArchivistError(f"{path}: {exc.readings}; import it saying which: "
                                 f"archivist models import {path} {exc.flags}") from None
        except ArchivistError as exc:
            raise ArchivistError(f"{path}: {exc}") from None
        if spec is not None:
            flagged = [hints.label(k) for k, _ in hints.items()] if hints is not None else []
            if spec.arch != "compact" and flagged:
                raise ArchivistError(f"{path}: is a {spec.arch} network: {', '.join(flagged)} apply only to Compact")
            return spec
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


def load_model(path: str | os.PathLike, hints: Hints | None = None, fallback: Hints | None = None,
               kind: str | None = None) -> LoadedModel:
    """Read a model file, detect its architecture and return the network in eval mode on the CPU.

    ``hints`` and ``fallback`` answer what the weights cannot tell (see :func:`detect_spec`).
    """
    path = Path(path)
    state_dict, metadata = read_state_dict(path, kind)
    spec = detect_spec(state_dict, metadata, path, hints, fallback)
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


_TEMP_RE = re.compile(r"^\..+?\.(?:(\d+)\.)?[A-Za-z0-9_]+\.part$")


def remove_stale_temp_files(folder: Path, prefix: str = "") -> list[Path]:
    """Remove the partial files :func:`atomic_write` left in ``folder`` (names starting with
    ``.PREFIX``) when its writer was killed: those whose writer process is gone, and those of the
    older naming that carries no process id. Returns what was removed."""
    from engine.ownership import pid_alive

    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP_RE.match(name)
        if not m or not name.startswith("." + prefix):
            continue
        if m.group(1) is not None and pid_alive(int(m.group(1))):
            continue  # still being written
        path = Path(folder) / name
        try:
            path.unlink()
        except OSError:
            continue
        log.info("removed %s, a partial file whose writer died", path)
        removed.append(path)
    return removed


def save_torch(obj: Any, path: Path) -> None:
    """``torch.save`` whose write errors stay OSErrors (torch's own file writer turns a full disk into
    an opaque RuntimeError): the archive is built in memory, then written with one plain write."""
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    with open(path, "wb") as f:
        f.write(buf.getbuffer())


def model_metadata(spec: ModelSpec, tensors: dict[str, torch.Tensor], **extra: Any) -> dict[str, Any]:
    """What Archivist writes beside the weights: arch, hyper-parameters, sizes, params, sha256, plus ``extra``.

    It carries what the weights cannot tell (a Compact's activation, output channels and scale),
    so every file Archivist writes reads back as the same network.
    """
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
    return meta


def save_safetensors(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], spec: ModelSpec,
                     **extra: Any) -> dict[str, Any]:
    """Save weights as ``.safetensors`` with Archivist metadata; returns the metadata written.

    Metadata: arch, hyper-parameters, num_feat, num_conv, scale, channels, params, sha256 of the
    weights, plus ``extra`` (role, iterations, source, profiles and their hashes, ...).
    """
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    meta = model_metadata(spec, tensors, **extra)
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=encode_metadata(meta)))
    return meta


def probe_input(spec: ModelSpec) -> torch.Tensor:
    """A small fixed input for a network (24×40, rounded up to its size multiple; σ map included)."""
    m = spec.size_multiple
    h, w = -(-24 // m) * m, -(-40 // m) * m
    x = torch.rand(1, spec.in_channels, h, w, generator=torch.Generator().manual_seed(20))
    if spec.takes_sigma:
        x = torch.cat([x, torch.full_like(x[:, :1], 5 / 255)], dim=1)
    return x


def check_export(tmp: Path, kind: str, module: torch.nn.Module, spec: ModelSpec, shown: Path) -> None:
    """Read back a file just written to ``tmp`` and run it beside the source network on a small input.

    Raises :class:`ArchivistError` naming ``shown`` (the final path) when the file reads back as
    another network or gives other values; the caller's atomic write then leaves nothing behind.
    """
    try:
        back = load_model(tmp, kind=kind)
    except ArchivistError as exc:
        reason = str(exc).replace(f"{tmp}: ", "").replace(str(tmp), str(shown))
        raise ArchivistError(f"{shown}: export check failed, nothing written: the file does not read back "
                             f"({reason})") from None
    if back.spec != spec:
        raise ArchivistError(f"{shown}: export check failed, nothing written: the file reads back as "
                             f"{back.spec.describe()} {back.spec.hyper}, the source is {spec.describe()} {spec.hyper}")
    x = probe_input(spec)
    with torch.no_grad():
        want, got = module.float().eval()(x), back.module(x)
    if got.shape != want.shape or not torch.equal(got, want):
        raise ArchivistError(f"{shown}: export check failed, nothing written: the file's network gives other "
                             f"values than the source on a {x.shape[2]}\u00d7{x.shape[3]} input")


def export_pth(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None,
               spec: ModelSpec | None = None) -> None:
    """Write ``{"params": state_dict, "metadata": ...}``, the Real-ESRGAN layout plus Archivist's metadata.

    chaiNNer, spandrel and Real-ESRGAN read ``params`` and ignore the rest; Archivist reads the
    metadata back, so a ReLU or LeakyReLU Compact imports again unchanged. The file is read back
    and checked against the source network before it takes its name.
    """
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    if spec is None:
        spec = detect_spec(tensors, metadata or {}, path)
    source = build_module(spec, tensors, path)
    meta = model_metadata(spec, tensors, **{k: v for k, v in (metadata or {}).items() if k not in ("params", "sha256")})
    obj = {"params": tensors, PTH_METADATA_KEY: encode_metadata(meta)}

    def write(tmp: Path) -> None:
        save_torch(obj, tmp)
        check_export(tmp, "pth", source, spec, path)

    atomic_write(path, write)


ONNX_PACKAGES = ("onnx", "onnxruntime")


def require_onnx() -> None:
    """Raise the one-line install hint when a package ONNX export needs is missing."""
    missing = []
    for name in ONNX_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ArchivistError(f"ONNX export needs the {' and '.join(missing)} package{'s' if len(missing) > 1 else ''}, "
                             "not installed here: pip install 'archivist[onnx]'")


def export_onnx(path: str | os.PathLike, module: torch.nn.Module, spec: ModelSpec, opset: int = 17,
                metadata: dict[str, Any] | None = None) -> None:
    """Export to ONNX with dynamic batch, height and width (float32, NCHW, input named ``input``).

    The model's metadata goes into the graph's ``metadata_props`` (activation, scale, channels,
    sha256 of the weights). Before the file takes its name it is run with onnxruntime on an input
    of another size than the traced one and compared with the source network.
    """
    path = Path(path)
    require_onnx()
    in_ch = spec.in_channels + (1 if spec.takes_sigma else 0)
    side = max(16, spec.size_multiple * 4)
    example = torch.rand(1, in_ch, side, side)
    dynamic = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "height", 3: "width"}}
    module = module.float().eval()
    sd = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    meta = model_metadata(spec, sd, **{k: v for k, v in (metadata or {}).items() if k not in ("params", "sha256")})

    def write(tmp: Path) -> None:
        import onnx

        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice is not ours to show
            torch.onnx.export(
                module, (example,), str(tmp), input_names=["input"], output_names=["output"],
                dynamic_axes=dynamic, opset_version=opset, dynamo=False,
            )
        graph = onnx.load(str(tmp))
        for key, value in encode_metadata(meta).items():
            prop = graph.metadata_props.add()
            prop.key, prop.value = key, value
        onnx.save(graph, str(tmp))
        _check_onnx(tmp, module, spec, path)

    try:
        atomic_write(path, write)
    except ImportError as exc:
        raise ArchivistError(f"ONNX export needs the {exc.name or 'onnx'} package, not installed here: "
                             "pip install 'archivist[onnx]'") from None
    except torch.onnx.OnnxExporterError as exc:
        # torch reports a missing onnx package this way, not as ImportError.
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "not installed" in text:
            raise ArchivistError("ONNX export needs the onnx package, not installed here: "
                                 "pip install 'archivist[onnx]'") from None
        raise ArchivistError(f"{path}: ONNX export failed, nothing written: {text[:200]}") from None


def _check_onnx(tmp: Path, module: torch.nn.Module, spec: ModelSpec, shown: Path) -> None:
    """Run the exported graph with onnxruntime beside the source network on a small input."""
    import numpy as np
    import onnxruntime as ort

    x = probe_input(spec)
    with torch.no_grad():
        want = module(x).numpy()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are not the user's business
    session = ort.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"])
    got = session.run(["output"], {"input": x.numpy()})[0]
    tol = 1e-4 * max(1.0, float(np.abs(want).max()))
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=tol):
        def dims(shape) -> str:
            return "\u00d7".join(map(str, shape))

        raise ArchivistError(f"{shown}: export check failed, nothing written: the ONNX graph's output "
                             f"({dims(got.shape)}) differs from the network's ({dims(want.shape)}) on a "
                             f"{x.shape[2]}\u00d7{x.shape[3]} input")
