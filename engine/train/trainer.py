"""The training loop: a plain loop over typed config objects, readable top to bottom.

One iteration: generator step (pixel + perceptual + GAN losses), discriminator step (real label
capped, optionally skipped while D is far ahead), schedulers, EMA. Around it: atomic checkpoints
with every state needed for a bit-exact resume, signal and control-file handling, a NaN/Inf guard,
metrics, validation with previews, and DDP under ``torchrun``.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from engine.document import Conflict
from engine.errors import ArchivistError
from engine.quality import psnr
from engine.train import checkpoint, runs
from engine.train import data as tdata
from engine.train.config import (
    LEGACY_VALUES,
    TrainConfig,
    config_from_dict,
    load_config,
    resume_differences,
    with_legacy_values,
)
from engine.train.losses import PerceptualLoss, find_vgg_weights, gan_loss, pixel_loss, usm_sharpen
from engine.train.metrics import MetricsLog, ssim

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """How a call to :func:`run_training` ended."""

    run: str
    run_dir: Path
    iteration: int
    status: str  # done | stop_at | paused | stopped | interrupted
    checkpoint: Path | None


class Diverged(ArchivistError):
    """Too many non-finite steps in a row; the trainer adds what to do about it."""


class NanGuard:
    """Counts non-finite steps in a row; raises after ``tolerance`` of them."""

    def __init__(self, tolerance: int):
        self.tolerance = tolerance
        self.in_a_row = 0
        self.total = 0

    def check(self, iteration: int, values: dict[str, float]) -> bool:
        """True when every value is finite; else logs, counts and (past the tolerance) aborts."""
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if not bad:
            self.in_a_row = 0
            return True
        self.in_a_row += 1
        self.total += 1
        log.warning("iteration %d: non-finite %s, step skipped (%d in a row)", iteration, ", ".join(bad), self.in_a_row)
        if self.in_a_row >= self.tolerance:
            raise Diverged(
                f"training diverged: {self.in_a_row} non-finite steps in a row (last at iteration {iteration}: "
                f"{', '.join(bad)})")
        return False


# -- set-up helpers --------------------------------------------------------------------------

def _dist_env() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """Factor on the base lr at a step: linear warm-up, then multistep decay or cosine to min_lr."""
    sc, total = cfg.schedule, cfg.train.total_iters

    def factor(step: int, base_lr: float) -> float:
        if sc.warmup_iters and step < sc.warmup_iters:
            return (step + 1) / sc.warmup_iters
        if sc.type == "cosine":
            span = max(total - sc.warmup_iters, 1)
            t = min(max(step - sc.warmup_iters, 0) / span, 1.0)
            floor = min(sc.min_lr / base_lr, 1.0)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
        return sc.gamma ** sum(1 for m in sc.milestones if step >= m)

    return factor


def _optimizer(params, o) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if o.type == "adamw" else torch.optim.Adam
    return cls(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)


def _as_config(config: str | os.PathLike | TrainConfig | dict | None, name: str | None) -> TrainConfig:
    if config is None:  # resume a run with the config it was started with
        if name is None:
            raise ArchivistError("a config (or, to resume, the run's name) is needed")
        rdir = runs.run_dir(name)
        stored = config_from_dict(with_legacy_values(yaml.safe_load((rdir / "config.yaml").read_text()) or {}),
                                  str(rdir / "config.yaml"), runs.read_state(rdir).get("base_dir", "."))
        return stored
    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    return load_config(config)


def _mix_reference(cfg: TrainConfig) -> str:
    """``data.mix`` as the degrader loads it: a name as given; a YAML file, like every data path,
    relative to the config's folder."""
    mix = cfg.data.mix
    if mix.endswith((".yaml", ".yml")) or "/" in mix:
        return str(cfg.resolve_path(mix))
    return mix


