"""The training config: a YAML document, validated into typed dataclasses with clear errors.

Every error names the key, the value and what is allowed. :func:`init_template` is the documented
starting config that ``archivist train --init`` prints (:data:`INIT_TEMPLATE` with the perceptual
loss switched off where no VGG19 weights are at hand).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import document
from engine.devices import DEVICE_CHOICES, PRECISIONS, check_device_name
from engine.document import InvalidValue, boolean, choice, integer, number, section, text, value
from engine.errors import ArchivistError, not_a_file
from engine.train.runs import check_run_name

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
WEIGHT_MAX = 1e4  # a loss weight; far above any useful one, low enough to catch a typo's exponent
ITERS_MAX = 10**9


# --------------------------------------------------------------------------------------------
# Values that are more than a number or a word: each converter checks and normalises one value,
# or raises ValueError with what is allowed (engine.document turns it into the key's refusal).


RUN_NAME_WORDS = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
_WORKERS = document.Key("integer", "", 0, 64)
_LAYER_WEIGHT = document.Key("number", "", 0, WEIGHT_MAX)
_BETA = document.Key("number", "", 0, 1, hi_open=True)
_MILESTONE = document.Key("integer", "", 1, None)


def _run_name(value: str) -> str:
    try:
        return check_run_name(value)
    except ArchivistError:
        raise ValueError from None


def _device_name(value: str) -> str:
    try:
        check_device_name(value)
    except ArchivistError:
        raise ValueError from None
    return value  # kept as written: the trainer resolves it, and it may change on resume


def _folders(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise ValueError
    return list(value)


def _workers(value: Any) -> int | str:
    if value == "auto":
        return value
    try:
        return _WORKERS.check("data.workers", value)
    except InvalidValue:
        raise ValueError from None


def _layer_weights(value: Any) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise ValueError
    out = {}
    for layer, w in value.items():
        if layer not in VGG_LAYERS:
            raise ValueError(f"VGG19 layer names ({', '.join(VGG_LAYERS)}); {layer!r} is not one")
        try:
            out[layer] = _LAYER_WEIGHT.check(layer, w)
        except InvalidValue:
            raise ValueError(f"layer weights that are each {_LAYER_WEIGHT.allowed()}; {layer}: {w!r} is not") from None
    return out


# --------------------------------------------------------------------------------------------
# The document


@dataclass
class NetworkConfig:
    arch: str = choice("compact", ("compact",), "the generator: Real-ESRGAN's Compact (SRVGGNetCompact)")
    num_feat: int = integer(48, 1, 1024, "Compact width (48nf16nc is the Archivist size: 336,003 parameters)")
    num_conv: int = integer(16, 1, 128, "Compact depth (convolutions)")
    scale: int = choice(1, (1, 2, 3, 4), "upscaling factor: the LQ side is downscaled (area) by this")
    act: str = choice("prelu", ("prelu", "relu", "leakyrelu"), "activation")
    pretrained: str | None = text(None, "a library model name or a model file to fine-tune from; it must "
                                  "match the network keys", allowed="a library model name or a model file",
                                  optional=True)


@dataclass
class DataConfig:
    clean: list[str] | None = value(["frames/"], "folders of clean frames (PNG/TIFF/JPEG, 8/16-bit) or videos, "
                                    "degraded on the fly", allowed="a folder or a list of folders or videos",
                                    convert=_folders, optional=True)
    video_every: int = integer(1, 1, 10**6, "from a video in `clean`: every N-th frame (extracted once, "
                               "lossless PNG, into `runs/<run>/frames/<video>/`)")
    video_limit: int | None = integer(None, 1, 10**7, "at most this many frames per video", optional=True)
    paired: str | None = text(None, "a pre-generated paired dataset (e.g. from `archivist degrade`, clip "
                              "datasets' sub-folders included); replaces `clean` and `mix`",
                              allowed="a folder with gt/ and lq/ (same names)", optional=True)
    val: str | None = text(None, "validation frames (a clean or a paired folder); null: the last `val_count` "
                           "frames or pairs are held out", allowed="a folder", optional=True)
    val_count: int = integer(4, 1, 1000, "frames held out for validation when `val` is null")
    val_size: int = integer(256, 16, 4096, "validation pairs are centre crops of this side", unit="pixels")
    patch_size: int = integer(128, 16, 2048, "training patch side (GT); a multiple of `network.scale`",
                              unit="pixels")
    batch_size: int = integer(8, 1, 1024, "patches per step, per process (per GPU under DDP)")
    workers: int | str = value("auto", "data-loading processes; auto: cores - 1 (0 loads in the training "
                               "process)", allowed=f"auto or {_WORKERS.allowed()}", convert=_workers)
    flip: bool = boolean(True, "random horizontal/vertical flips, identical on GT and LQ")
    rot90: bool = boolean(True, "random 90° rotations, identical on GT and LQ")
    mix: str | None = text("default", "the degradation mix or single profile for on-the-fly pairs: a name, or "
                           "a YAML file (relative to the config's folder)",
                           allowed="a mix or profile name or a YAML path", optional=True)
    damage_scale: str = choice("frame", ("frame", "patch"), "frame: a patch is a window of its frame damaged "
                               "whole (vignetting, flicker's gradient, large stains, creases and long scratches "
                               "laid out over the frame; only the window and a margin are computed); patch: "
                               "damaged as if it were the frame (how archivist-starter v1 was trained). A run "
                               "stored before this key resumes as `patch`")
    gray_film: bool = boolean(True, "a clean frame with R = G = B is black-and-white film: its damaged input "
                              "is made gray too (Rec.601 luma), so the network learns gray in, gray out. A run "
                              "stored before this key resumes with `false`")


@dataclass
class PixelLoss:
    type: str = choice("l1", ("l1", "charbonnier"), "the pixel loss")
    weight: float = number(1.0, 0, WEIGHT_MAX, "0 turns it off")
    usm_gt: bool = boolean(False, "unsharp-masked GT for the pixel loss (caused halos in the original work)")


@dataclass
class PerceptualLoss:
    weight: float = number(1.0, 0, WEIGHT_MAX, "0 turns it off (and needs no VGG19 weights)")
    vgg19: str | None = text(None, "torchvision-layout VGG19 weights; null: "
                             "`~/.cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth`. Never downloaded: without "
                             "them the run refuses to start", allowed="a local weights file (.pth)", optional=True)
    layers: dict[str, float] = value(
        {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0},
        "pre-activation features, ImageNet-normalised input (Real-ESRGAN's)",
        allowed=f"a mapping of VGG19 layer names (conv1_1 to conv5_4) to weights, each "
                f"{document.describe_range(0, WEIGHT_MAX)}", convert=_layer_weights)


@dataclass
class GanLoss:
    weight: float = number(0.1, 0, WEIGHT_MAX, "0 (with perceptual 0): the generator alone, no "
                           "discriminator is built (the Real-ESRNet stage)")
    type: str = choice("vanilla", ("vanilla",), "BCE on the logits of `UNetDiscriminatorSN`")
    real_label: float = number(0.9, 0.5, 1.0, "one-sided label smoothing: the real label is capped here, "
                               "which keeps D from bullying G")
    adaptive: bool = boolean(False, "skip D updates while D is far ahead (see `adaptive_threshold`)")
    adaptive_threshold: float = number(0.3, 0, 1, "skip D updates when mean D(real) - D(fake) exceeds this")
    d_num_feat: int = integer(64, 1, 512, "discriminator width")


@dataclass
class LossesConfig:
    pixel: PixelLoss = section(PixelLoss)
    perceptual: PerceptualLoss = section(PerceptualLoss)
    gan: GanLoss = section(GanLoss)


@dataclass
class OptimizerConfig:
    type: str = choice("adam", ("adam", "adamw"), "the optimizer")
    lr: float = number(1e-4, 0, 1.0, "learning rate", lo_open=True)
    betas: list[float] = value([0.9, 0.99], "Adam's betas", allowed=document.list_words(_BETA, "numbers", count=2),
                               convert=document.list_of(_BETA, count=2))
    weight_decay: float = number(0.0, 0, 1, "weight decay")


@dataclass
class OptimConfig:
    g: OptimizerConfig = section(OptimizerConfig, "the generator's optimizer")
    d: OptimizerConfig = section(OptimizerConfig, "the discriminator's optimizer")
    grad_clip: float = number(0.0, 0, 1e6, "max gradient norm (G and D); 0 turns clipping off")


@dataclass
class ScheduleConfig:
    type: str = choice("multistep", ("multistep", "cosine"), "the learning-rate schedule")
    milestones: list[int] = value([200000], "multistep: iterations at which lr is multiplied by `gamma`",
                                  allowed=document.list_words(_MILESTONE, "iterations"), convert=document.list_of(_MILESTONE))
    gamma: float = number(0.5, 0, 1, "multistep: the lr factor at each milestone", lo_open=True)
    warmup_iters: int = integer(0, 0, ITERS_MAX, "linear warm-up from 0 over this many iterations")
    min_lr: float = number(1e-7, 0, 1, "cosine floor (cosine spans `train.total_iters`)")


@dataclass
class EmaConfig:
    decay: float = number(0.999, 0, 1, "the EMA generator is what is validated, promoted and saved as the "
                          "model", hi_open=True)


@dataclass
class TrainLoopConfig:
    total_iters: int = integer(400000, 1, ITERS_MAX, "iterations of the whole run")
    log_every: int = integer(100, 1, ITERS_MAX, "iterations between log lines")
    val_every: int = integer(5000, 1, ITERS_MAX, "iterations between validations")
    checkpoint_every: int = integer(5000, 1, ITERS_MAX, "iterations between checkpoints")
    keep_checkpoints: int = integer(5, 1, 10**6, "checkpoints kept; older ones are deleted")
    nan_tolerance: int = integer(5, 1, 10**6, "non-finite steps in a row before the run aborts")


@dataclass
class TrainConfig:
    """A whole training config; build it with :func:`load_config` or :func:`config_from_dict`."""

    name: str = text("medium-v1", "the run: `runs/<name>/` in ARCHIVIST_HOME (`--name` overrides)",
                     allowed=RUN_NAME_WORDS, convert=_run_name)
    seed: int = integer(0, 0, 2**31 - 1, "seeds everything: weights, patches, augmentations, degradations, "
                        "validation pairs")
    device: str = text("auto", "auto: the first CUDA GPU, else the CPU (`--device` overrides)",
                       allowed=DEVICE_CHOICES, convert=_device_name)
    precision: str = choice("auto", PRECISIONS, "auto: bf16/fp16 on CUDA, fp32 on CPU (bf16 on these CPUs is "
                            "emulated and slow); fp16 uses a GradScaler (`--precision` overrides)")
    channels_last: bool = boolean(False, "NHWC memory layout for networks and batches (faster on GPUs with "
                                  "tensor cores)")
    compile: bool = boolean(False, "`torch.compile` the generator")
    network: NetworkConfig = section(NetworkConfig)
    data: DataConfig = section(DataConfig)
    losses: LossesConfig = section(LossesConfig)
    optim: OptimConfig = section(OptimConfig)
    schedule: ScheduleConfig = section(ScheduleConfig)
    ema: EmaConfig = section(EmaConfig)
    train: TrainLoopConfig = section(TrainLoopConfig)
    base_dir: str = field(default=".", repr=False)  # relative data paths are read from here; not a key

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


def validate(cfg: TrainConfig, source: str = "config") -> TrainConfig:
    """Check every key of a config made in code, then the rules between keys; raises
    :class:`~engine.document.InvalidValue` naming the file, the key, the value and what is allowed."""
    return check_rules(document.check(cfg, source=source), source)


def check_rules(cfg: TrainConfig, source: str = "config") -> TrainConfig:
    """The rules between keys (each key alone is checked by its declaration)."""
    d, n, lo = cfg.data, cfg.network, cfg.losses
    if d.paired is None:  # clean frames damaged on the fly: they and the damage must be named
        if not d.clean:
            raise InvalidValue("data.clean", d.clean, "a folder or a list of folders or videos (or set data.paired)",
                               source)
        if not d.mix:
            raise InvalidValue("data.mix", d.mix, "a mix or profile name or a YAML path (or set data.paired)", source)
    if d.patch_size % n.scale:
        raise InvalidValue("data.patch_size", d.patch_size, f"a multiple of network.scale ({n.scale})", source)
    if lo.pixel.weight == 0 and lo.perceptual.weight == 0 and lo.gan.weight == 0:
        raise InvalidValue("losses.pixel.weight", 0, f"{document.describe_range(0, WEIGHT_MAX, lo_open=True)} "
                           "when the perceptual and GAN weights are 0 (nothing to learn)", source)
    return cfg


def config_from_dict(doc: dict[str, Any], source: str = "config", base_dir: str | Path = ".") -> TrainConfig:
    """Validate a config document (a mapping) into a :class:`TrainConfig`."""
    cfg = document.build(TrainConfig, doc, source=source, base_dir=str(base_dir))
    return check_rules(cfg, source)


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read and validate a YAML config; relative data paths are relative to the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise ArchivistError(not_a_file(path, "config file"))
    from engine.yamlfile import read_yaml

    doc = read_yaml(path, "config")
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
    for (part_name, key), legacy in LEGACY_VALUES.items():
        part = out.setdefault(part_name, {})
        if isinstance(part, dict):
            part.setdefault(key, getattr(DataConfig(), key) if paired else legacy)
    return out


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A config document as dotted keys (``train.total_iters``); the perceptual layer weights stay one value."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and k != "layers":
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def resume_differences(stored: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Keys whose values differ between a run's stored config and a new one, except resumable ones."""
    a, b = flatten(stored), flatten(new)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_KEYS)
