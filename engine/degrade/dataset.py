"""The pair writer: clean images in, ``gt/``, ``lq/`` and ``manifest.jsonl`` out.

Every pair is written atomically (a hidden partial name, ``.NAME.png.archivist-TAG.part``, then a
rename) and its manifest line is appended, in one write, only after both of its files exist, so an
interrupted run leaves a consistent dataset and running it again with the same settings skips the
finished pairs. ``dataset.json`` is written once, atomically. Each pair's seed derives from the
master seed, the source's name and the pair's index, so the output bytes do not depend on the
number of workers or on the order pairs finish.

Everything is checked before anything is written (:func:`check_dataset`): the inputs and their
sizes against ``--crop``, the settings of an existing dataset, an output folder inside the input
folder (the input is read recursively). A queued job records in its ledger what it created and
the pairs it wrote, so a cancel removes exactly those (:func:`undo_job`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.atomic import atomic_write
from engine.degrade.pipeline import MAX_SEED, ClipDegrader, degrade, degrade_window, seed_words, stream
from engine.degrade.schema import Mix, Profile, as_mix
from engine.document import Conflict, InvalidValue
from engine.errors import ArchivistError
from engine.ownership import Ledger, is_within, partial_path, pid_alive, process_tag, write_new

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
    tag: str = ""  # names this run's partial files (see engine.ownership); empty: this process's


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
        raise Conflict(("crop",), f"{task.source}: {w}x{h} is smaller than {{0}} {task.crop}; "
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


def _write_png(path: Path, rgb: np.ndarray, tag: str) -> None:
    """Write a PNG atomically: a hidden partial name in the same folder, then a rename."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ArchivistError(f"{path}: cannot encode PNG")
    atomic_write(path, lambda tmp: write_new(tmp, buf), temp=partial_path(path, tag), parents=False)


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
    tag = task.tag or process_tag()
    if not task.clip_length:
        lq, record = _degrade_any(source, profile, task.seed, crop_box)
        # GT first: a pair is complete when its LQ exists, and the manifest line comes after both.
        _write_png(outdir / "gt" / f"{task.name}.png", img, tag)
        _write_png(outdir / "lq" / f"{task.name}.png", lq, tag)
        return {"gt": f"gt/{task.name}.png", "lq": f"lq/{task.name}.png", **entry, **record}
    final = {side: outdir / side / task.name for side in ("gt", "lq")}
    tmp = {side: partial_path(final[side], tag) for side in ("gt", "lq")}
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
            _write_png(tmp["gt"] / frame, img, tag)
            first = record
        else:
            _link_or_copy(tmp["gt"] / "frame_0000.png", tmp["gt"] / frame)
        _write_png(tmp["lq"] / frame, lq, tag)
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


