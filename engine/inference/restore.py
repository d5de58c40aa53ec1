"""Restoring still images: one file, or a folder of images into a folder with the same names.

A black-and-white image (one stored channel, or three equal ones) is restored in black and white:
the network sees three equal channels and its output is made gray again (:mod:`engine.inference.tone`),
written as a one-channel file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from engine.document import InvalidValue
from engine.errors import ArchivistError
from engine.inference.imageio import OUTPUT_FORMATS, is_image
from engine.inference.pictures import RestoreResult, restore_picture, stage_picture, warn_neutral
from engine.inference.tone import check_tone
from engine.ownership import (
    Ledger,
    check_absent,
    check_not_input,
    place,
    process_tag,
    same_file,
    stale_partials,
)

log = logging.getLogger(__name__)


def plan_images(input_path: str | os.PathLike, output: str | os.PathLike, fmt: str | None) -> list[tuple[Path, Path]]:
    """Pair every input image with its output path (same name, PNG unless ``fmt``).

    An ``output`` that is a folder, or a path ending in a separator (``restored/``, created if
    missing), receives the image under its own name.

    A folder is read at its top level only, so ``scans/ -> scans/restored/`` is allowed; a folder
    restored into itself, an output that is its own input (any spelling: links, ``./``) and two
    inputs that would give one output name are refused.
    """
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise InvalidValue("format", fmt, f"one of {', '.join(OUTPUT_FORMATS)}")
    suffix = "." + (fmt or "png")
    into_folder = str(output).endswith(("/", os.sep))  # a Path would drop the trailing separator
    input_path, output = Path(input_path), Path(output)
    if input_path.is_dir():
        sources = sorted(p for p in input_path.iterdir() if p.is_file() and is_image(p))
        if not sources:
            raise ArchivistError(f"{input_path}: folder holds no images")
        if output.exists() and not output.is_dir():
            raise ArchivistError(f"{output}: is a file; a folder input needs an output folder")
        if output.exists() and same_file(output, input_path):
            raise ArchivistError(f"{output}: the output folder is the input folder; choose another folder "
                                 f"(a subfolder such as {Path(str(output).rstrip(os.sep)) / 'restored'} works)")
        pairs = [(src, output / (src.stem + suffix)) for src in sources]
        seen: dict[str, Path] = {}
        for src, dst in pairs:
            if dst.name in seen:
                raise ArchivistError(f"{src}: gives the same output name {dst.name} as {seen[dst.name]}; "
                                     "rename one of them")
            seen[dst.name] = src
    elif not input_path.exists():
        raise ArchivistError(f"{input_path}: no such file or folder")
    elif output.is_dir() or into_folder:
        pairs = [(input_path, output / (input_path.stem + suffix))]
    elif fmt is None and output.suffix.lower() not in (".png", ".tif", ".tiff"):
        raise ArchivistError(f"{output}: output image must end in .png, .tif or .tiff")
    else:
        pairs = [(input_path, output.with_suffix(suffix) if fmt else output)]
    if len(pairs) == 1:
        check_not_input(pairs[0][1], [pairs[0][0]])
    else:  # one stat per file: a hard or symbolic link to a source among the outputs is seen
        sources = {(st.st_dev, st.st_ino): src for src, _ in pairs if (st := src.stat())}
        for _src, dst in pairs:
            st = _stat(dst)
            if st is not None and (st.st_dev, st.st_ino) in sources:
                check_not_input(dst, [sources[(st.st_dev, st.st_ino)]])
    return pairs


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def check_outputs(pairs: list[tuple[Path, Path]], overwrite: bool, mine: set[str] | frozenset = frozenset()) -> None:
    """Refuse before any work when an output exists (unless ``overwrite``, or this job wrote it:
    ``mine``, the final names in its ledger)."""
    for _src, dst in pairs:
        check_absent(dst, overwrite, mine)
        if dst.is_dir():
            raise ArchivistError(f"{dst}: is a folder; an output image cannot replace it")


def restore_images(
    input_path: str | os.PathLike,
    output: str | os.PathLike,
    chain,
    fmt: str | None = None,
    progress: Callable[[float, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    tone: str = "auto",
    overwrite: bool = False,
    ledger: Ledger | None = None,
    cluster: str | None = None,
) -> RestoreResult:
    """Restore an image or a folder of images through ``chain``.

    Everything is checked before the first image is read (:func:`plan_images`, and no output may
    exist unless ``overwrite``). Each image is written under a hidden partial name beside its
    output; when all are done each takes its final name by one rename, so a run that stops early
    leaves every earlier file as it was. ``ledger`` (a queued job's, kept in its job folder)
    records every file as it is made: a later attempt continues with the images already done and a
    cancel removes exactly those; without one the run removes its own partial files if it fails.
    ``should_stop`` is polled between images (a paused queue job: the finished partial files wait).
    ``tone``: ``auto`` restores a gray image (stored gray, or RGB with equal channels) in black and
    white, ``color`` never, ``gray`` always.

    ``cluster`` (``auto``, ``local``, ``ray://host:port``): batches of images are restored as Ray
    tasks (:func:`engine.cluster.run_images`); the files, names and resume are the same.
    """
    check_tone(tone)
    if cluster is not None:
        from engine.cluster import check_address

        check_address(cluster)
    direct = ledger is None
    ledger = ledger or Ledger(None, process_tag())
    pairs = plan_images(input_path, output, fmt)
    finals = ledger.finals()
    check_outputs(pairs, overwrite, set(finals))
    out_dir = pairs[0][1].parent
    if direct:
        for _src, dst in pairs:  # partial files of an earlier run of this command that was killed
            for stale in stale_partials(dst):
                stale.unlink(missing_ok=True)
    try:
        ledger.mkdirs(out_dir)
        if not os.access(out_dir, os.W_OK):
            raise ArchivistError(f"{out_dir}: output folder is not writable")
        if cluster is not None:
            from engine.cluster import connect, run_images

            with connect(cluster) as ray:
                result = run_images(ray, pairs, chain, ledger, finals, progress, should_stop, tone)
        else:
            result = _restore_all(pairs, chain, ledger, finals, progress, should_stop, tone)
        if not result.stopped:
            for _src, dst in pairs:
                if str(dst.absolute()) not in finals:
                    place(ledger.partial_path(dst), dst, overwrite, ledger)
                    result.outputs.append(dst)
    except BaseException:
        if direct:
            ledger.remove_created(keep_finals=True)
        raise
    return result


def _restore_all(pairs, chain, ledger: Ledger, finals: dict[str, bool], progress, should_stop,
                 tone: str) -> RestoreResult:
    """Every image into its partial file; those staged by an earlier attempt of the job are kept."""
    result = RestoreResult()
    staged = set(ledger.paths("staged"))
    neutral = 0
    for i, (src, dst) in enumerate(pairs):
        if should_stop is not None and should_stop():
            result.stopped = True
            break
        partial = ledger.partial_path(dst)
        if str(dst.absolute()) in finals or (str(partial.absolute()) in staged and partial.is_file()):
            result.skipped += 1
        else:
            data, was_neutral = restore_picture(src, dst, chain, tone)
            neutral += was_neutral
            stage_picture(ledger, dst, data)
            log.info("restored %s -> %s", src, dst)
        if progress is not None:
            progress(i + 1, len(pairs))
    warn_neutral(neutral)
    return result
