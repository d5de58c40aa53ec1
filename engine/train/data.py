"""Training pairs: random patches of clean frames degraded on the fly, or a pre-generated paired set.

A batch is a pure function of (run seed, rank, iteration): which frame, where the crop falls, the
flips and the degradation seed are all drawn from ``SeedSequence([seed, 0, rank, iteration, i])``.
The *data position* of a run is therefore just its iteration, and resume is exact whatever the
number of loader processes. Validation pairs use ``[seed, 1, k]``, disjoint from training.

On-the-fly damage comes at one of two scales (``data.damage_scale``). ``frame``: a patch is the
window of its whole (flipped, rotated) frame damaged as a frame, so vignetting, flicker's
gradient, large stains, creases and long scratches are laid out over the frame and the patch shows
its part of them (:func:`engine.degrade.pipeline.degrade_window`; only the window and a small
margin are computed). ``patch``: the patch is damaged as if it were the whole frame (how
archivist-starter v1 was trained). With ``data.gray_film`` a clean frame whose channels are equal
is black-and-white film: its damaged input is made gray too (Rec.601 luma in every channel).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.errors import ArchivistError
from engine.media import VIDEO_SUFFIXES, is_video

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp")
TRAIN_STREAM, VAL_STREAM = 0, 1
DAMAGE_SCALES = ("frame", "patch")
_LUMA = np.array([[0.299, 0.587, 0.114]], dtype=np.float32)


def list_images(folder: Path, what: str) -> list[Path]:
    """The image files of a folder, sorted by name; a clear error for a missing or empty folder."""
    if not folder.is_dir():
        raise ArchivistError(f"{what} {folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ArchivistError(f"{what} {folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def clean_frames(entry: Path, cache: Path, every: int = 1, limit: int | None = None) -> list[Path]:
    """The clean frames of a ``data.clean`` entry: a folder's images, or a video's frames.

    A video's frames are extracted once (lossless PNG, every ``every``-th, at most ``limit``) into
    ``cache/<video stem>/``; an interrupted extraction continues where it stopped.
    """
    if entry.is_file() and is_video(entry):
        from engine.video.degrade import extract_frames

        return extract_frames(entry, cache / entry.stem, every=every, limit=limit)
    if entry.is_file():
        raise ArchivistError(f"data.clean {entry}: neither a folder of frames nor a video "
                             f"({', '.join(VIDEO_SUFFIXES)})")
    return list_images(entry, "data.clean")


def read_rgb(path: Path) -> np.ndarray:
    """An image as HxWx3 float32 RGB in [0, 1] (8- and 16-bit; grey and alpha handled)."""
    from engine.inference.imageio import decode_image

    img = decode_image(path)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return np.ascontiguousarray(img[:, :, ::-1]).astype(np.float32) * np.float32(1.0 / scale)


def is_paired_folder(folder: Path) -> bool:
    return (folder / "gt").is_dir() and (folder / "lq").is_dir()


def paired_files(folder: Path) -> list[tuple[Path, Path]]:
    """(GT, LQ) file pairs of a paired dataset folder (``gt/`` and ``lq/`` with the same names).

    A dataset written with ``--clip-length`` keeps each clip in its own sub-folder
    (``gt/<clip>/0000.png``); its frames are pairs too.
    """
    if not is_paired_folder(folder):
        raise ArchivistError(f"paired dataset {folder}: needs gt/ and lq/ sub-folders")
    gt_root = folder / "gt"
    gts = sorted(p for p in gt_root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not gts:
        raise ArchivistError(f"paired dataset {gt_root}: no images ({', '.join(IMAGE_SUFFIXES)})")
    pairs = []
    for gt in gts:
        rel = gt.relative_to(gt_root)
        lq = folder / "lq" / rel
        if not lq.is_file():
            raise ArchivistError(f"paired dataset {folder}: lq/{rel.as_posix()} missing (gt/ and lq/ must match)")
        pairs.append((gt, lq))
    return pairs


def sample_seed(*words: int) -> int:
    """A 32-bit seed from a tuple of integers (run seed, stream, rank, iteration, index)."""
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(1)[0])


def draw_orientation(rng: np.random.Generator, flip: bool, rot90: bool) -> tuple[bool, bool, int]:
    """Random (horizontal flip, vertical flip, quarter turns)."""
    hflip = flip and rng.random() < 0.5
    vflip = flip and rng.random() < 0.5
    k = int(rng.integers(4)) if rot90 else 0
    return hflip, vflip, k


def orient(a: np.ndarray, orientation: tuple[bool, bool, int]) -> np.ndarray:
    """``a`` flipped and turned (a view, no copy)."""
    hflip, vflip, k = orientation
    if hflip:
        a = a[:, ::-1]
    if vflip:
        a = a[::-1]
    return np.rot90(a, k) if k else a


def augment(arrays: list[np.ndarray], rng: np.random.Generator, flip: bool, rot90: bool) -> list[np.ndarray]:
    """The same random flips and 90° rotation applied to every array of a pair."""
    orientation = draw_orientation(rng, flip, rot90)
    return [np.ascontiguousarray(orient(a, orientation)) for a in arrays]


def is_gray(img: np.ndarray) -> bool:
    """Whether every pixel has equal channels (a black-and-white frame)."""
    return bool(np.array_equal(img[:, :, 0], img[:, :, 1]) and np.array_equal(img[:, :, 1], img[:, :, 2]))


def to_gray(img: np.ndarray) -> np.ndarray:
    """Rec.601 luma in all three channels: what a black-and-white film shows of its damage."""
    y = cv2.transform(np.ascontiguousarray(img, dtype=np.float32), _LUMA)
    return cv2.cvtColor(y, cv2.COLOR_GRAY2RGB)


@dataclass
class Degrader:
    """The on-the-fly degradation: a loaded profile or mix and its identity (names and hashes)."""

    profile: Any
    name: str

    @classmethod
    def load(cls, name_or_path: str) -> Degrader:
        try:
            from engine.degrade import load_profile
        except ImportError:
            raise ArchivistError(
                "on-the-fly degradation needs the degrader (engine.degrade), which is not installed here; "
                "use a pre-generated paired dataset (data.paired) instead") from None
        return cls(profile=load_profile(name_or_path), name=name_or_path)

    def __call__(self, gt: np.ndarray, seed: int) -> np.ndarray:
        from engine.degrade import degrade

        lq, _ = degrade(gt, self.profile, seed)
        return np.asarray(lq, dtype=np.float32)

    def window(self, frame: np.ndarray, seed: int, top: int, left: int, height: int, width: int) -> np.ndarray:
        """The damaged ``height`` × ``width`` window at (top, left) of ``frame`` damaged whole."""
        from engine.degrade.pipeline import degrade_window

        lq, _ = degrade_window(frame, self.profile, seed, top, left, height, width)
        return np.asarray(lq, dtype=np.float32)

    def identity(self) -> dict[str, Any]:
        """Profile names, weights and hashes, recorded in checkpoints and promoted models."""
        p = self.profile
        entries = getattr(p, "entries", None)
        out: dict[str, Any] = {"name": getattr(p, "name", self.name), "hash": getattr(p, "hash", None)}
        if entries:
            out["profiles"] = {prof.name: {"weight": float(w), "hash": prof.hash} for prof, w in entries}
        return out


def downscale(img: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return img
    h, w = img.shape[:2]
    return cv2.resize(img, (w // scale, h // scale), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class PatchDraw:
    """The draws of one on-the-fly training sample at frame scale."""

    path: Path
    orientation: tuple[bool, bool, int]  # horizontal flip, vertical flip, quarter turns
    top: int  # the patch's corner in the turned frame
    left: int
    damage_seed: int


class PairBatches:
    """Map-style dataset whose item ``it`` is the whole training batch of iteration ``it``.

    Items are ``(lq, gt)`` float32 tensors NCHW in [0, 1]; the LQ side is ``patch/scale``.
    """

    def __init__(self, *, seed: int, rank: int, batch_size: int, patch_size: int, scale: int,
                 flip: bool, rot90: bool, clean: list[Path] | None = None,
                 pairs: list[tuple[Path, Path]] | None = None, degrader: Degrader | None = None,
                 damage_scale: str = "frame", gray_film: bool = True):
        if damage_scale not in DAMAGE_SCALES:
            raise ArchivistError(f"damage scale {damage_scale!r}: allowed {', '.join(DAMAGE_SCALES)}")
        self.seed, self.rank = seed, rank
        self.batch_size, self.patch, self.scale = batch_size, patch_size, scale
        self.flip, self.rot90 = flip, rot90
        self.clean, self.pairs, self.degrader = clean, pairs, degrader
        self.damage_scale, self.gray_film = damage_scale, gray_film
        self._cache: dict[Path, np.ndarray] = {}
        self._gray: dict[Path, bool] = {}

    def __len__(self) -> int:  # iterations are addressed directly; the length is nominal
        return 2**62

    def _image(self, path: Path) -> np.ndarray:
        img = self._cache.get(path)
        if img is None:
            img = read_rgb(path)
            if len(self._cache) < 256:  # keep small datasets in memory; big ones are read each time
                self._cache[path] = img
            if self.gray_film and path not in self._gray:
                self._gray[path] = is_gray(img)
        return img

    def sample(self, iteration: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """One (LQ, GT) patch pair, HxWx3 float32."""
        rng = np.random.default_rng(sample_seed(self.seed, TRAIN_STREAM, self.rank, iteration, index))
        p, s = self.patch, self.scale
        if self.pairs is not None:
            gt_path, lq_path = self.pairs[int(rng.integers(len(self.pairs)))]
            gt, lq = self._image(gt_path), self._image(lq_path)
            if gt.shape[0] != lq.shape[0] * s or gt.shape[1] != lq.shape[1] * s:
                raise ArchivistError(f"{lq_path}: size {lq.shape[1]}x{lq.shape[0]} does not match "
                                     f"{gt_path} at scale {s}")
            y, x = self._corner(rng, lq.shape, p // s, lq_path)
            gt = gt[y * s:(y + p // s) * s, x * s:(x + p // s) * s]
            lq = lq[y:y + p // s, x:x + p // s]
            gt, lq = augment([gt, lq], rng, self.flip, self.rot90)
            return lq, gt
        assert self.clean is not None and self.degrader is not None
        if self.damage_scale == "frame":
            draw, img = self._patch_draw(iteration, index)
            path = draw.path
            frame = orient(img, draw.orientation)
            gt = np.ascontiguousarray(frame[draw.top:draw.top + p, draw.left:draw.left + p])
            lq = self.degrader.window(frame, draw.damage_seed, draw.top, draw.left, p, p)
        else:
            path = self.clean[int(rng.integers(len(self.clean)))]
            img = self._image(path)
            y, x = self._corner(rng, img.shape, p, path)
            (gt,) = augment([img[y:y + p, x:x + p]], rng, self.flip, self.rot90)
            lq = self.degrader(gt, int(rng.integers(2**31)))
        if self.gray_film and self._gray.get(path, False):
            lq = to_gray(lq)
        return downscale(lq, s), gt

    def patch_draw(self, iteration: int, index: int) -> PatchDraw:
        """Where on-the-fly sample ``index`` of ``iteration`` comes from (``damage_scale`` frame):
        its frame, how the frame is turned, the patch's corner in the turned frame, the damage seed."""
        return self._patch_draw(iteration, index)[0]

    def _patch_draw(self, iteration: int, index: int) -> tuple[PatchDraw, np.ndarray]:
        assert self.clean is not None
        rng = np.random.default_rng(sample_seed(self.seed, TRAIN_STREAM, self.rank, iteration, index))
        path = self.clean[int(rng.integers(len(self.clean)))]
        # The frame is turned before it is damaged, so damage keeps its orientation on the film
        # (creases across, scratches along) whatever the picture's.
        orientation = draw_orientation(rng, self.flip, self.rot90)
        img = self._image(path)
        h, w = img.shape[:2]
        shape = (w, h) if orientation[2] % 2 else (h, w)
        top, left = self._corner(rng, shape, self.patch, path)
        return PatchDraw(path, orientation, top, left, int(rng.integers(2**31))), img

    @staticmethod
    def _corner(rng: np.random.Generator, shape: tuple[int, ...], size: int, path: Path) -> tuple[int, int]:
        h, w = shape[:2]
        if h < size or w < size:
            raise ArchivistError(f"{path}: {w}x{h} is smaller than the patch ({size} px): lower data.patch_size")
        return int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))

    def __getitem__(self, iteration: int):
        import torch

        lqs, gts = zip(*(self.sample(iteration, i) for i in range(self.batch_size)))
        to = lambda arrs: torch.from_numpy(np.stack(arrs).transpose(0, 3, 1, 2).copy())  # noqa: E731
        return to(lqs), to(gts)


