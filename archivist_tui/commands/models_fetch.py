"""``archivist models fetch``: download published models from the catalog into the library."""

from __future__ import annotations

import argparse
import sys

from archivist_tui.commands._common import add_json_option
from engine.errors import ArchivistError, UsageError


def add_fetch_parser(models_subparsers) -> None:
    """Add ``fetch`` to the ``archivist models`` sub-commands."""
    q = models_subparsers.add_parser(
        "fetch", help="download a published model (or --all) into the library",
        description="Download models from the catalog (the original Archivist models and DRUNet), check their "
        "size and sha256, and import them into the library under their catalog names. An interrupted "
        "download is kept and resumed by running the same command again. $ARCHIVIST_CATALOG names "
        "another catalog file.",
    )
    q.add_argument("names", nargs="*", metavar="NAME", help="catalog name(s), see --list")
    q.add_argument("--all", action="store_true", help="fetch every catalog model not yet in the library")
    q.add_argument("--list", action="store_true", help="show the catalog and what the library holds already")
    q.add_argument("--force", action="store_true", help="download again and replace a model of the same name")
    add_json_option(q)
    q.set_defaults(func=cmd_fetch)


def cmd_fetch(args: argparse.Namespace) -> int:
    if args.list:
        if args.names or args.all:
            raise UsageError("--list takes no NAME and no --all (see 'archivist models fetch --help')")
        return _list(args)
    if args.all and args.names:
        raise UsageError("give NAME(s) or --all, not both (see 'archivist models fetch --help')")
    if not args.all and not args.names:
        raise UsageError("give a catalog NAME, --all or --list (see 'archivist models fetch --help')")

    from engine.models import fetch as fetcher
    from engine.models.catalog import find_entry, load_catalog
    from engine.models.library import Library

    library = Library()
    catalog = load_catalog()
    if args.all:
        todo = list(catalog)
    else:
        todo = [find_entry(name, catalog) for name in dict.fromkeys(args.names)]  # unknown names fail first
    failed = 0
    report = []
    for entry in todo:
        if args.all and not args.force and library.find(entry.name) is not None:
            report.append({"name": entry.name, "status": "skipped", "reason": "in the library already"})
            if not args.json:
                print(f"{entry.name}: in the library already")
            continue
        try:
            result = _fetch_one(fetcher, entry, library, args.force, quiet=args.json)
        except ArchivistError as exc:
            if len(todo) == 1 and not args.json:
                raise
            report.append({"name": entry.name, "status": "failed", "error": str(exc)})
            print(f"archivist: error: {exc}", file=sys.stderr)
            failed += 1
        else:
            report.append({"name": entry.name, "status": "fetched", "size": result.size,
                           "file_sha256": result.file_sha256, "verified": result.verified,
                           "resumed_from": result.resumed_from, "model": result.model.to_dict()})
    if args.json:
        from archivist_tui.output import print_json

        print_json(report)
    return 1 if failed else 0


def _fetch_one(fetcher, entry, library, force: bool, quiet: bool = False):
    from archivist_tui.output import Progress

    if not entry.verified:
        print(f"archivist: warning: {entry.name}: the catalog has no checksum for this model; "
              "the download cannot be verified", file=sys.stderr)
    with Progress(f"{entry.name}", unit="MB") as bar:
        result = fetcher.fetch(entry, library=library, force=force,
                               progress=lambda done, total: bar(done / 1e6, total / 1e6 if total else None))
    if not quiet:
        model = result.model
        resumed = f", resumed at byte {result.resumed_from}" if result.resumed_from else ""
        check = "sha256 verified" if result.verified else f"sha256 {result.file_sha256} NOT verified"
        print(f"fetched {entry.name}: {model.arch} {model.size_label}, {model.params} parameters, "
              f"role {model.role} ({result.size} bytes{resumed}, {check})")
    return result


def _list(args: argparse.Namespace) -> int:
    from archivist_tui.output import print_json, print_table
    from engine.models.fetch import catalog_status

    rows = catalog_status()
    if args.json:
        print_json(rows)
        return 0

    def state(r: dict) -> str:
        if r["installed"]:
            return "yes" if r["installed_source"] == r["url"] else "name taken (other source)"
        if r["partial_bytes"]:
            return f"partial ({r['partial_bytes']} bytes, fetch resumes)"
        return "no"

    table = [
        (r["name"], r["role"], r["arch"], f"{r['bytes'] / 1e6:.2f} MB" if r["bytes"] else "?",
         "yes" if r["verified"] else "NO (no checksum)", state(r))
        for r in rows
    ]
    print_table(table, ("NAME", "ROLE", "ARCH", "SIZE", "VERIFIED", "IN LIBRARY"))
    return 0
