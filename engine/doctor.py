"""``archivist doctor``: what this machine can do for Archivist, each line OK or a problem with its fix."""

from __future__ import annotations

import os
import platform
import stat
import sys
from dataclasses import asdict, dataclass

VIDEO_ENCODERS = {
    "libx264": "x264 (H.264)",
    "libx265": "x265 (HEVC, main10)",
    "prores_ks": "ProRes",
    "ffv1": "FFV1 (lossless master)",
    "h264_nvenc": "NVENC H.264",
    "hevc_nvenc": "NVENC HEVC",
}
# Encoders Archivist needs; NVENC is optional (needs an NVIDIA GPU and driver at run time anyway).
REQUIRED_ENCODERS = ("libx264", "libx265", "prores_ks", "ffv1")


@dataclass
class Check:
    """One line of the report."""

    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def run_checks() -> list[Check]:
    """Every check, in the order printed."""
    checks = [Check("python", "ok" if sys.version_info >= (3, 10) else "fail",
                    f"Python {platform.python_version()} ({sys.executable})", "install Python 3.10 or newer")]
    checks += _torch_checks()
    checks += _backend_checks()
    checks += _ffmpeg_checks()
    checks += _state_checks()
    checks += _library_checks()
    return checks


def _torch_checks() -> list[Check]:
    try:
        import torch
    except ImportError as exc:
        return [Check("torch", "fail", f"PyTorch not importable: {exc}", "pip install torch")]
    out = [Check("torch", "ok", f"PyTorch {torch.__version__}")]
    threads = torch.get_num_threads()
    out.append(Check("cpu", "ok", f"{os.cpu_count()} logical CPUs, torch uses {threads} threads"))
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            cap = torch.cuda.get_device_capability(i)
            fp16 = cap >= (5, 3)
            bf16 = cap >= (8, 0)
            out.append(Check(f"cuda:{i}", "ok",
                             f"{p.name}, {p.total_memory / 2**30:.1f} GiB, compute {cap[0]}.{cap[1]}, "
                             f"fp16 {'yes' if fp16 else 'no'}, bf16 {'yes' if bf16 else 'no'}"))
    else:
        built = torch.version.cuda
        detail = "no CUDA GPU visible: Archivist runs on the CPU (slow for whole films)"
        fix = ("check nvidia-smi and the driver" if built else
               "this torch is a CPU build; install a CUDA build of torch for GPU work")
        out.append(Check("cuda", "warn", detail, fix))
    return out


def _backend_checks() -> list[Check]:
    """Which ``--backend`` values can run here; TensorRT is optional, so its absence is no problem."""
    from engine.inference.backends import tensorrt_missing

    missing = tensorrt_missing()
    if not missing:
        return [Check("backends", "ok", "--backend eager, compile, tensorrt (on a CUDA GPU)")]
    return [Check("backends", "ok", f"--backend eager, compile; tensorrt needs {' and '.join(missing)}, not installed "
                  "(optional, on a CUDA GPU: pip install tensorrt onnx)")]


def _ffmpeg_checks() -> list[Check]:
    try:
        import av
    except ImportError as exc:
        return [Check("ffmpeg", "fail", f"PyAV not importable: {exc}", "pip install av")]
    versions = getattr(av, "library_versions", {})
    codec = versions.get("libavcodec")
    detail = f"PyAV {av.__version__}" + (f", libavcodec {'.'.join(map(str, codec))}" if codec else "")
    out = [Check("ffmpeg", "ok", detail)]
    available = set(av.codecs_available)
    usable = [name for name in VIDEO_ENCODERS if name in available and _can_encode(name)]
    missing = [name for name in REQUIRED_ENCODERS if name not in available]
    detail = "present: " + ", ".join(VIDEO_ENCODERS[n] for n in usable)
    detail += f"; missing: {', '.join(missing)}" if missing else ""
    if not set(usable) & set(NVENC):
        detail += " (NVENC: no NVIDIA GPU and driver it can use here)"
    out.append(Check("encoders", "fail" if missing else "ok", detail,
                     "reinstall PyAV from its wheel (pip install --force-reinstall av)" if missing else ""))
    return out


NVENC = ("h264_nvenc", "hevc_nvenc")


def _can_encode(name: str) -> bool:
    """The encoder is built in and, for NVENC, opens on this machine's GPU.

    PyAV's wheel always carries the NVENC encoders; they work only where an NVIDIA GPU and its
    driver are there, so listing them from the build alone would promise what this machine lacks.
    Opening a small encoder session is the test (it fails at once without the driver).
    """
    import av

    try:
        av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001 - any failure means the encoder is not usable
        return False
    if name not in NVENC:
        return True
    return _nvenc_opens(name)


def _nvenc_opens(name: str) -> bool:
    from fractions import Fraction

    import av

    try:
        ctx = av.CodecContext.create(name, "w")
        ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 256, 256, "yuv420p", Fraction(1, 24)
        ctx.open()
        return True
    except Exception:  # noqa: BLE001 - no GPU, no driver, no free session: not usable here
        return False


def _state_checks() -> list[Check]:
    from engine.errors import ArchivistError
    from engine.paths import archivist_home

    try:
        home = archivist_home()
    except ArchivistError as exc:
        return [Check("state", "fail", str(exc), "set ARCHIVIST_HOME to a writable folder")]
    mode = stat.S_IMODE(home.stat().st_mode)
    writable = os.access(home, os.W_OK)
    if not writable:
        return [Check("state", "fail", f"{home} is not writable", f"chown {os.getuid()} {home}")]
    if mode & 0o077:
        return [Check("state", "warn", f"{home} has mode {mode:o}: others can read your queue and models",
                      f"chmod 700 {home}")]
    free = _free_gib(home)
    return [Check("state", "ok", f"{home} (mode {mode:o}, {free:.0f} GiB free)")]


def _free_gib(path) -> float:
    import shutil

    return shutil.disk_usage(path).free / 2**30


def _library_checks() -> list[Check]:
    from engine.errors import ArchivistError
    from engine.models.library import Library

    try:
        entries = Library().list()
    except ArchivistError as exc:
        return [Check("models", "fail", str(exc), "remove or re-import the broken file")]
    if not entries:
        return [Check("models", "warn", "the library is empty",
                      "archivist models fetch --all, or archivist models import PATH")]
    names = ", ".join(e.name for e in entries)
    return [Check("models", "ok", f"{len(entries)} model(s): {names}")]