def _unwrap(m: torch.nn.Module) -> torch.nn.Module:
    m = getattr(m, "module", m)  # DDP
    return getattr(m, "_orig_mod", m)  # torch.compile


# -- the entry point -------------------------------------------------------------------------

def run_training(config: str | os.PathLike | TrainConfig | dict | None, name: str | None = None, resume: bool = False,
                 stop_at: int | None = None, progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], str | bool | None] | None = None, device: str | None = None,
                 precision: str | None = None) -> TrainResult:
    """Train (or resume) a run and return how it ended.

    Args:
        config: a YAML path, a :class:`TrainConfig` or a config mapping; None with ``resume`` and
            ``name`` continues the run with the config it was started with.
        name: the run name (default the config's ``name``).
        resume: continue the run from its latest checkpoint; the config may differ only in
            ``train.total_iters``, the intervals and ``train.keep_checkpoints``.
        stop_at: checkpoint and stop at this iteration without changing the schedule.
        progress: ``progress(iteration, total_iters)`` called every iteration (rank 0).
        should_stop: polled every iteration; a truthy value (``"pause"``/``"stop"``) checkpoints and
            returns with that status (the job queue's hook).
        device, precision: override the config's ``device``/``precision``.
    """
    if stop_at is not None:  # before anything is made: a refused run leaves no folder behind
        runs.STOP_AT.check("stop_at", stop_at)
    cfg = _as_config(config, name)
    if name is not None:
        cfg.name = runs.check_run_name(name)
    if device is not None:
        cfg.device = device
    if precision is not None:
        cfg.precision = precision
    trainer = Trainer(cfg, resume=resume, stop_at=stop_at, progress=progress, should_stop=should_stop)
    try:
        return trainer.run()
    finally:
        trainer.close()


