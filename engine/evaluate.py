"""Measure restoration models against the damaged input and a classical denoiser, per profile.

For each shipped profile, held-out clean images are damaged with seeds far from any training
seed; each method restores them and PSNR/SSIM against the clean image are averaged:

- ``damaged``: the degraded input itself;
- ``nlm``: OpenCV's ``fastNlMeansDenoisingColored`` at one strength ``h`` per profile and image
  set (``h`` and ``hColor`` equal), the best mean PSNR over :data:`NLM_STRENGTHS`;
- each model (a library name or a model file), run through :class:`engine.inference.chain.Chain`.

Two image sets: procedural cel frames (``engine.synth``, seeds disjoint from the training
frames) and real photographs found in installed packages (no download).

    python -m engine.evaluate MODEL [MODEL ...] [--frames 12] [--size 384] [--record OUT.json]

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

NLM_STRENGTHS = (3, 5, 7, 10, 14, 20)
FRAME_SEED = 900_000  # procedural eval frames: the starter's training frames use 8000..8599
DAMAGE_SEED = 3_000_000_000  # degradation seeds for evaluation pairs
PHOTOS = (("textual_image", "gracehopper.jpg"), ("plotext", "_data/puppy.jpg"))


@dataclass
class Score:
    psnr: float
    ssim: float
    detail: str = ""


@dataclass
class Row:
    set: str
    profile: str
    images: int
    scores: dict[str, Score] = field(default_factory=dict)


def procedural_images(count: int, size: int, seed: int = FRAME_SEED) -> list[np.ndarray]:
    from engine.synth.cel import cel_frame

    out = []
    for i in range(count):
        t = float(np.random.default_rng([seed + i, 0x7]).uniform(0.0, 8.0))
        out.append(cel_frame(seed + i, size, size, t))
    return out


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
    from engine.train.metrics import psnr, ssim

    a, b = restored.astype(np.float32) / 255, clean.astype(np.float32) / 255
    return psnr(a, b), ssim(a, b)


def _mean_scores(outputs: list[np.ndarray], cleans: list[np.ndarray]) -> tuple[float, float]:
    pairs = [_metrics(o, c) for o, c in zip(outputs, cleans)]
    return float(np.mean([p for p, _ in pairs])), float(np.mean([s for _, s in pairs]))


def _nlm(image: np.ndarray, h: int) -> np.ndarray:
    import cv2

    bgr = np.ascontiguousarray(image[:, :, ::-1])
    return cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21)[:, :, ::-1]


def evaluate_set(name: str, cleans: list[np.ndarray], profiles: Sequence[str], models: Sequence[str],
                 device: str = "cpu", say: Callable[[str], None] = lambda text: None) -> list[Row]:
    """Score damaged / NLM / each model on ``cleans`` damaged by each profile."""
    from engine.degrade import degrade, load_profile
    from engine.inference.chain import Chain, Stage

    chains = {m: Chain.load([Stage(m)], device=device, precision="fp32") for m in models}
    rows = []
    for p_index, profile_name in enumerate(profiles):
        profile = load_profile(profile_name)
        damaged = [degrade(c, profile, DAMAGE_SEED + 1000 * p_index + i)[0] for i, c in enumerate(cleans)]
        row = Row(name, profile_name, len(cleans))
        row.scores["damaged"] = Score(*_mean_scores(damaged, cleans))
        best = None
        for h in NLM_STRENGTHS:
            score = Score(*_mean_scores([_nlm(d, h) for d in damaged], cleans), detail=f"h={h}")
            if best is None or score.psnr > best.psnr:
                best = score
        row.scores["nlm"] = best
        for m, chain in chains.items():
            row.scores[m] = Score(*_mean_scores([chain.run(d) for d in damaged], cleans))
        say(f"{name} {profile_name}: " + ", ".join(f"{k} {v.psnr:.2f} dB/{v.ssim:.3f}" for k, v in row.scores.items()))
        rows.append(row)
    return rows


def evaluate(models: Sequence[str], frames: int = 12, size: int = 384, profiles: Sequence[str] | None = None,
             photos: bool = True, device: str = "cpu", say: Callable[[str], None] = lambda text: None) -> list[Row]:
    if frames < 1 or size < 64:
        raise ArchivistError(f"--frames must be at least 1 and --size at least 64 (got {frames}, {size})")
    profiles = list(profiles) if profiles else shipped_profile_names()
    rows = evaluate_set(f"procedural ({frames} × {size}²)", procedural_images(frames, size), profiles, models,
                        device, say)
    found = photo_images() if photos else []
    if found:
        label = "photos (" + ", ".join(Path(n).name for n, _ in found) + ")"
        rows += evaluate_set(label, [img for _, img in found], profiles, models, device, say)
    return rows


def profile_hashes(profiles: Sequence[str]) -> dict[str, str]:
    from engine.degrade import load_profile

    return {name: load_profile(name).hash for name in profiles}


def make_record(rows: list[Row], models: Sequence[str], frames: int, size: int) -> dict:
    from engine.models.library import Library, entry_from_file

    lib = Library()
    return {
        "models": {m: entry_from_file(lib.resolve(m)).sha256 for m in models},
        "profiles": profile_hashes(sorted({r.profile for r in rows})),
        "settings": {"frames": frames, "size": size, "frame_seed": FRAME_SEED, "damage_seed": DAMAGE_SEED,
                     "nlm_strengths": list(NLM_STRENGTHS)},
        "rows": [asdict(r) for r in rows],
    }


def rows_from_record(record: dict) -> list[Row]:
    return [Row(r["set"], r["profile"], r["images"], {k: Score(**v) for k, v in r["scores"].items()})
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
            text = f"{s.psnr:.2f} dB / {s.ssim:.3f}" + (f" ({s.detail})" if s.detail else "")
            cells.append(f"**{text}**" if s is best else text)
        lines.append(f"| {r.set} | {r.profile} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="library names or model files")
    parser.add_argument("--frames", type=int, default=12, help="procedural frames per profile")
    parser.add_argument("--size", type=int, default=384, help="side of the procedural frames")
    parser.add_argument("--profiles", nargs="*", help="profiles to measure (default: every shipped profile)")
    parser.add_argument("--no-photos", action="store_true", help="leave out the real photographs")
    parser.add_argument("--markdown", help="write the table to this file")
    parser.add_argument("--record", help="write the rows with model and profile hashes to this JSON file")
    args = parser.parse_args(argv)
    try:
        rows = evaluate(args.models, args.frames, args.size, args.profiles, not args.no_photos,
                        say=lambda text: print(text, file=sys.stderr, flush=True))
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