def _image_size(path: Path) -> tuple[int, int]:
    """Width and height of an image from its header (the whole file is decoded only as a fallback)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError, ValueError):
        img = read_image(path)  # one clear error for a file that is not an image
        return img.shape[1], img.shape[0]


@dataclass(frozen=True)
class DatasetPlan:
    """A checked dataset run: nothing of it has been written yet."""

    input_path: Path
    outdir: Path
    tasks: list[PairTask]
    settings: dict[str, Any]
    existing: bool  # dataset.json is there: this run extends or resumes that dataset


def check_dataset(input_path: Path | str, outdir: Path | str, profile: Profile | Mix, *, count: int = 1,
                  seed: int = 0, crop: int | None = None, workers: int = 1,
                  clip_length: int | None = None) -> DatasetPlan:
    """Check a dataset run completely and write nothing: the numbers, the inputs, ``--crop`` against
    every input's size, the output folder (not inside the input folder, which is read recursively;
    not a folder of other files), and the settings of a dataset already there."""
    # Refusals name the keys (a queued degrade job's spec keys); the command line shows its flags.
    if count < 1:
        raise InvalidValue("count", count, "an integer 1 or more")
    if workers < 1:
        raise InvalidValue("workers", workers, "an integer 1 or more")
    if crop is not None and crop < 8:
        raise InvalidValue("crop", crop, "an integer 8 or more")
    if clip_length is not None and clip_length < 1:
        raise InvalidValue("clip_length", clip_length, "an integer 1 or more")
    if not 0 <= seed <= MAX_SEED:
        raise InvalidValue("seed", seed, seed_words(seed))
    input_path, outdir = Path(input_path), Path(outdir)
    root, files = list_inputs(input_path)
    _check_folders(input_path, outdir)
    if crop:
        for path in files:
            w, h = _image_size(path)
            if h < crop or w < crop:
                raise Conflict(("crop",), f"{path}: {w}x{h} is smaller than {{0}} {crop}; allowed: a crop up to "
                               f"{min(w, h)}")
    tasks = plan_pairs(root, files, count, seed, crop, clip_length)
    mix = as_mix(profile)
    settings = {"input": str(input_path.resolve()), "profile": mix.name, "profile_hash": mix.hash,
                "seed": seed, "crop": crop, "clip_length": clip_length}
    existing = _check_settings(outdir, settings)
    return DatasetPlan(input_path, outdir, tasks, settings, existing)


def check_video_dataset(video: Path | str, outdir: Path | str, profile: Profile | Mix, *, seed: int = 0,
                        crop: int | None = None, clip_length: int | None = None) -> None:
    """Before a video's frames are extracted into ``OUTDIR/source``: ``--crop`` against the frame
    size and the settings of a dataset already in ``outdir`` (what :func:`check_dataset` checks
    once the frames are there)."""
    from engine.video.probe import probe

    info = probe(Path(video))
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ArchivistError(f"{outdir}: is a file; the output of a dataset is a folder")
    if crop and min(info.width, info.height) < crop:
        raise Conflict(("crop",), f"{video}: {info.width}x{info.height} is smaller than {{0}} {crop}; allowed: a crop "
                       f"up to {min(info.width, info.height)}")
    mix = as_mix(profile)
    _check_settings(outdir, {"input": str((outdir / "source").resolve()), "profile": mix.name,
                             "profile_hash": mix.hash, "seed": seed, "crop": crop, "clip_length": clip_length})


def _check_folders(input_path: Path, outdir: Path) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise ArchivistError(f"{outdir}: is a file; the output of a dataset is a folder")
    if input_path.is_dir() and is_within(outdir, input_path):
        raise ArchivistError(f"{outdir}: the output folder is inside the input folder {input_path}, which is read "
                             "with all its subfolders (the pairs would become inputs); choose a folder outside it")
    for side in ("gt", "lq"):
        if (outdir / side).exists() and is_within(input_path, outdir / side):
            raise ArchivistError(f"{input_path}: the input is inside the output's {side}/ folder; choose another "
                                 "output folder")


def _check_settings(outdir: Path, settings: dict[str, Any]) -> bool:
    """True when ``outdir`` holds a dataset made with ``settings``; refused when made with others, or
    when it holds what a dataset holds (gt/, lq/, manifest.jsonl) without ``dataset.json``."""
    path = outdir / SETTINGS_FILE
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ArchivistError(f"{path}: unreadable ({exc}); remove it or use a new output folder") from exc
        if not isinstance(old, dict):
            raise ArchivistError(f"{path}: not a dataset's settings; remove it or use a new output folder")
        for key, value in settings.items():
            if old.get(key) != value:
                raise ArchivistError(f"{outdir}: made with {key}={old.get(key)!r}, this run has {key}={value!r}; "
                                     "use the same settings to resume, or a new output folder")
        return True
    found = [name for name in ("gt", "lq", MANIFEST_FILE) if (outdir / name).exists()]
    if found:
        raise ArchivistError(f"{outdir}: holds {', '.join(found)} but no {SETTINGS_FILE}, so it is not a dataset this "
                             "command made and its files could be written over; choose a new output folder")
    return False


def _write_settings(outdir: Path, settings: dict[str, Any], ledger: Ledger | None) -> None:
    path = outdir / SETTINGS_FILE
    if ledger is not None:
        ledger.record("file", path)
    data = (json.dumps(settings, indent=2) + "\n").encode()
    atomic_write(path, lambda tmp: write_new(tmp, data),
                 temp=partial_path(path, ledger.tag if ledger is not None else process_tag()), parents=False)


_OLD_PARTIAL_RE = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)(?:\.png)?$")  # before engine.ownership
_PARTIAL_RE = re.compile(r"^\.(?P<name>.+?)(?:\.png)?\.archivist-(?P<tag>[A-Za-z0-9]+)\.part$")


def _remove_leftovers(outdir: Path, names: set[str], tag: str) -> None:
    """Partial files of this dataset's pairs whose writer is gone: this run's own tag (an earlier
    attempt of the same job), a dead process's, or the older naming. Anything else is left alone."""
    for side in ("gt", "lq"):
        folder = outdir / side
        for p in folder.glob(".*"):
            m = _PARTIAL_RE.match(p.name) or _OLD_PARTIAL_RE.match(p.name)
            if m is None or m["name"] not in names:
                continue
            owner = m.groupdict().get("tag")
            if owner is None:
                stale = not pid_alive(int(m["pid"]))
            elif owner == tag:
                stale = True
            else:
                stale = owner.startswith("p") and owner[1:].isdigit() and not pid_alive(int(owner[1:]))
            if stale:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)


