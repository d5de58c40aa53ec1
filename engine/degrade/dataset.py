"""The pair writer: clean images in, ``gt/``, ``lq/`` and ``manifest.jsonl`` out.

Every pair is written atomically (a temporary name, then a rename) and its manifest line is
appended only after both of its files exist, so an interrupted run leaves a consistent dataset
and running it again with the same settings skips the finished pairs. Each pair's seed derives
from the master seed, the source's name and the pair's index, so the output bytes do not depend
on the number of workers or on the order pairs finish.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.degrade.pipeline import MAX_SEED, ClipDegrader, degrade, degrade_window, stream
from engine.degrade.schema import Mix, Profile, as_mix
from engine.errors import ArchivistError
from engine.imagefiles import write_image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
SETTINGS_FILE = "dataset.json"
MANIFEST_FILE = "manifest.jsonl"


@dataclass(frozen=True)
class PairTask:
    """One pair (or clip) to make: its source, output name, index and seed."""

    source: str
    source_name: str
    name: str
    index: int
    seed: int
    crop: int | None
    clip_length: int | None


@dataclass(frozen=True)
class DatasetSummary:
    """What a run did: pairs written now, pairs already there, pairs in total."""

    outdir: str
    written: int
    skipped: int
    total: int


def list_inputs(path: Path) -> tuple[Path, list[Path]]:
    """The images to degrade: one file, or every image under a folder (sorted); and their root."""
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ArchivistError(f"{path}: not an image; allowed: {', '.join(IMAGE_SUFFIXES)}")
        return path.parent, [path]
    if not path.is_dir():
        raise ArchivistError(f"{path}: no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith("."))
    if not files:
        raise ArchivistError(f"{path}: no images found; allowed: {', '.join(IMAGE_SUFFIXES)}")
    return path, files


def pair_seed(master: int, source_name: str, index: int) -> int:
    """The seed of pair ``index`` of a source: stable across processes, workers and runs."""
    # The name's bytes (a UTF-8 name reads the same in every locale; one that is not UTF-8 as its bytes).
    digest = hashlib.sha256(f"{master}:{source_name}:{index}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "little") & MAX_SEED


def plan_pairs(root: Path, files: list[Path], count: int, seed: int, crop: int | None,
               clip_length: int | None) -> list[PairTask]:
    """Every pair of a run, in a fixed order (source, then index)."""
    tasks = []
    seen: dict[str, Path] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        stem = rel.rsplit(".", 1)[0].replace("/", "__")
        if stem in seen:
            raise ArchivistError(f"{path}: same output name {stem!r} as {seen[stem]}; rename one of them")
        seen[stem] = path
        for i in range(count):
            tasks.append(PairTask(str(path), rel, f"{stem}_{i:04d}", i, pair_seed(seed, rel, i), crop, clip_length))
    return tasks


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB, uint8 or uint16 (grey is expanded, alpha dropped)."""
    from engine.inference.imageio import decode_image

    img = decode_image(path)
    if img.dtype not in (np.uint8, np.uint16):
        raise ArchivistError(f"{path}: {img.dtype} images are not allowed; allowed: 8-bit or 16-bit")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def _crop(img: np.ndarray, task: PairTask) -> list[int] | None:
    """The crop box ``[x, y, side]`` of a task (None: the whole image)."""
    if not task.crop:
        return None
    h, w = img.shape[:2]
    if h < task.crop or w < task.crop:
        raise ArchivistError(f"{task.source}: {w}x{h} is smaller than --crop {task.crop}; "
                             f"allowed: a crop up to {min(w, h)}")
    rng = stream(task.seed, "crop")
    x = int(rng.integers(0, w - task.crop + 1))
    y = int(rng.integers(0, h - task.crop + 1))
    return [x, y, task.crop]


def _as_float(img: np.ndarray) -> np.ndarray:
    """A 16-bit image as float32 in [0, 1]; 8-bit images go to the degrader as they are."""
    return img.astype(np.float32) * np.float32(1.0 / 65535.0) if img.dtype == np.uint16 else img


def _as_source_depth(lq: np.ndarray, source: np.ndarray) -> np.ndarray:
    return (lq * 65535.0 + 0.5).astype(np.uint16) if source.dtype == np.uint16 else lq


