"""The training config: a YAML document, validated into typed dataclasses with clear errors.

Every error names the key, the value and what is allowed. :func:`init_template` is the documented
starting config that ``archivist train --init`` prints (:data:`INIT_TEMPLATE` with the perceptual
loss switched off where no VGG19 weights are at hand).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import ArchivistError

INIT_TEMPLATE = """\
# Archivist training config (archivist train CONFIG.yaml). Keys not given take these defaults.
name: medium-v1          # run name: runs/<name>/ in ARCHIVIST_HOME
seed: 0                  # seeds everything: weights, patches, degradations, validation pairs
device: auto             # auto | cpu | cuda | cuda:N
precision: auto          # auto | fp32 | bf16 | fp16  (auto: bf16/fp16 on CUDA, fp32 on CPU;
                         #  bf16 on these CPUs is emulated and slow)
channels_last: false     # NHWC memory layout (faster on GPUs with tensor cores)
compile: false           # torch.compile the generator

network:
  arch: compact
  num_feat: 48           # 48nf16nc is the Archivist size (336,003 parameters)
  num_conv: 16
  scale: 1
  act: prelu             # prelu | relu | leakyrelu
  pretrained: null       # a library model name or a model file to fine-tune from

data:
  clean: [frames/]       # folders of clean frames (PNG/TIFF/JPEG) or videos, degraded on the fly
  video_every: 1         # from a video in clean: every N-th frame (extracted once into the run folder)
  video_limit: null      # at most this many frames per video
  paired: null           # or a pre-generated paired dataset (folder with gt/ and lq/, same names)
  val: null              # validation frames (clean folder or paired folder); null: hold out val_count frames
  val_count: 4           # frames held out for validation when val is null
  val_size: 256          # validation crops (centre) of this side
  patch_size: 128        # training patch side (GT)
  batch_size: 8
  workers: auto          # data-loading processes; auto: cores - 1 (0 loads in the training process)
  flip: true             # random horizontal/vertical flips
  rot90: true            # random 90° rotations
  mix: default           # degradation mix or single profile for on-the-fly pairs: a name, or a YAML
                         #  file (relative to this config's folder)
  damage_scale: frame    # frame: a patch is a window of its frame damaged whole (vignetting, stains,
                         #  creases laid out over the frame); patch: damaged as if it were the frame
  gray_film: true        # a clean frame with R = G = B is black-and-white film: its damaged input is gray too

losses:
  pixel: {type: l1, weight: 1.0, usm_gt: false}    # l1 | charbonnier; usm_gt sharpens the GT (can halo)
  perceptual:
    weight: 1.0          # 0 turns it off
    vgg19: null          # local VGG19 weights (.pth); null: ~/.cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth
    layers: {conv1_2: 0.1, conv2_2: 0.1, conv3_4: 1.0, conv4_4: 1.0, conv5_4: 1.0}
  gan:
    weight: 0.1          # 0 with perceptual 0: generator alone (Real-ESRNet stage), no discriminator
    type: vanilla        # vanilla (BCE on logits)
    real_label: 0.9      # one-sided label smoothing: the real label is capped here
    adaptive: false      # skip D updates while D is far ahead
    adaptive_threshold: 0.3   # skip when mean D(real) - D(fake) exceeds this
    d_num_feat: 64

optim:
  g: {type: adam, lr: 1.0e-4, betas: [0.9, 0.99], weight_decay: 0.0}
  d: {type: adam, lr: 1.0e-4, betas: [0.9, 0.99], weight_decay: 0.0}
  grad_clip: 0.0         # max gradient norm; 0 turns clipping off

schedule:
  type: multistep        # multistep | cosine
  milestones: [200000]   # multistep: iterations at which lr is multiplied by gamma
  gamma: 0.5
  warmup_iters: 0        # linear warm-up from 0
  min_lr: 1.0e-7         # cosine floor

ema: {decay: 0.999}      # the EMA generator is what gets saved as the model

