"""``archivist docs [NAME]``: the guides that ship with Archivist, listed or printed.

The Markdown files of ``docs/`` are installed with the package (``archivist_tui/docs`` in a wheel,
see ``pyproject.toml``), so a help text can point at them on any machine, offline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def docs_dir() -> Path:
    """Where the guides are: inside the installed package, else the source tree's ``docs/``."""
    here = Path(__file__).resolve().parent.parent  # archivist_tui/
    for folder in (here / "docs", here.parent / "docs"):
        if (folder / "daemon.md").is_file():
            return folder
    from engine.errors import ArchivistError

    raise ArchivistError(f"the guides are not installed with this copy of Archivist (looked in {here / 'docs'})")


def register(sub) -> None:
    p = sub.add_parser("docs", help="list or print the guides that ship with Archivist",
                       description="The guides (Markdown) and the systemd unit installed with Archivist. With "
                       "no NAME: list them and their folder. NAME is a guide's name, e.g. daemon or training.")
    p.add_argument("name", nargs="?", metavar="NAME", help="the guide to print (e.g. daemon, training, tui)")
    p.add_argument("--path", action="store_true", help="print the file's path instead of its text")
    p.set_defaults(func=run)


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def run(args: argparse.Namespace) -> int:
    from engine.errors import ArchivistError

    folder = docs_dir()
    files = {p.stem if p.suffix == ".md" else p.name: p for p in sorted(folder.iterdir())
             if p.suffix in (".md", ".service")}
    if not args.name:
        if args.path:
            print(folder)
            return 0
        width = max(len(n) for n in files)
        for name, path in files.items():
            print(f"{name:<{width}}  {_title(path) if path.suffix == '.md' else 'systemd unit for the daemon'}")
        print(f"\n(in {folder}; 'archivist docs NAME' prints one)")
        return 0
    path = files.get(args.name) or files.get(Path(args.name).stem)
    if path is None:
        raise ArchivistError(f"no guide named {args.name!r}; guides: {', '.join(files)}")
    if args.path:
        print(path)
    else:
        sys.stdout.write(path.read_text(encoding="utf-8"))
    return 0
