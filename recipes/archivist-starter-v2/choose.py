"""Choose starter v2 among candidates by the ship rule, on a tuning record only.

    python recipes/archivist-starter-v2/choose.py TUNE.json [--reference archivist-starter]

TUNE.json is what ``python -m engine.evaluate REFERENCE CANDIDATE... --sets tune --record TUNE.json``
wrote: the tuning sets only (generated cels, photographs and black-and-white frames held out by
seed), never the test sets or the real photographs. For each candidate it prints, per set, the
worst PSNR difference to the reference (v1), then whether it keeps the rule that lets v2 replace
v1 without meeting every goal:

- on cels, at most 0.2 dB below v1 on every profile;
- on every photograph row (``photos-val``; ``bw-val``, black-and-white photographs and cels shown
  as gray input), above v1 and above the damaged input.

The network's own channel difference on gray input (``gray ±N``) is printed beside it: `archivist
restore` makes a gray picture's output gray again (engine.inference.tone), so what a user gets
from gray input is gray whatever the network does; the figure says how far the network alone is
from that.

Among the candidates that keep it, the one with the best mean PSNR over the photograph rows is
chosen; with none, the one whose worst cel loss is smallest, named as not meeting the rule.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.evaluate import rows_from_record  # noqa: E402

CEL_LOSS = 0.2  # dB below v1 a cel row may lose
PHOTO_SETS = ("photos-val", "bw-val")
TUNING_SETS = {"cels", *PHOTO_SETS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("record", type=Path)
    parser.add_argument("--reference", default="archivist-starter", help="v1's name in the record")
    args = parser.parse_args(argv)
    rows = rows_from_record(json.loads(args.record.read_text()))
    sets = {r.key for r in rows}
    if not sets <= TUNING_SETS:
        print(f"{args.record}: holds {', '.join(sorted(sets - TUNING_SETS))}: choose on the tuning sets only")
        return 2
    candidates = [m for m in rows[0].scores if m not in ("damaged", "nlm", args.reference)]
    verdicts = []
    for name in candidates:
        cel = min(r.scores[name].psnr - r.scores[args.reference].psnr for r in rows if r.key == "cels")
        photo_rows = [r for r in rows if r.key in PHOTO_SETS]
        over_v1 = min(r.scores[name].psnr - r.scores[args.reference].psnr for r in photo_rows)
        over_input = min(r.scores[name].psnr - r.scores["damaged"].psnr for r in photo_rows)
        gray = max((r.scores[name].gray or 0) for r in rows)
        mean_photo = sum(r.scores[name].psnr for r in photo_rows) / len(photo_rows)
        keeps = cel >= -CEL_LOSS and over_v1 > 0 and over_input > 0
        verdicts.append((keeps, mean_photo, cel, name))
        print(f"{name:>24}: cels worst {cel:+.2f} dB vs v1; photo rows worst {over_v1:+.2f} dB vs v1, "
              f"{over_input:+.2f} dB vs input, mean {mean_photo:.2f} dB; network alone gray ±{gray}: "
              f"{'keeps the rule' if keeps else 'does not keep the rule'}")
    kept = [v for v in verdicts if v[0]]
    if kept:
        print(f"chosen: {max(kept, key=lambda v: v[1])[3]}")
        return 0
    print(f"none keeps the rule; nearest on cels: {max(verdicts, key=lambda v: v[2])[3]}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