class Trainer:
    """Holds the networks, optimisers and data of one run; :meth:`run` is the loop."""

    def __init__(self, cfg: TrainConfig, resume: bool, stop_at: int | None, progress, should_stop):
        from engine.devices import resolve_device, resolve_precision

        self.cfg, self.resume, self.progress, self.should_stop = cfg, resume, progress, should_stop
        self.rank, self.world, self.local_rank = _dist_env()
        self.main = self.rank == 0
        self.stop_at = stop_at
        self._signal: str | None = None
        self._old_handlers: dict[int, Any] = {}
        self.metrics: MetricsLog | None = None

        # Everything that can refuse to start is checked before the run directory is touched.
        self.device = resolve_device(cfg.device)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device(f"cuda:{self.local_rank}")
        self.dtype = resolve_precision(cfg.precision, self.device)
        self.rdir = runs.runs_dir() / cfg.name
        stored_doc = self._check_run_dir()
        self.perceptual = None
        if cfg.uses_perceptual:
            weights = find_vgg_weights(cfg.losses.perceptual.vgg19 and str(cfg.resolve_path(cfg.losses.perceptual.vgg19)))
            self.perceptual = PerceptualLoss(cfg.losses.perceptual.layers, weights).to(self.device)
        self._build_data()
        self._build_networks()
        if stored_doc is None and self.main:
            self._create_run_dir()
        self._init_dist()

    # -- run directory ----------------------------------------------------------------------
    def _check_run_dir(self) -> dict | None:
        import yaml

        cfg, rdir = self.cfg, self.rdir
        has_ckpt = bool(runs.list_checkpoints(rdir))
        if not self.resume:
            runs.check_new_run(cfg.name)
            return None
        if not has_ckpt:
            raise ArchivistError(f"run {cfg.name!r} has no checkpoint to resume from ({rdir}): it stopped before "
                                 f"its first checkpoint; archivist runs remove {cfg.name} and start it again")
        raw = yaml.safe_load((rdir / "config.yaml").read_text()) or {}
        stored = with_legacy_values(raw)
        new = cfg.to_dict()
        stored_base = runs.read_state(rdir).get("base_dir")
        diff = resume_differences(stored, new)
        if stored_base and stored_base != cfg.base_dir:
            diff.append("(config folder: relative data paths now point elsewhere)")
        if diff:
            legacy = [yaml.safe_dump({key: stored[section][key]}).strip() for section, key in LEGACY_VALUES
                      if f"{section}.{key}" in diff and key not in (raw.get(section) or {})]
            hint = (f" (the run predates {', '.join(k.split(':')[0] for k in legacy)}: add "
                    f"{', '.join(legacy)} to its data section, or resume it by name without a config)"
                    if legacy else "")
            raise Conflict(("resume",), f"{{0}} refused: the config differs from run {cfg.name!r} in "
                                        f"{', '.join(diff)}; only train.total_iters, train.log_every, train.val_every, "
                                        "train.checkpoint_every, train.keep_checkpoints, device and data.workers may "
                                        "change" + hint)
        return stored

    def _create_run_dir(self) -> None:
        import yaml

        from engine.atomic import atomic_write

        (self.rdir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (self.rdir / "previews").mkdir(exist_ok=True)
        doc = self.cfg.to_dict()
        atomic_write(self.rdir / "config.yaml",
                     lambda tmp: tmp.write_text(yaml.safe_dump(doc, sort_keys=False)))

    def _update_state(self, status: str, iteration: int) -> None:
        if not self.main:
            return
        state = runs.read_state(self.rdir)
        state.update(status=status, iteration=iteration, **runs.process_identity(), updated=time.time(),
                     base_dir=self.cfg.base_dir, degradation=self.degradation_identity, data=self.data_identity,
                     device=str(self.device), precision=str(self.dtype).replace("torch.", ""), world_size=self.world)
        if getattr(self, "pretrained_sha256", None):  # kept from the first start on every resume
            state["pretrained"] = {"model": self.cfg.network.pretrained, "sha256": self.pretrained_sha256}
        runs.write_state(self.rdir, state)

    # -- data ------------------------------------------------------------------------------
    def _build_data(self) -> None:
        cfg, d = self.cfg, self.cfg.data
        s = cfg.network.scale
        self.degrader = None
        clean = pairs = None
        if d.paired is not None:
            pairs = tdata.paired_files(cfg.resolve_path(d.paired))
            self.data_identity = {"paired": str(cfg.resolve_path(d.paired)), "pairs": len(pairs)}
        else:
            cache = runs.runs_dir() / cfg.name / "frames"
            clean = [f for entry in d.clean
                     for f in tdata.clean_frames(cfg.resolve_path(entry), cache, d.video_every, d.video_limit)]
            self.degrader = tdata.Degrader.load(_mix_reference(cfg))
            self.data_identity = {"clean": [str(cfg.resolve_path(c)) for c in d.clean], "frames": len(clean),
                                  "damage_scale": d.damage_scale, "gray_film": d.gray_film}
        self.degradation_identity = self.degrader.identity() if self.degrader else None

        val_clean = val_pairs = None
        if d.val is not None:
            vpath = cfg.resolve_path(d.val)
            if tdata.is_paired_folder(vpath):
                val_pairs = tdata.paired_files(vpath)
            elif self.degrader is not None:
                val_clean = tdata.list_images(vpath, "data.val")
            else:
                raise ArchivistError(f"data.val {vpath}: with data.paired the validation set must be paired too "
                                     "(gt/ and lq/)")
        else:
            # Hold out the last frames (or pairs); keep at least one for training.
            pool = pairs if pairs is not None else clean
            n = min(d.val_count, len(pool) - 1)
            if n < 1:
                raise ArchivistError(f"data: only {len(pool)} frame(s): need at least 2 to hold one out for "
                                     "validation, or give data.val")
            if pairs is not None:
                pairs, val_pairs = pairs[:-n], pairs[-n:]
            else:
                clean, val_clean = clean[:-n], clean[-n:]
        self.dataset = tdata.PairBatches(seed=cfg.seed, rank=self.rank, batch_size=d.batch_size,
                                         patch_size=d.patch_size, scale=s, flip=d.flip, rot90=d.rot90,
                                         clean=clean, pairs=pairs, degrader=self.degrader,
                                         damage_scale=d.damage_scale, gray_film=d.gray_film)
        # Fail now, not in a loader process, on patches that do not fit.
        self.dataset.sample(0, 0)
        self.val_set = tdata.validation_pairs(seed=cfg.seed, val_size=d.val_size, scale=s, clean=val_clean,
                                              pairs=val_pairs, degrader=self.degrader, damage_scale=d.damage_scale,
                                              gray_film=d.gray_film) if self.main else []
        self.workers = tdata.resolve_workers(d.workers)

    # -- networks ----------------------------------------------------------------------------
    def _build_networks(self) -> None:
        from engine.models import compact
        from engine.models.discriminator import UNetDiscriminatorSN

        cfg, n = self.cfg, self.cfg.network
        checkpoint.seed_rngs(cfg.seed)
        self.spec = compact.spec_for(n.num_feat, n.num_conv, n.scale, n.act)
        g = compact.build(self.spec)
        if n.pretrained and not self.resume:
            self._load_pretrained(g, n.pretrained)
        self.g = g.to(self.device)
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False)
        self.d = None
        if cfg.uses_gan:
            self.d = UNetDiscriminatorSN(self.spec.out_channels, cfg.losses.gan.d_num_feat).to(self.device)
        if cfg.channels_last:
            for m in (self.g, self.g_ema, self.d):
                if m is not None:
                    m.to(memory_format=torch.channels_last)
        self.opt_g = _optimizer(self.g.parameters(), cfg.optim.g)
        self.opt_d = _optimizer(self.d.parameters(), cfg.optim.d) if self.d is not None else None
        factor = _lr_lambda(cfg)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, lambda s: factor(s, cfg.optim.g.lr))
        self.sched_d = (torch.optim.lr_scheduler.LambdaLR(self.opt_d, lambda s: factor(s, cfg.optim.d.lr))
                        if self.opt_d is not None else None)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        self.iteration = 0
        self.d_skipped = 0

    def _load_pretrained(self, g: torch.nn.Module, name_or_path: str) -> None:
        from engine.models.files import load_model
        from engine.models.library import Library
        from engine.models.spec import Hints

        path = Library().resolve(name_or_path)
        n = self.cfg.network
        # A file that does not say its activation (a ReLU .pth from elsewhere) is read the way the
        # config builds the network; a file that does say it must agree (checked below).
        try:
            loaded = load_model(path, fallback=Hints.given("config", act_type=n.act, scale=n.scale, out_channels=3))
        except ArchivistError as exc:
            raise ArchivistError(f"network.pretrained {name_or_path!r}: {exc}") from None
        if loaded.spec.arch != "compact" or loaded.spec.hyper != self.spec.hyper:
            raise ArchivistError(f"network.pretrained {name_or_path!r} is a {loaded.spec.describe()} "
                                 f"({loaded.spec.hyper.get('act_type')}); the config builds a {self.spec.describe()} "
                                 f"({self.spec.hyper['act_type']}): make network match it")
        g.load_state_dict(loaded.module.state_dict())
        self.pretrained_sha256 = loaded.sha256

    def _init_dist(self) -> None:
        self.g_train, self.d_train = self.g, self.d
        if self.world > 1:
            import torch.distributed as dist
            from torch.nn.parallel import DistributedDataParallel as DDP

            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            ids = [self.device.index] if self.device.type == "cuda" else None
            # Same initial weights everywhere: rank 0's are broadcast by DDP's constructor.
            self.g_train = DDP(self.g, device_ids=ids)
            if self.d is not None:
                self.d_train = DDP(self.d, device_ids=ids, broadcast_buffers=False)
            dist.barrier()
        if self.cfg.compile:
            self.g_train = torch.compile(self.g_train)

    # -- checkpoints (engine.train.checkpoint) -----------------------------------------------------
    def _checkpoint_parts(self) -> dict[str, Any]:
        """Every stateful object of the run, by its name in a checkpoint."""
        parts: dict[str, Any] = {"g": self.g, "g_ema": self.g_ema, "opt_g": self.opt_g, "sched_g": self.sched_g,
                                 "scaler": self.scaler}
        if self.d is not None:
            parts.update(d=self.d, opt_d=self.opt_d, sched_d=self.sched_d)
        return parts

    def save_checkpoint(self) -> Path:
        """Write every state of the run at the current iteration (atomically), prune old ones.

        Weights that hold NaN or infinity are never written: the last checkpoint stays the one to
        resume from.
        """
        n = self.cfg.network
        network = {"num_feat": n.num_feat, "num_conv": n.num_conv, "scale": n.scale, "act": n.act}
        try:
            path = checkpoint.save_checkpoint(self.rdir, self.iteration, network, self._checkpoint_parts(),
                                              {"d_skipped": self.d_skipped})
        except checkpoint.NonFiniteWeights as exc:
            raise ArchivistError(f"{exc}: {self._recovery_advice()}") from None
        checkpoint.prune_checkpoints(self.rdir, self.cfg.train.keep_checkpoints)
        return path

    def load_checkpoint(self) -> None:
        """Put the run back in the state of its newest checkpoint, random generators included."""
        path, ckpt = checkpoint.load_latest(self.rdir)
        checkpoint.restore(ckpt, self._checkpoint_parts())
        self.iteration = int(ckpt["iteration"])
        self.d_skipped = int(ckpt.get("d_skipped", 0))
        log.info("resumed from %s (iteration %d)", path, self.iteration)

    # -- signals and control ---------------------------------------------------------------------
    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            self._signal = "interrupted"
            log.warning("signal %d: checkpointing at the end of this iteration", signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[sig] = signal.signal(sig, handler)

    def _restore_signals(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()

    def _stop_request(self) -> str | None:
        """``interrupted``, ``pause``, ``stop`` or None; agreed across ranks under DDP."""
        request = self._signal
        if request is None and self.main:
            request = runs.read_control(self.rdir)
        if request is None and self.should_stop is not None:
            got = self.should_stop()
            if got:
                request = got if isinstance(got, str) else "stop"
        if self.world > 1:
            import torch.distributed as dist

            codes = ("", "interrupted", "pause", "stop")
            flag = torch.tensor([codes.index(request) if request in codes else 0], dtype=torch.int64,
                                device=self.device)  # NCCL reduces GPU tensors only
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            request = codes[int(flag)] or None
        return request

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg = self.cfg
        if self.main:
            checkpoint.remove_stale_partials(self.rdir)
        if self.resume:
            self.load_checkpoint()
        if self.main:  # a request left by a run that died before seeing it must not stop this one
            (self.rdir / "control").unlink(missing_ok=True)
        self.metrics = MetricsLog(self.rdir, enabled=self.main)
        if self.resume:
            self.metrics.truncate_after(self.iteration)
        total = cfg.train.total_iters
        end = min(total, self.stop_at) if self.stop_at is not None else total
        if self.stop_at is not None and self.stop_at <= self.iteration:
            raise Conflict(("stop_at",), f"{{0}} {self.stop_at} is not after the run's iteration {self.iteration}")
        self._update_state("running", self.iteration)
        self._install_signals()
        guard = self.guard = NanGuard(cfg.train.nan_tolerance)
        loader = tdata.make_loader(self.dataset, self.iteration, end, self.workers)
        window = {"start": time.perf_counter(), "wait": 0.0, "iters": 0}
        status, last_path, saved_at = "done", None, -1
        self.g_train.train()
        t_wait = time.perf_counter()
        try:
            for lq, gt in loader:
                window["wait"] += time.perf_counter() - t_wait
                self.iteration += 1
                values = self.train_step(lq, gt, guard)
                window["iters"] += 1
                it = self.iteration
                if self.main and values is not None and (it % cfg.train.log_every == 0 or it == end):
                    self._log(values, window)
                if self.main and it % cfg.train.val_every == 0:
                    self.validate()
                if self.progress is not None and self.main:
                    self.progress(it, total)
                request = self._stop_request()
                if it % cfg.train.checkpoint_every == 0 or it == end or request:
                    last_path, saved_at = self._checkpoint(), it
                if request:
                    status = {"pause": "paused", "stop": "stopped"}.get(request, request)
                    if self.main:
                        (self.rdir / "control").unlink(missing_ok=True)
                    break
                t_wait = time.perf_counter()
            else:
                status = "done" if self.iteration >= total else "stop_at"
                if saved_at != self.iteration:  # nothing left to run (resumed at the end)
                    last_path = self._checkpoint()
            if status == "done" and self.main and self.iteration % cfg.train.val_every:
                self.validate()
        except Diverged as exc:
            self._record_failure()
            raise Conflict(("resume",), f"{exc}; {self._recovery_advice()}") from None
        except torch.OutOfMemoryError:
            raise Conflict(("resume",),
                f"out of GPU memory on {self.device} at batch {cfg.data.batch_size} × {cfg.data.patch_size}²: "
                "lower data.batch_size or data.patch_size, use precision bf16/fp16, or free the GPU; "
                "then {0} (the last checkpoint is intact)") from None
        except BaseException:
            self._record_failure()
            raise
        finally:
            self._restore_signals()
        self._update_state(status, self.iteration)
        return TrainResult(cfg.name, self.rdir, self.iteration, status, last_path)

    def _record_failure(self) -> None:
        try:
            self._update_state("failed", self.iteration)
        except (OSError, ArchivistError) as exc:  # a full disk fails this too: the first error is the news
            log.info("could not record the failure in run.json: %s", exc)

    def _recovery_advice(self) -> str:
        """What to do after a divergence: resume from the last checkpoint, or start again if none.
        Words of a :class:`Conflict` on ``resume``: ``{0}`` is the key, or the command line's flag."""
        fixes = "lower optim.g.lr, use precision fp32 or enable optim.grad_clip"
        ckpts = runs.list_checkpoints(self.rdir)
        if ckpts:
            return f"the last checkpoint (iteration {ckpts[-1][0]}) is intact: {fixes}, then {{0}}"
        return (f"no checkpoint was written yet: {fixes}, then start the run again "
                f"(archivist runs remove {self.cfg.name} first)")

    def _checkpoint(self) -> Path | None:
        path = self.save_checkpoint() if self.main else None
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
        return path

    def _agreed(self, value: float) -> float:
        """``value``, or NaN where any rank's is not finite (under DDP: one small all-reduce)."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        flag = torch.tensor([0 if math.isfinite(value) else 1], dtype=torch.int64, device=self.device)  # NCCL: on the GPU
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return value if int(flag) == 0 else float("nan")

    def train_step(self, lq: torch.Tensor, gt: torch.Tensor, guard: NanGuard) -> dict[str, float] | None:
        """One generator step and one discriminator step; None when the NaN guard skipped it."""
        cfg, lo = self.cfg, self.cfg.losses
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        lq = lq.to(self.device, non_blocking=True).contiguous(memory_format=fmt)
        gt = gt.to(self.device, non_blocking=True).contiguous(memory_format=fmt)
        amp = dict(device_type=self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)
        values: dict[str, float] = {}

        # Generator: D is frozen while G learns to fool it.
        d_eval = _unwrap(self.d_train) if self.d is not None else None
        if d_eval is not None:
            d_eval.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        with torch.autocast(**amp):
            out = self.g_train(lq)
            target = usm_sharpen(gt) if lo.pixel.usm_gt else gt
            loss_g = torch.zeros((), device=self.device)
            if lo.pixel.weight > 0:
                l_pix = lo.pixel.weight * pixel_loss(lo.pixel.type, out.float(), target)
                values["l_pix"] = float(l_pix.detach())
                loss_g = loss_g + l_pix
            if self.perceptual is not None:
                l_percep = lo.perceptual.weight * self.perceptual(out.float(), gt)
                values["l_percep"] = float(l_percep.detach())
                loss_g = loss_g + l_percep
            if d_eval is not None:
                l_gan = lo.gan.weight * gan_loss(d_eval(out).float(), 1.0)
                values["l_g_gan"] = float(l_gan.detach())
                loss_g = loss_g + l_gan
        if _FAULT_NAN_ITERS and (self.iteration in _FAULT_NAN_ITERS or (self.iteration, self.rank) in _FAULT_NAN_ITERS):
            loss_g = loss_g * float("nan")
        values["l_g_total"] = float(loss_g.detach())
        # Every rank skips or none does: a rank that skipped its backward would leave the others
        # waiting in DDP's gradient all-reduce for ever.
        if not guard.check(self.iteration, {"loss_g": self._agreed(values["l_g_total"])}):
            self._skip_step()
            return None
        self.scaler.scale(loss_g).backward()
        self.scaler.unscale_(self.opt_g)
        clip = cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else float("inf")
        gnorm = float(torch.nn.utils.clip_grad_norm_(self.g.parameters(), clip))
        values["grad_norm_g"] = gnorm
        # Under fp16 the GradScaler itself skips steps with inf gradients (and lowers its scale).
        if self.dtype != torch.float16 and not guard.check(self.iteration, {"grad_norm_g": gnorm}):
            self._skip_step()
            return None
        self.scaler.step(self.opt_g)

        # Discriminator: real label capped (one-sided smoothing), skipped while far ahead if adaptive.
        if self.d is not None:
            d_eval.requires_grad_(True)
            self.opt_d.zero_grad(set_to_none=True)
            with torch.autocast(**amp):
                real = self.d_train(gt).float()
                fake = self.d_train(out.detach()).float()
                p_real, p_fake = float(torch.sigmoid(real.detach()).mean()), float(torch.sigmoid(fake.detach()).mean())
                l_d = gan_loss(real, lo.gan.real_label) + gan_loss(fake, 0.0)
            values.update(p_d_real=p_real, p_d_fake=p_fake, l_d=float(l_d.detach()))
            gap = p_real - p_fake
            if self.world > 1 and lo.gan.adaptive:  # every rank must take the same decision
                import torch.distributed as dist

                t = torch.tensor([gap], dtype=torch.float64, device=self.device)
                dist.all_reduce(t)
                gap = float(t) / self.world
            skip_d = lo.gan.adaptive and gap > lo.gan.adaptive_threshold
            values["d_skipped"] = float(skip_d)
            if skip_d:
                self.d_skipped += 1
            elif math.isfinite(self._agreed(values["l_d"])):
                self.scaler.scale(l_d).backward()
                self.scaler.unscale_(self.opt_d)
                values["grad_norm_d"] = float(torch.nn.utils.clip_grad_norm_(self.d.parameters(), clip))
                self.scaler.step(self.opt_d)
        self.scaler.update()
        self._step_schedulers()
        self._ema_update()
        values["lr_g"] = self.opt_g.param_groups[0]["lr"]
        if self.opt_d is not None:
            values["lr_d"] = self.opt_d.param_groups[0]["lr"]
        return values

    def _skip_step(self) -> None:
        """A skipped step still advances the schedule so the iteration count and lr stay in step."""
        self.opt_g.zero_grad(set_to_none=True)
        self._step_schedulers()

    def _step_schedulers(self) -> None:
        # The schedule follows iterations, stepped or skipped: silence torch's "step() before
        # optimizer.step()" warning for skipped steps.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.sched_g.step()
            if self.sched_d is not None:
                self.sched_d.step()

    @torch.no_grad()
    def _ema_update(self) -> None:
        decay = self.cfg.ema.decay
        ema_params = dict(self.g_ema.named_parameters())
        for name, p in self.g.named_parameters():
            ema_params[name].mul_(decay).add_(p.detach(), alpha=1 - decay)
        ema_buffers = dict(self.g_ema.named_buffers())
        for name, b in self.g.named_buffers():
            ema_buffers[name].copy_(b)

    def _log(self, values: dict[str, float], window: dict[str, float]) -> None:
        import psutil

        now = time.perf_counter()
        elapsed = max(now - window["start"], 1e-9)
        rec: dict[str, Any] = {"kind": "train", "iteration": self.iteration, "time": time.time()}
        rec.update(values)
        rec.update(it_per_s=window["iters"] / elapsed, data_wait=min(window["wait"] / elapsed, 1.0),
                   cpu_mem_mb=psutil.Process().memory_info().rss / 2**20, nan_skipped=self.guard.total)
        if self.device.type == "cuda":
            rec["gpu_mem_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        self.metrics.write(rec)
        window.update(start=now, wait=0.0, iters=0)
        log.info("iter %d: %s", self.iteration, ", ".join(f"{k} {v:.4g}" for k, v in values.items()))

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """PSNR/SSIM/L1 of the EMA generator on the held-out pairs, and a preview PNG (LQ | output | GT)."""
        import cv2

        from engine.atomic import atomic_write

        psnrs, ssims, l1s, preview = [], [], [], None
        for k, (lq, gt) in enumerate(self.val_set):
            x = torch.from_numpy(lq.transpose(2, 0, 1).copy())[None].to(self.device)
            out = self.g_ema(x).clamp(0, 1)[0].float().cpu().numpy().transpose(1, 2, 0)
            psnrs.append(psnr(out, gt))
            ssims.append(ssim(out, gt))
            l1s.append(float(np.abs(out - gt).mean()))
            if k == 0:
                s = self.cfg.network.scale
                up = np.repeat(np.repeat(lq, s, 0), s, 1) if s > 1 else lq
                preview = np.concatenate([np.clip(up, 0, 1), out, gt], axis=1)
        rec = {"kind": "val", "iteration": self.iteration, "time": time.time(), "psnr": float(np.mean(psnrs)),
               "ssim": float(np.mean(ssims)), "l1": float(np.mean(l1s)), "pairs": len(self.val_set)}
        self.metrics.write(rec)
        if preview is not None:
            img = (preview[:, :, ::-1] * 255 + 0.5).astype(np.uint8)
            path = self.rdir / "previews" / f"iter_{self.iteration:09d}.png"
            path.parent.mkdir(exist_ok=True)

            def write(tmp: Path) -> None:
                ok, buf = cv2.imencode(".png", img)
                tmp.write_bytes(buf.tobytes())

            atomic_write(path, write)
        log.info("validation at %d: PSNR %.2f dB, SSIM %.4f", self.iteration, rec["psnr"], rec["ssim"])
        return rec

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


# Test hook: iterations whose generator loss is made NaN (``ARCHIVIST_TRAIN_FAULT_NAN=3,4,5``).
# Fault injection for the tests: ``3,7`` makes iterations 3 and 7 non-finite on every rank, ``2@1``
# iteration 2 on rank 1 only.
_FAULT_NAN_ITERS = {(int(x.split("@")[0]), int(x.split("@")[1])) if "@" in x else int(x)
                    for x in os.environ.get("ARCHIVIST_TRAIN_FAULT_NAN", "").split(",") if x.strip()}
