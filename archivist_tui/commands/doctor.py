"""``archivist doctor``: check Python, torch, devices, FFmpeg, the state directory and the library."""

from __future__ import annotations

import argparse

from archivist_tui.commands._common import add_json_option


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check this machine: torch, GPUs, FFmpeg encoders, state, models",
                       description="Report what Archivist can use here; each line is OK or a problem with its fix. "
                       "Exit code 1 when a check fails.")
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from archivist_tui.output import print_json
    from engine.doctor import run_checks

    checks = run_checks()
    if args.json:
        print_json([c.to_dict() for c in checks])
    else:
        marks = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL"}
        for c in checks:
            print(f"{marks[c.status]}  {c.name:9} {c.detail}")
            if c.fix and c.status != "ok":
                print(f"{'':15} fix: {c.fix}")
    return 1 if any(c.status == "fail" for c in checks) else 0
