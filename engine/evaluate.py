"""Measure restoration models against the damaged input and a classical denoiser, per profile and image set.

For each shipped profile, held-out clean images are damaged with seeds far from any training
seed; each method restores them and PSNR/SSIM against the clean image are averaged:

- ``damaged``: the degraded input itself;
- ``nlm``: OpenCV's ``fastNlMeansDenoisingColored`` at one strength ``h`` per profile and image
  set (``h`` and ``hColor`` equal), the best mean PSNR over :data:`NLM_STRENGTHS`;
- each model (a library name or a model file), run through :class:`engine.inference.chain.Chain`.

The image sets (:data:`SETS`), all drawn from frame seeds that training may not use
(:data:`engine.synth.EVALUATION_SEEDS`) or found in installed packages (no download):

- ``cels``: procedural cel frames;
- ``photos-val`` / ``bw-val``: photographic frames (dead leaves), colour / black-and-white, for
  choosing a recipe, a mix or a checkpoint (validation);
- ``photos-test`` / ``bw-test``: the same kinds from other seeds, measured once, at the end;
- ``real``: real photographs shipped inside installed packages, measured once, at the end.

``--sets tune`` (the default) measures what choices may be made on (cels, photos-val, bw-val);
``--sets final`` measures every set, for the published table. Black-and-white sets are shown to
the methods as gray input (R = G = B, as a black-and-white scan is) and their rows also give
each output's largest channel difference (``gray ±N``: max |R−G|, |G−B| in 8-bit levels).

    python -m engine.evaluate MODEL [MODEL ...] [--sets tune|final|SET ...] [--frames 12] [--size 384]
                              [--record OUT.json]

``--record`` keeps the rows with what they depend on (each model's sha256, every measured
profile's hash, the settings), so a test can tell when the table no longer describes the code.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import ArchivistError
from engine.synth.seeds import (
    BW_TEST_SEED,
    BW_VALIDATION_SEED,
    CEL_SEED,
    PHOTO_TEST_SEED,
    PHOTO_VALIDATION_SEED,
)

NLM_STRENGTHS = (3, 5, 7, 10, 14, 20)
FRAME_SEED = CEL_SEED  # procedural cel eval frames: the starter's training frames use 8000..8599
DAMAGE_SEED = 3_000_000_000  # degradation seeds for evaluation pairs
PHOTOS = (("textual_image", "gracehopper.jpg"), ("plotext", "_data/puppy.jpg"))


@dataclass(frozen=True)
class ImageSet:
    """One set of evaluation images: what it holds, its frame seeds and what it may be used for.

    ``damage`` offsets the degradation seeds (``DAMAGE_SEED + 100_000·damage + 1000·profile + i``),
    so no two sets share a damage draw; cels and real photographs keep offset 0, as every table
    before the sets had. ``final`` sets are measured once, at the end, never to choose anything.
    """

    key: str
    label: str
    seed: int | None
    damage: int
    final: bool
    gray: bool = False


SETS = {s.key: s for s in (
    ImageSet("cels", "cels", CEL_SEED, 0, False),
    ImageSet("photos-val", "photo frames, validation", PHOTO_VALIDATION_SEED, 1, False),
    ImageSet("bw-val", "black-and-white frames, validation", BW_VALIDATION_SEED, 3, False, gray=True),
    ImageSet("photos-test", "photo frames, test", PHOTO_TEST_SEED, 2, True),
    ImageSet("bw-test", "black-and-white frames, test", BW_TEST_SEED, 4, True, gray=True),
    ImageSet("real", "real photos", None, 0, True),
)}
SET_GROUPS = {"tune": [k for k, v in SETS.items() if not v.final], "final": list(SETS)}


@dataclass
class Score:
    """Mean PSNR (dB) and SSIM of one method on one row; ``gray``: on black-and-white input, the
    largest channel difference of its outputs (8-bit levels)."""

    psnr: float
    ssim: float
    detail: str = ""
    gray: int | None = None


@dataclass
class Row:
    set: str
    profile: str
    images: int
    scores: dict[str, Score] = field(default_factory=dict)
    key: str = ""  # the set's key in SETS ("" in records made before the sets)


def procedural_images(count: int, size: int, seed: int = FRAME_SEED) -> list[np.ndarray]:
    """Cel frames ``seed .. seed+count-1`` as the frame writer makes them."""
    from engine.synth.frames import make_frame

    return [make_frame("cel", seed + i, size) for i in range(count)]


def generated_images(image_set: ImageSet, count: int, size: int) -> list[np.ndarray]:
    """The frames of a generated set: cels, colour photographs, or black-and-white frames (half
    photographs, half cels)."""
    from engine.synth.frames import make_frame

    if image_set.gray:
        return [make_frame("bwphoto" if i % 2 == 0 else "bwcel", image_set.seed + i, size) for i in range(count)]
    kind = "cel" if image_set.key == "cels" else "photo"
    return [make_frame(kind, image_set.seed + i, size) for i in range(count)]


def gray_input(image: np.ndarray) -> np.ndarray:
    """What a black-and-white scan of a damaged frame shows: its Rec.601 luma in every channel."""
    import cv2

    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def gray_deviation(images: list[np.ndarray]) -> int:
    """The largest |R−G| or |G−B| over the pixels of 8-bit RGB images."""
    worst = 0
    for img in images:
        a = img.astype(np.int16)
        worst = max(worst, int(np.abs(a[..., 0] - a[..., 1]).max()), int(np.abs(a[..., 1] - a[..., 2]).max()))
    return worst


def photo_images(max_side: int = 512) -> list[tuple[str, np.ndarray]]:
    """Real photographs shipped inside installed packages, centre-cropped to ``max_side``."""
    import cv2

    found = []
    for package, rel in PHOTOS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(list(spec.submodule_search_locations)[0]) / rel
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
        if bgr is None:
            continue
        h, w = bgr.shape[:2]
        ch, cw = min(h, max_side) // 4 * 4, min(w, max_side) // 4 * 4
        y, x = (h - ch) // 2, (w - cw) // 2
        found.append((f"{package}/{rel}", np.ascontiguousarray(bgr[y:y + ch, x:x + cw, ::-1])))
    return found


def shipped_profile_names() -> list[str]:
    from engine.degrade.library import list_entries

    return sorted(e.name for e in list_entries() if e.origin == "shipped" and e.kind == "profile")


def _metrics(restored: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    from engine.quality import psnr
    from engine.train.metrics import ssim

    a, b = restored.astype(np.float32) / 255, clean.astype(np.float32) / 255
    return psnr(a, b), ssim(a, b)


def _mean_scores(outputs: list[np.ndarray], cleans: list[np.ndarray], gray: bool = False, detail: str = "") -> Score:
    pairs = [_metrics(o, c) for o, c in zip(outputs, cleans)]
    return Score(float(np.mean([p for p, _ in pairs])), float(np.mean([s for _, s in pairs])), detail,
                 gray_deviation(outputs) if gray else None)


def _nlm(image: np.ndarray, h: int) -> np.ndarray:
    import cv2

    bgr = np.ascontiguousarray(image[:, :, ::-1])
    return cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21)[:, :, ::-1]


def evaluate_set(name: str, cleans: list[np.ndarray], profiles: Sequence[str], models: Sequence[str],
                 device: str = "cpu", say: Callable[[str], None] = lambda text: None,
                 image_set: ImageSet | None = None) -> list[Row]:
    """Score damaged / NLM / each model on ``cleans`` damaged by each profile.

    ``image_set`` gives the set's key, its damage-seed offset and whether its input is gray
    (None: an unnamed set with offset 0 and colour input).
    """
    from engine.degrade import degrade, load_profile
    from engine.inference.chain import Chain, Stage

    gray = bool(image_set and image_set.gray)
    base = DAMAGE_SEED + 100_000 * (image_set.damage if image_set else 0)
    chains = {m: Chain.load([Stage(m)], device=device, precision="fp32") for m in models}
    rows = []
    for p_index, profile_name in enumerate(profiles):
        profile = load_profile(profile_name)
        damaged = [degrade(c, profile, base + 1000 * p_index + i)[0] for i, c in enumerate(cleans)]
        if gray:
            damaged = [gray_input(d) for d in damaged]
        row = Row(name, profile_name, len(cleans), key=image_set.key if image_set else "")
        row.scores["damaged"] = _mean_scores(damaged, cleans, gray)
        best = None
        for h in NLM_STRENGTHS:
            score = _mean_scores([_nlm(d, h) for d in damaged], cleans, gray, detail=f"h={h}")
            if best is None or score.psnr > best.psnr:
                best = score
        row.scores["nlm"] = best
        for m, chain in chains.items():
            row.scores[m] = _mean_scores([chain.run(d) for d in damaged], cleans, gray)
        say(f"{name} {profile_name}: " + ", ".join(f"{k} {v.psnr:.2f} dB/{v.ssim:.3f}" for k, v in row.scores.items()))
        rows.append(row)
    return rows


def resolve_sets(names: Sequence[str] | None) -> list[str]:
    """Set keys from ``--sets`` words: keys of :data:`SETS`, ``tune`` or ``final``; in table order."""
    chosen: set[str] = set()
    for word in names or ["tune"]:
        if word in SET_GROUPS:
            chosen.update(SET_GROUPS[word])
        elif word in SETS:
            chosen.add(word)
        else:
            raise ArchivistError(f"--sets {word!r} is not allowed; allowed: tune, final, {', '.join(SETS)}")
    return [k for k in SETS if k in chosen]


def evaluate(models: Sequence[str], frames: int = 12, size: int = 384, profiles: Sequence[str] | None = None,
             photos: bool = True, device: str = "cpu", say: Callable[[str], None] = lambda text: None,
             sets: Sequence[str] | None = None) -> list[Row]:
    """Measure ``models`` on every set of ``sets`` (keys, ``tune`` or ``final``; default ``tune``)
    and profile; ``photos`` False leaves out the real photographs."""
    if frames < 1 or size < 64:
        raise ArchivistError(f"--frames must be at least 1 and --size at least 64 (got {frames}, {size})")
    keys = resolve_sets(sets)
    profiles = list(profiles) if profiles else shipped_profile_names()
    rows: list[Row] = []
    for key in keys:
        image_set = SETS[key]
        if key == "real":
            found = photo_images() if photos else []
            if found:
                label = "real photos (" + ", ".join(Path(n).name for n, _ in found) + ")"
                rows += evaluate_set(label, [img for _, img in found], profiles, models, device, say, image_set)
            continue
        label = f"{image_set.label} ({frames} × {size}², seeds {image_set.seed}+)"
        rows += evaluate_set(label, generated_images(image_set, frames, size), profiles, models, device, say,
                             image_set)
    return rows


def profile_hashes(profiles: Sequence[str]) -> dict[str, str]:
    from engine.degrade import load_profile

    return {name: load_profile(name).hash for name in profiles}


def make_record(rows: list[Row], models: Sequence[str], frames: int, size: int) -> dict:
    """The rows with what they depend on: model sha256s, profile hashes, settings and set seeds."""
    from engine.models.library import Library, entry_from_file

    lib = Library()
    keys = [k for k in SETS if any(r.key == k for r in rows)]
    return {
        "models": {m: entry_from_file(lib.resolve(m)).sha256 for m in models},
        "profiles": profile_hashes(sorted({r.profile for r in rows})),
        "settings": {"frames": frames, "size": size, "frame_seed": FRAME_SEED, "damage_seed": DAMAGE_SEED,
                     "nlm_strengths": list(NLM_STRENGTHS),
                     "sets": {k: {"seed": SETS[k].seed, "damage_offset": SETS[k].damage, "final": SETS[k].final,
                                  "gray": SETS[k].gray} for k in keys}},
        "rows": [asdict(r) for r in rows],
    }


def _legacy_key(label: str) -> str:
    """The set key of a row recorded before the sets had keys."""
    return "cels" if label.startswith("procedural") else "real" if label.startswith("photos") else ""


def rows_from_record(record: dict) -> list[Row]:
    """The rows of a ``--record`` file (also of records made before the sets)."""
    return [Row(r["set"], r["profile"], r["images"], {k: Score(**v) for k, v in r["scores"].items()},
                r.get("key") or _legacy_key(r["set"]))
            for r in record["rows"]]


def markdown_table(rows: list[Row]) -> str:
    methods = list(rows[0].scores) if rows else []
    head = "| images | profile | " + " | ".join(
        "fastNlMeans (best h)" if m == "nlm" else m for m in methods) + " |"
    lines = [head, "|" + "---|" * (2 + len(methods))]
    for r in rows:
        cells = []
        for m in methods:
            s = r.scores[m]
            best = max(r.scores.values(), key=lambda v: v.psnr)
            notes = [n for n in (s.detail, f"gray ±{s.gray}" if s.gray is not None else "") if n]
            text = f"{s.psnr:.2f} dB / {s.ssim:.3f}" + (f" ({', '.join(notes)})" if notes else "")
            cells.append(f"**{text}**" if s is best else text)
        lines.append(f"| {r.set} | {r.profile} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="library names or model files")
    parser.add_argument("--sets", nargs="+", metavar="SET",
                        help="tune (default: cels, photos-val, bw-val), final (every set, once, at the end) "
                             f"or set names: {', '.join(SETS)}")
    parser.add_argument("--frames", type=int, default=12, help="generated frames per set and profile")
    parser.add_argument("--size", type=int, default=384, help="side of the generated frames")
    parser.add_argument("--profiles", nargs="*", help="profiles to measure (default: every shipped profile)")
    parser.add_argument("--no-photos", action="store_true", help="leave out the real photographs")
    parser.add_argument("--markdown", help="write the table to this file")
    parser.add_argument("--record", help="write the rows with model and profile hashes to this JSON file")
    args = parser.parse_args(argv)
    try:
        rows = evaluate(args.models, args.frames, args.size, args.profiles, not args.no_photos,
                        say=lambda text: print(text, file=sys.stderr, flush=True), sets=args.sets)
    except ArchivistError as exc:
        print(f"archivist: error: {exc}", file=sys.stderr)
        return exc.exit_code
    table = markdown_table(rows)
    if args.markdown:
        Path(args.markdown).write_text(table)
    if args.record:
        record = make_record(rows, args.models, args.frames, args.size)
        Path(args.record).write_text(json.dumps(record, indent=1) + "\n")
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
