"""``archivist tui`` (and ``archivist`` alone): open the workstation."""

from __future__ import annotations

import argparse

IMAGE_MODES = ("auto", "kitty", "sixel", "halfcell", "none")
SCREENS = ("queue", "profiles", "training", "models")


def register(sub) -> None:
    p = sub.add_parser(
        "tui",
        help="open the workstation (the default when no command is given)",
        description="Open the terminal workstation: 1 Queue, 2 Profiles, 3 Training, 4 Models; ? shows the keys, "
        "ctrl+p the command palette, q quits. Closing it never stops a job.",
    )
    add_tui_options(p)
    p.set_defaults(func=run)


def add_tui_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", choices=IMAGE_MODES, default="auto",
                   help="how to draw pictures: auto (kitty/sixel where the terminal has them, else half-cells), "
                   "kitty, sixel, halfcell or none; $ARCHIVIST_IMAGES overrides (default auto)")
    p.add_argument("--root", default=None, metavar="DIR",
                   help="where the add-a-job form's paths start (default: the current folder)")
    p.add_argument("--screen", choices=SCREENS, default="queue", help="the screen to open on (default queue)")


def run(args: argparse.Namespace) -> int:
    from archivist_tui.app import run as run_app

    return run_app(images=getattr(args, "images", "auto"), start=getattr(args, "screen", "queue"),
                   root=getattr(args, "root", None))