train:
  total_iters: 400000
  log_every: 100
  val_every: 5000
  checkpoint_every: 5000
  keep_checkpoints: 5
  nan_tolerance: 5       # abort after this many non-finite steps in a row
"""

PERCEPTUAL_ON = """\
  perceptual:
    weight: 1.0          # 0 turns it off
    vgg19: null          # local VGG19 weights (.pth); null: ~/.cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth
"""
PERCEPTUAL_OFF = """\
  perceptual:
    weight: 0            # off: no VGG19 weights on this machine (never downloaded). To turn it on, put
                         #  vgg19-dcbb9e9d.pth in {folder}/ (or set vgg19: PATH)
                         #  and set weight: 1.0 (the default when this key is left out)
    vgg19: null          # local VGG19 weights (.pth); null: the file above
"""


def init_template(vgg_present: bool | None = None) -> str:
    """The starting config ``archivist train --init`` prints; it runs as written on this machine.

    The perceptual loss needs VGG19 weights that Archivist never downloads: where they are not at
    hand the template turns the loss off and says how to turn it on, so a first run does not stop
    on a missing file. ``vgg_present`` None looks for them (:data:`VGG_CACHE`).
    """
    if vgg_present is None:
        vgg_present = VGG_CACHE.expanduser().is_file()
    if vgg_present:
        return INIT_TEMPLATE
    return INIT_TEMPLATE.replace(PERCEPTUAL_ON, PERCEPTUAL_OFF.format(folder=VGG_CACHE.parent))


# Keys --resume accepts a change of: everything else must match the run's stored config. The
# device and the number of loader processes do not change what is computed (batches are a pure
# function of the seed and the iteration), so a run may move to another GPU or machine.
RESUMABLE_KEYS = {"train.total_iters", "train.log_every", "train.val_every", "train.checkpoint_every",
                  "train.keep_checkpoints", "device", "data.workers"}
VGG_CACHE = Path("~/.cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth")
VGG_LAYERS = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4",
              "conv4_1", "conv4_2", "conv4_3", "conv4_4", "conv5_1", "conv5_2", "conv5_3", "conv5_4")


@dataclass
class NetworkConfig:
    arch: str = "compact"
    num_feat: int = 48
    num_conv: int = 16
    scale: int = 1
    act: str = "prelu"
    pretrained: str | None = None


@dataclass
class DataConfig:
    clean: list[str] = field(default_factory=lambda: ["frames/"])
    video_every: int = 1
    video_limit: int | None = None
    paired: str | None = None
    val: str | None = None
    val_count: int = 4
    val_size: int = 256
    patch_size: int = 128
    batch_size: int = 8
    workers: int | str = "auto"
    flip: bool = True
    rot90: bool = True
    mix: str | None = "default"
    damage_scale: str = "frame"
    gray_film: bool = True


@dataclass
class PixelLoss:
    type: str = "l1"
    weight: float = 1.0
    usm_gt: bool = False


@dataclass
class PerceptualLoss:
    weight: float = 1.0
    vgg19: str | None = None
    layers: dict[str, float] = field(default_factory=lambda: {
        "conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0})


@dataclass
class GanLoss:
    weight: float = 0.1
    type: str = "vanilla"
    real_label: float = 0.9
    adaptive: bool = False
    adaptive_threshold: float = 0.3
    d_num_feat: int = 64


@dataclass
class LossesConfig:
    pixel: PixelLoss = field(default_factory=PixelLoss)
    perceptual: PerceptualLoss = field(default_factory=PerceptualLoss)
    gan: GanLoss = field(default_factory=GanLoss)


@dataclass
class OptimizerConfig:
    type: str = "adam"
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.0


@dataclass
class OptimConfig:
    g: OptimizerConfig = field(default_factory=OptimizerConfig)
    d: OptimizerConfig = field(default_factory=OptimizerConfig)
    grad_clip: float = 0.0


@dataclass
class ScheduleConfig:
    type: str = "multistep"
    milestones: list[int] = field(default_factory=lambda: [200000])
    gamma: float = 0.5
    warmup_iters: int = 0
    min_lr: float = 1e-7


@dataclass
class EmaConfig:
    decay: float = 0.999


@dataclass
class TrainLoopConfig:
    total_iters: int = 400000
    log_every: int = 100
    val_every: int = 5000
    checkpoint_every: int = 5000
    keep_checkpoints: int = 5
    nan_tolerance: int = 5


@dataclass
class TrainConfig:
    """A whole training config; build it with :func:`load_config` or :func:`config_from_dict`."""

    name: str = "medium-v1"
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = False
    compile: bool = False
    network: NetworkConfig = field(default_factory=NetworkConfig)
    data: DataConfig = field(default_factory=DataConfig)
    losses: LossesConfig = field(default_factory=LossesConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    ema: EmaConfig = field(default_factory=EmaConfig)
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    base_dir: str = field(default=".", repr=False)  # relative data paths are read from here

    def to_dict(self) -> dict[str, Any]:
        """The document (without ``base_dir``), as stored in the run directory."""
        d = asdict(self)
        d.pop("base_dir")
        return d

    @property
    def uses_gan(self) -> bool:
        return self.losses.gan.weight > 0

    @property
    def uses_perceptual(self) -> bool:
        return self.losses.perceptual.weight > 0

    def resolve_path(self, p: str) -> Path:
        """A data path from the config: ``~`` expanded, relative to the config file's folder."""
        path = Path(os.path.expanduser(p))
        return path if path.is_absolute() else Path(self.base_dir) / path