def write_dataset(input_path: Path | str, outdir: Path | str, profile: Profile | Mix, *, count: int = 1,
                  seed: int = 0, crop: int | None = None, workers: int = 1, clip_length: int | None = None,
                  progress: Callable[[float, float], None] | None = None,
                  ledger: Ledger | None = None) -> DatasetSummary:
    """Degrade every image of ``input_path`` ``count`` times into ``outdir`` (gt/, lq/, manifest.jsonl).

    Everything is checked first (:func:`check_dataset`); nothing is written for a refused run.
    Resumable: pairs already in the manifest are skipped; a larger ``count`` adds pairs; a run with
    other settings (input, profile, seed, crop, clip length) in the same folder is refused. ``workers`` > 1 runs pairs in
    that many processes; the output bytes are the same for any number of workers. ``ledger`` (a
    queued job's) records the folders and files created and each pair written (see :func:`undo_job`).
    """
    plan = check_dataset(input_path, outdir, profile, count=count, seed=seed, crop=crop, workers=workers,
                         clip_length=clip_length)
    outdir = plan.outdir
    tag = ledger.tag if ledger is not None else process_tag()
    tasks = [dataclasses.replace(t, tag=tag) for t in plan.tasks]
    created = not outdir.exists()
    try:
        return _write_pairs(plan, profile, tasks, workers, progress, ledger)
    except BaseException:
        # A run that made the folder and finished no pair leaves nothing behind (a bad first
        # image, say); finished pairs stay, and the same command resumes after them.
        if created and not _read_manifest(outdir / MANIFEST_FILE):
            shutil.rmtree(outdir, ignore_errors=True)
        raise