def _degrade_any(img: np.ndarray, profile: Profile | Mix, seed: int,
                 box: list[int] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Damage an 8- or 16-bit image, or with ``box`` the crop of it, cut from the damaged image
    (frame-scale damage laid out over the whole image, only the crop computed)."""
    if box is None:
        lq, record = degrade(_as_float(img), profile, seed)
    else:
        x, y, side = box
        lq, record = degrade_window(_as_float(img), profile, seed, y, x, side, side)
    return _as_source_depth(lq, img), record


def _write_png(path: Path, rgb: np.ndarray) -> None:
    """Write a PNG atomically: a hidden temporary name in the same folder, then a rename."""
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    if not write_image(tmp, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):  # any name: cv2.imwrite crashes on non-UTF-8
        raise ArchivistError(f"{path}: cannot write PNG")
    os.replace(tmp, path)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def make_pair(task: PairTask, profile: Profile | Mix, outdir: Path) -> dict[str, Any]:
    """Make one pair (or clip), write its files atomically, return its manifest entry."""
    source = read_image(Path(task.source))
    crop_box = _crop(source, task)
    img = source
    if crop_box is not None:
        x, y, side = crop_box
        img = np.ascontiguousarray(source[y:y + side, x:x + side])
    entry: dict[str, Any] = {"source": task.source_name, "index": task.index, "crop": crop_box}
    if not task.clip_length:
        lq, record = _degrade_any(source, profile, task.seed, crop_box)
        # GT first: a pair is complete when its LQ exists, and the manifest line comes after both.
        _write_png(outdir / "gt" / f"{task.name}.png", img)
        _write_png(outdir / "lq" / f"{task.name}.png", lq)
        return {"gt": f"gt/{task.name}.png", "lq": f"lq/{task.name}.png", **entry, **record}
    final = {side: outdir / side / task.name for side in ("gt", "lq")}
    tmp = {side: outdir / side / f".{task.name}.tmp{os.getpid()}" for side in ("gt", "lq")}
    for folder in tmp.values():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    clip = ClipDegrader(profile, task.seed)
    whole = source.astype(np.float32) / 65535.0 if source.dtype == np.uint16 else source
    first: dict[str, Any] = {}
    for t in range(task.clip_length):
        if crop_box is None:
            lq, record = clip.frame(whole, t)
        else:
            x, y, side = crop_box
            lq, record = clip.window(whole, t, y, x, side, side)
        lq = _as_source_depth(lq, source)
        frame = f"frame_{t:04d}.png"
        if t == 0:
            _write_png(tmp["gt"] / frame, img)
            first = record
        else:
            _link_or_copy(tmp["gt"] / "frame_0000.png", tmp["gt"] / frame)
        _write_png(tmp["lq"] / frame, lq)
    for side in ("gt", "lq"):
        shutil.rmtree(final[side], ignore_errors=True)
        os.replace(tmp[side], final[side])
    first.pop("frame", None)
    return {"gt": f"gt/{task.name}/", "lq": f"lq/{task.name}/", "frames": task.clip_length, **entry, **first}


_WORKER_PROFILE: Profile | Mix | None = None
_WORKER_OUTDIR: Path | None = None


def _init_worker(profile: Profile | Mix, outdir: str) -> None:
    global _WORKER_PROFILE, _WORKER_OUTDIR
    # The parent handles Ctrl-C and stops the pool; workers must not die mid-write on their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    _WORKER_PROFILE, _WORKER_OUTDIR = profile, Path(outdir)


def _work(task: PairTask) -> dict[str, Any]:
    assert _WORKER_PROFILE is not None and _WORKER_OUTDIR is not None
    return make_pair(task, _WORKER_PROFILE, _WORKER_OUTDIR)


def _run_parallel(todo: list[PairTask], profile: Profile | Mix, outdir: Path, workers: int) -> Iterator[dict[str, Any]]:
    """Results in task order from ``workers`` fresh processes, at most two tasks queued per worker.

    Spawned, not forked: a forked child inherits OpenCV's thread pool in whatever state the parent
    left it and can hang. A worker that dies breaks the pool with an error instead of a hang.
    """
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_init_worker,
                                   initargs=(profile, str(outdir)))
    pending: deque = deque()
    tasks = iter(todo)
    try:
        for task in tasks:
            pending.append(executor.submit(_work, task))
            if len(pending) >= 2 * workers:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(tasks, None)
            if nxt is not None:
                pending.append(executor.submit(_work, nxt))
            yield result
    except BrokenProcessPool as exc:
        raise ArchivistError(f"a degrade worker process died ({exc}); run again to resume") from exc
    finally:
        # On Ctrl-C or an error: drop queued pairs; pairs in flight finish their atomic writes.
        executor.shutdown(wait=True, cancel_futures=True)


def _read_manifest(path: Path) -> set[str]:
    """Names of the pairs already in the manifest; a torn last line (killed mid-write) is cut off."""
    if not path.exists():
        return set()
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        keep = raw.rfind(b"\n") + 1
        with open(path, "r+b") as fh:
            fh.truncate(keep)
        raw = raw[:keep]
        log.warning("%s: cut off an incomplete last line", path)
    done = set()
    for lineno, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ArchivistError(f"{path}: line {lineno} is not JSON ({exc.msg}); fix or remove the line") from exc
        done.add(str(entry.get("lq", "")).rstrip("/").split("/")[-1].removesuffix(".png"))
    return done


def _check_settings(outdir: Path, settings: dict[str, Any]) -> None:
    path = outdir / SETTINGS_FILE
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ArchivistError(f"{path}: unreadable ({exc}); remove it or use a new output folder") from exc
        for key, value in settings.items():
            if old.get(key) != value:
                raise ArchivistError(f"{outdir}: made with {key}={old.get(key)!r}, this run has {key}={value!r}; "
                                     "use the same settings to resume, or a new output folder")
        return
    tmp = path.with_name(f".{SETTINGS_FILE}.tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _remove_leftovers(outdir: Path) -> None:
    for side in ("gt", "lq"):
        for p in (outdir / side).glob(".*.tmp*"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def write_dataset(input_path: Path | str, outdir: Path | str, profile: Profile | Mix, *, count: int = 1,
                  seed: int = 0, crop: int | None = None, workers: int = 1, clip_length: int | None = None,
                  progress: Callable[[float, float], None] | None = None) -> DatasetSummary:
    """Degrade every image of ``input_path`` ``count`` times into ``outdir`` (gt/, lq/, manifest.jsonl).

    Resumable: pairs already in the manifest are skipped; a larger ``count`` adds pairs; a run with
    other settings (input, profile, seed, crop, clip length) in the same folder is refused. ``workers`` > 1 runs pairs in
    that many processes; the output bytes are the same for any number of workers.
    """
    if count < 1:
        raise ArchivistError(f"--count {count} is not allowed; allowed: 1 or more")
    if workers < 1:
        raise ArchivistError(f"--workers {workers} is not allowed; allowed: 1 or more")
    if crop is not None and crop < 8:
        raise ArchivistError(f"--crop {crop} is not allowed; allowed: 8 or more")
    if clip_length is not None and clip_length < 1:
        raise ArchivistError(f"--clip-length {clip_length} is not allowed; allowed: 1 or more")
    if not 0 <= seed <= MAX_SEED:
        raise ArchivistError(f"--seed {seed} is not allowed; allowed: 0 to {MAX_SEED}")
    input_path, outdir = Path(input_path), Path(outdir)
    root, files = list_inputs(input_path)
    tasks = plan_pairs(root, files, count, seed, crop, clip_length)
    created = not outdir.exists()
    try:
        return _write_pairs(input_path, outdir, profile, tasks, seed, crop, clip_length, workers, progress)
    except BaseException:
        # A run that made the folder and finished no pair leaves nothing behind (a bad first
        # image, say); finished pairs stay, and the same command resumes after them.
        if created and not _read_manifest(outdir / MANIFEST_FILE):
            shutil.rmtree(outdir, ignore_errors=True)
        raise


def _write_pairs(input_path: Path, outdir: Path, profile: Profile | Mix, tasks: list[PairTask], seed: int,
                 crop: int | None, clip_length: int | None, workers: int,
                 progress: Callable[[float, float], None] | None) -> DatasetSummary:
    for side in ("gt", "lq"):
        (outdir / side).mkdir(parents=True, exist_ok=True)
    mix = as_mix(profile)
    _check_settings(outdir, {"input": str(input_path.resolve()), "profile": mix.name, "profile_hash": mix.hash,
                             "seed": seed, "crop": crop, "clip_length": clip_length})
    _remove_leftovers(outdir)
    manifest = outdir / MANIFEST_FILE
    done = _read_manifest(manifest)
    todo = [t for t in tasks if t.name not in done]
    skipped = len(tasks) - len(todo)
    total = len(tasks)
    if progress:
        progress(skipped, total)
    written = 0
    with open(manifest, "a", encoding="utf-8") as out:
        def append(entry: dict[str, Any]) -> None:
            nonlocal written
            out.write(json.dumps(entry, separators=(",", ":")) + "\n")
            out.flush()
            written += 1
            if progress:
                progress(skipped + written, total)

        if workers == 1 or len(todo) <= 1:
            for task in todo:
                append(make_pair(task, profile, outdir))
        else:
            for entry in _run_parallel(todo, profile, outdir, workers):
                append(entry)
        os.fsync(out.fileno())
    log.info("%s: %d pairs written, %d already there", outdir, written, skipped)
    return DatasetSummary(str(outdir), written, skipped, total)