class ConfigError(ArchivistError):
    """A config key with a bad value."""


def _fail(source: str, key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{source}: {key} = {value!r} is invalid: allowed {allowed}")


def _merge(cls, doc: Any, source: str, prefix: str):
    """Build dataclass ``cls`` from a mapping, refusing unknown keys and wrong types."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise _fail(source, prefix or "(document)", doc, "a mapping")
    obj = cls()
    fields = {f for f in obj.__dataclass_fields__ if f != "base_dir"}
    for key, value in doc.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            raise ConfigError(f"{source}: unknown key {full!r}: allowed keys are {', '.join(sorted(fields))}")
        current = getattr(obj, key)
        if hasattr(current, "__dataclass_fields__"):
            setattr(obj, key, _merge(type(current), value, source, full))
        else:
            setattr(obj, key, value)
    return obj


def _num(source: str, key: str, value: Any, lo: float, hi: float, integer: bool = False,
         lo_open: bool = False) -> None:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    kind = "an integer" if integer else "a number"
    lo_s = f"> {lo}" if lo_open else f">= {lo}"
    if ok_type and not isinstance(value, bool) and not math.isfinite(value):  # NaN passes every comparison
        raise _fail(source, key, value, f"a finite number {lo_s} and <= {hi} (not NaN or infinity)")
    if isinstance(value, bool) or not ok_type or not (lo < value if lo_open else lo <= value) or value > hi:
        raise _fail(source, key, value, f"{kind} {lo_s} and <= {hi}")


def _choice(source: str, key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise _fail(source, key, value, "one of " + ", ".join(map(str, choices)))


def _bool(source: str, key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise _fail(source, key, value, "true or false")


def validate(cfg: TrainConfig, source: str = "config") -> TrainConfig:
    """Check every value's type and range; raises :class:`ConfigError` naming key, value and range."""
    from engine.devices import PRECISIONS, check_device_name

    S = source
    if not isinstance(cfg.name, str) or not cfg.name:
        raise _fail(S, "name", cfg.name, "a run name")
    from engine.train.runs import check_run_name

    try:
        check_run_name(cfg.name)
    except ArchivistError:
        raise _fail(S, "name", cfg.name, "1-64 letters, digits, '.', '_' or '-'") from None
    _num(S, "seed", cfg.seed, 0, 2**31 - 1, integer=True)
    try:
        check_device_name(str(cfg.device))
    except ArchivistError:
        raise _fail(S, "device", cfg.device, "auto, cpu, cuda or cuda:N") from None
    _choice(S, "precision", cfg.precision, PRECISIONS)
    _bool(S, "channels_last", cfg.channels_last)
    _bool(S, "compile", cfg.compile)

    n = cfg.network
    _choice(S, "network.arch", n.arch, ("compact",))
    _num(S, "network.num_feat", n.num_feat, 1, 1024, integer=True)
    _num(S, "network.num_conv", n.num_conv, 1, 128, integer=True)
    _choice(S, "network.scale", n.scale, (1, 2, 3, 4))
    _choice(S, "network.act", n.act, ("prelu", "relu", "leakyrelu"))
    if n.pretrained is not None and not isinstance(n.pretrained, str):
        raise _fail(S, "network.pretrained", n.pretrained, "null, a library model name or a model file")

    d = cfg.data
    if d.paired is None:
        if isinstance(d.clean, str):
            d.clean = [d.clean]
        if not isinstance(d.clean, list) or not d.clean or not all(isinstance(c, str) for c in d.clean):
            raise _fail(S, "data.clean", d.clean, "a list of folders of clean frames (or set data.paired)")
        if not isinstance(d.mix, str) or not d.mix:
            raise _fail(S, "data.mix", d.mix, "a degradation mix or profile name or YAML path")
    elif not isinstance(d.paired, str):
        raise _fail(S, "data.paired", d.paired, "null or a folder with gt/ and lq/")
    _num(S, "data.video_every", d.video_every, 1, 10**6, integer=True)
    if d.video_limit is not None:
        _num(S, "data.video_limit", d.video_limit, 1, 10**7, integer=True)
    if d.val is not None and not isinstance(d.val, str):
        raise _fail(S, "data.val", d.val, "null or a folder")
    _num(S, "data.val_count", d.val_count, 1, 1000, integer=True)
    _num(S, "data.val_size", d.val_size, 16, 4096, integer=True)
    _num(S, "data.patch_size", d.patch_size, 16, 2048, integer=True)
    if d.patch_size % n.scale:
        raise _fail(S, "data.patch_size", d.patch_size, f"a multiple of network.scale ({n.scale})")
    _num(S, "data.batch_size", d.batch_size, 1, 1024, integer=True)
    if d.workers != "auto":
        _num(S, "data.workers", d.workers, 0, 64, integer=True)
    _bool(S, "data.flip", d.flip)
    _choice(S, "data.damage_scale", d.damage_scale, ("frame", "patch"))
    _bool(S, "data.gray_film", d.gray_film)
    _bool(S, "data.rot90", d.rot90)

    lo = cfg.losses
    _choice(S, "losses.pixel.type", lo.pixel.type, ("l1", "charbonnier"))
    _num(S, "losses.pixel.weight", lo.pixel.weight, 0, 1e4)
    _bool(S, "losses.pixel.usm_gt", lo.pixel.usm_gt)
    _num(S, "losses.perceptual.weight", lo.perceptual.weight, 0, 1e4)
    if lo.perceptual.vgg19 is not None and not isinstance(lo.perceptual.vgg19, str):
        raise _fail(S, "losses.perceptual.vgg19", lo.perceptual.vgg19, "null or a local weights file")
    if not isinstance(lo.perceptual.layers, dict) or not lo.perceptual.layers:
        raise _fail(S, "losses.perceptual.layers", lo.perceptual.layers, "a mapping of VGG19 layer names to weights")
    for layer, w in lo.perceptual.layers.items():
        _choice(S, "losses.perceptual.layers", layer, VGG_LAYERS)
        _num(S, f"losses.perceptual.layers.{layer}", w, 0, 1e4)
    _num(S, "losses.gan.weight", lo.gan.weight, 0, 1e4)
    _choice(S, "losses.gan.type", lo.gan.type, ("vanilla",))
    _num(S, "losses.gan.real_label", lo.gan.real_label, 0.5, 1.0)
    _bool(S, "losses.gan.adaptive", lo.gan.adaptive)
    _num(S, "losses.gan.adaptive_threshold", lo.gan.adaptive_threshold, 0, 1)
    _num(S, "losses.gan.d_num_feat", lo.gan.d_num_feat, 1, 512, integer=True)
    if lo.pixel.weight == 0 and lo.perceptual.weight == 0 and lo.gan.weight == 0:
        raise _fail(S, "losses.pixel.weight", 0, "> 0 when the perceptual and GAN weights are 0 (nothing to learn)")

    for which in ("g", "d"):
        o = getattr(cfg.optim, which)
        _choice(S, f"optim.{which}.type", o.type, ("adam", "adamw"))
        _num(S, f"optim.{which}.lr", o.lr, 0, 1.0, lo_open=True)
        if (not isinstance(o.betas, list) or len(o.betas) != 2
                or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in o.betas)):
            raise _fail(S, f"optim.{which}.betas", o.betas, "two numbers in [0, 1)")
        _num(S, f"optim.{which}.weight_decay", o.weight_decay, 0, 1)
    _num(S, "optim.grad_clip", cfg.optim.grad_clip, 0, 1e6)

    sc = cfg.schedule
    _choice(S, "schedule.type", sc.type, ("multistep", "cosine"))
    if not isinstance(sc.milestones, list) or not all(isinstance(m, int) and m > 0 for m in sc.milestones):
        raise _fail(S, "schedule.milestones", sc.milestones, "a list of positive iteration numbers")
    _num(S, "schedule.gamma", sc.gamma, 0, 1, lo_open=True)
    _num(S, "schedule.warmup_iters", sc.warmup_iters, 0, 10**9, integer=True)
    _num(S, "schedule.min_lr", sc.min_lr, 0, 1)

    _num(S, "ema.decay", cfg.ema.decay, 0, 1)
    if cfg.ema.decay >= 1:
        raise _fail(S, "ema.decay", cfg.ema.decay, "a number >= 0 and < 1")

    t = cfg.train
    _num(S, "train.total_iters", t.total_iters, 1, 10**9, integer=True)
    for key in ("log_every", "val_every", "checkpoint_every"):
        _num(S, f"train.{key}", getattr(t, key), 1, 10**9, integer=True)
    _num(S, "train.keep_checkpoints", t.keep_checkpoints, 1, 10**6, integer=True)
    _num(S, "train.nan_tolerance", t.nan_tolerance, 1, 10**6, integer=True)
    return cfg