def resolve_workers(workers: int | str) -> int:
    """``auto`` is one loader process per spare core (0 on a single core)."""
    if workers == "auto":
        return max(0, min(8, (os.cpu_count() or 1) - 1))
    return int(workers)


def _loader_process_signals(_worker_id: int) -> None:
    """A loader process leaves SIGTERM to the trainer. ``timeout``, ``kill -- -PGID`` and a service
    manager signal the whole process group; a loader process that died of it made the trainer fail
    with a traceback instead of checkpointing. The trainer ends its loader processes itself, and
    PyTorch's watchdog ends them if the trainer dies. (SIGINT, Ctrl-C's, PyTorch handles already.)"""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(dataset: PairBatches, start: int, end: int, workers: int):
    """A DataLoader yielding the batches of iterations ``start+1 .. end`` in order (prefetched)."""
    import torch

    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs = dict(num_workers=workers, prefetch_factor=2, persistent_workers=False,
                      worker_init_fn=_loader_process_signals)
    # Its own generator: creating a loader must not consume the global torch RNG (exact resume).
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=range(start + 1, end + 1),
                                       generator=torch.Generator().manual_seed(dataset.seed), **kwargs)


def validation_pairs(*, seed: int, val_size: int, scale: int, clean: list[Path] | None = None,
                     pairs: list[tuple[Path, Path]] | None = None, degrader: Degrader | None = None,
                     damage_scale: str = "frame", gray_film: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """The fixed held-out (LQ, GT) set: centre crops, degraded with seeds disjoint from training
    (at ``damage_scale``, as the training patches are)."""
    out = []
    if pairs is not None:
        for gt_path, lq_path in pairs:
            gt, lq = read_rgb(gt_path), read_rgb(lq_path)
            side = min(val_size // scale, lq.shape[0], lq.shape[1])
            y, x = (lq.shape[0] - side) // 2, (lq.shape[1] - side) // 2
            out.append((lq[y:y + side, x:x + side], gt[y * scale:(y + side) * scale, x * scale:(x + side) * scale]))
        return out
    assert clean is not None and degrader is not None
    for k, path in enumerate(clean):
        img = read_rgb(path)
        side = min(val_size, img.shape[0], img.shape[1]) // scale * scale
        y, x = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        gt = np.ascontiguousarray(img[y:y + side, x:x + side])
        if damage_scale == "patch":
            lq = degrader(gt, sample_seed(seed, VAL_STREAM, k))
        else:
            lq = degrader.window(img, sample_seed(seed, VAL_STREAM, k), y, x, side, side)
        if gray_film and is_gray(img):
            lq = to_gray(lq)
        out.append((downscale(lq, scale), gt))
    return out