def _write_pairs(plan: DatasetPlan, profile: Profile | Mix, tasks: list[PairTask], workers: int,
                 progress: Callable[[float, float], None] | None, ledger: Ledger | None) -> DatasetSummary:
    outdir = plan.outdir
    if ledger is not None:
        ledger.record("dataset", outdir)
    for side in ("gt", "lq"):
        if ledger is not None:
            ledger.mkdirs(outdir / side)
        else:
            (outdir / side).mkdir(parents=True, exist_ok=True)
    if not plan.existing:
        _write_settings(outdir, plan.settings, ledger)
    _remove_leftovers(outdir, {t.name for t in tasks}, tasks[0].tag if tasks else process_tag())
    manifest = outdir / MANIFEST_FILE
    done = _read_manifest(manifest)
    todo = [t for t in tasks if t.name not in done]
    skipped = len(tasks) - len(todo)
    total = len(tasks)
    if progress:
        progress(skipped, total)
    written = 0
    if ledger is not None and not manifest.exists():
        ledger.record("file", manifest)
    fd = os.open(manifest, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o666)
    try:
        def append(entry: dict[str, Any]) -> None:
            nonlocal written
            # One write per line, to a file opened for appending: a kill leaves whole lines and at
            # most one torn last line, which the next run cuts off.
            os.write(fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())
            written += 1
            if ledger is not None:
                ledger.record("pair", outdir, name=_pair_name(entry))
            if progress:
                progress(skipped + written, total)

        if workers == 1 or len(todo) <= 1:
            for task in todo:
                append(make_pair(task, profile, outdir))
        else:
            for entry in _run_parallel(todo, profile, outdir, workers):
                append(entry)
        os.fsync(fd)
    finally:
        os.close(fd)
    log.info("%s: %d pairs written, %d already there", outdir, written, skipped)
    return DatasetSummary(str(outdir), written, skipped, total)


def _pair_name(entry: dict[str, Any]) -> str:
    return str(entry.get("lq", "")).rstrip("/").split("/")[-1].removesuffix(".png")


def undo_job(ledger: Ledger) -> list[str]:
    """Cancel a queued degrade job: remove the pairs it wrote together with their manifest lines
    (the manifest is rewritten atomically, before the files go), its partial files, and the files
    and folders it created once nothing else needs them. A dataset the job extended is left as it
    was before the job; one it created is removed. Returns the names of the pairs removed."""
    pairs: dict[str, set[str]] = {}
    for entry in ledger.entries():
        if entry["event"] == "pair" and isinstance(entry.get("name"), str):
            pairs.setdefault(entry["path"], set()).add(entry["name"])
    removed: list[str] = []
    for text in ledger.paths("dataset"):
        outdir = Path(text)
        for side in ("gt", "lq"):  # partial files carry the job's tag: nobody else's are touched
            for partial in (outdir / side).glob(f".*.archivist-{ledger.tag}.part"):
                shutil.rmtree(partial, ignore_errors=True) if partial.is_dir() else partial.unlink(missing_ok=True)
        names = pairs.get(text, set())
        manifest = outdir / MANIFEST_FILE
        if names and manifest.exists():
            _read_manifest(manifest)  # cuts a torn last line
            lines = manifest.read_bytes().splitlines(keepends=True)
            keep = [line for line in lines if _line_name(line) not in names]
            if len(keep) != len(lines):
                atomic_write(manifest, lambda tmp: write_new(tmp, b"".join(keep)),  # noqa: B023 - called at once
                             temp=partial_path(manifest, ledger.tag), parents=False)
        for name in sorted(names):
            for side in ("gt", "lq"):
                for path in (outdir / side / f"{name}.png", outdir / side / name):
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
            removed.append(name)
        # The manifest and settings the job created go only when no pair is listed any more.
        created = set(ledger.paths("file"))
        if str(manifest) in created and manifest.exists() and not _read_manifest(manifest):
            manifest.unlink()
        settings = outdir / SETTINGS_FILE
        if str(settings) in created and not manifest.exists():
            settings.unlink(missing_ok=True)
    for text in sorted(ledger.paths("folder"), key=lambda p: -len(Path(p).parts)):
        try:
            os.rmdir(text)  # only when empty
        except OSError:
            pass
    ledger.forget()
    log.info("removed %d pair(s) the cancelled job wrote", len(removed))
    return removed


def _line_name(line: bytes) -> str | None:
    try:
        return _pair_name(json.loads(line))
    except (ValueError, AttributeError):
        return None