def config_from_dict(doc: dict[str, Any], source: str = "config", base_dir: str | Path = ".") -> TrainConfig:
    """Validate a config document (a mapping) into a :class:`TrainConfig`."""
    cfg = _merge(TrainConfig, doc, source, "")
    cfg.base_dir = str(base_dir)
    return validate(cfg, source)


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read and validate a YAML config; relative data paths are relative to the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise ArchivistError(f"{path}: no such config file")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ArchivistError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return config_from_dict(doc if doc is not None else {}, str(path), path.resolve().parent)


# Keys added after runs were already stored: a stored config without one was trained the way the
# code of its day did, which is this value (not today's default).
LEGACY_VALUES = {("data", "damage_scale"): "patch", ("data", "gray_film"): False}


def with_legacy_values(stored: dict[str, Any]) -> dict[str, Any]:
    """A run's stored config document with the keys it predates filled in as its code behaved.

    The keys of on-the-fly damage mean nothing to a run on a paired dataset: there they take
    today's defaults, so such a run resumes under either code.
    """
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in stored.items()}
    data = out.get("data")
    paired = isinstance(data, dict) and data.get("paired") is not None
    for (section, key), value in LEGACY_VALUES.items():
        part = out.setdefault(section, {})
        if isinstance(part, dict):
            part.setdefault(key, getattr(DataConfig(), key) if paired else value)
    return out


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and k != "layers":
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def resume_differences(stored: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Keys whose values differ between a run's stored config and a new one, except resumable ones."""
    a, b = _flatten(stored), _flatten(new)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_KEYS)
