"""``archivist profiles``: list, show, validate, preview and create degradation profiles."""

from __future__ import annotations

import argparse

from archivist_tui.commands._common import add_json_option, int_arg


def register(subparsers) -> None:
    parser = subparsers.add_parser("profiles", help="degradation profiles and mixes: list, show, validate, preview, new",
                                   description="Degradation profiles and mixes (shipped and yours).")
    sub = parser.add_subparsers(dest="profiles_command", metavar="ACTION", parser_class=type(parser))

    p = sub.add_parser("list", help="every profile and mix")
    add_json_option(p)
    p.set_defaults(func=_list)

    p = sub.add_parser("show", help="every effect of a profile: on/off, probability, ranges")
    p.add_argument("name", metavar="NAME", help="profile or mix name, or a YAML path")
    add_json_option(p)
    p.set_defaults(func=_show)

    p = sub.add_parser("validate", help="check a profile or mix file")
    p.add_argument("path", metavar="PATH")
    p.set_defaults(func=_validate)

    p = sub.add_parser("preview", help="age one frame with a profile: write the clean and the damaged picture",
                       description="Degrade one frame (an image, or the built-in sample frame) with PROFILE at "
                       "SEED, write the clean and the damaged picture, and print what the degrader drew.")
    p.add_argument("name", metavar="PROFILE", help="profile or mix name, or a YAML path")
    p.add_argument("--clean", required=True, metavar="OUT.png", help="the frame before damage")
    p.add_argument("--damaged", required=True, metavar="OUT.png", help="the frame after damage")
    p.add_argument("--seed", type=int_arg("--seed", 0, 2**63 - 1), default=1234, metavar="N",
                   help="the seed of the damage drawn (default 1234)")
    p.add_argument("--frame", default=None, metavar="IMAGE",
                   help="the frame to age (default: the built-in sample frame, a drawn cel frame)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT files that exist (by default refused)")
    add_json_option(p)
    p.set_defaults(func=_preview)

    p = sub.add_parser("new", help="create a user profile in ARCHIVIST_HOME/profiles/")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--from", dest="template", default="normal", metavar="NAME",
                   help="profile to start from (default normal)")
    p.set_defaults(func=_new)


def _preview(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import cv2

    from engine.degrade import degrade, load_profile
    from engine.errors import ArchivistError
    from engine.imagefiles import read_image, write_image
    from engine.ownership import check_absent, check_not_input, same_file

    clean, damaged = Path(args.clean), Path(args.damaged)
    # Everything checked before anything is written: suffixes, folders, the input, existing files.
    for flag, out in (("--clean", clean), ("--damaged", damaged)):
        if out.suffix.lower() != ".png":
            raise ArchivistError(f"{flag} {out}: must end in .png")
        if not out.parent.is_dir():
            raise ArchivistError(f"{flag} {out}: folder {out.parent} does not exist")
        check_not_input(out, [args.frame] if args.frame else [])
        check_absent(out, args.overwrite)
    if clean.absolute() == damaged.absolute() or (clean.exists() and same_file(clean, damaged)):
        raise ArchivistError(f"--clean and --damaged are the same file ({clean}): give two paths")
    profile = load_profile(args.name)
    if args.frame:
        img = read_image(Path(args.frame), cv2.IMREAD_COLOR)
        if img is None:
            raise ArchivistError(f"{args.frame}: not a readable image")
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        from engine.synth.cel import cel_frame
        from engine.video.preview import SAMPLE_SEED

        img = cel_frame(SAMPLE_SEED, 256, 192)
    lq, record = degrade(img, profile, args.seed)
    from engine.atomic import atomic_write

    for out, rgb in ((clean, img), (damaged, lq)):
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)

        def encode(tmp: Path, out: Path = out, bgr=bgr) -> None:
            if not write_image(tmp, bgr, suffix=".png"):  # (the temporary name has no suffix)
                raise ArchivistError(f"{out}: cannot be written")

        atomic_write(out, encode)
    if args.json:
        print(json.dumps(record, default=str))
        return 0
    print(f"clean:   {clean}\ndamaged: {damaged}")
    for key, value in record.items() if isinstance(record, dict) else ():
        print(f"  {key}: {value}")
    return 0


def _list(args: argparse.Namespace) -> int:
    import sys

    from archivist_tui.output import print_json, print_table
    from engine.degrade.library import check_user_names, list_entries, load_file
    from engine.degrade.schema import Mix
    from engine.errors import ArchivistError

    rows = []
    for entry in list_entries():
        item = {"name": entry.name, "kind": entry.kind, "origin": entry.origin, "path": str(entry.path)}
        try:
            loaded = load_file(entry.path)
            item.update(hash=loaded.hash, description=loaded.description, error=None)
            if isinstance(loaded, Mix):
                item["profiles"] = {p.name: round(w, 6) for p, w in loaded.entries}
        except ArchivistError as exc:
            item.update(hash=None, description=None, error=str(exc))
        rows.append(item)
    for warning in check_user_names():
        print(f"archivist: warning: {warning}", file=sys.stderr)
    if args.json:
        print_json(rows)
        return 0
    print_table([[r["name"], r["kind"], r["origin"], (r["hash"] or "INVALID")[:12],
                  _short(r["description"] or r["error"] or "")] for r in rows],
                ["NAME", "KIND", "ORIGIN", "HASH", "DESCRIPTION"])
    return 0


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _format_value(spec, value) -> str:
    if spec.kind == "range":
        lo, hi = value
        return f"{lo:g}" if lo == hi else f"{lo:g}..{hi:g}"
    if spec.kind == "chance":
        return f"p={value:g}"
    return "|".join(value)


def _show(args: argparse.Namespace) -> int:
    from archivist_tui.output import print_json, print_table
    from engine.degrade import load_profile
    from engine.degrade.registry import EFFECTS
    from engine.degrade.schema import Mix

    loaded = load_profile(args.name)
    if isinstance(loaded, Mix):
        doc = {"name": loaded.name, "kind": "mix", "description": loaded.description, "path": loaded.source,
               "hash": loaded.hash,
               "profiles": [{"name": p.name, "weight": w, "hash": p.hash} for p, w in loaded.entries]}
        if args.json:
            print_json(doc)
            return 0
        print(f"{loaded.name} (mix, {loaded.source})\n{loaded.description}\nhash {loaded.hash}\n")
        print_table([[p.name, f"{w:.3f}", p.hash[:12]] for p, w in loaded.entries], ["PROFILE", "WEIGHT", "HASH"])
        return 0
    if args.json:
        print_json({"kind": "profile", "path": loaded.source, "hash": loaded.hash, **loaded.to_document()})
        return 0
    ex = loaded.extreme
    print(f"{loaded.name} (profile, {loaded.source})")
    if loaded.description:
        print(loaded.description)
    print(f"hash {loaded.hash}")
    print(f"extreme: {'on' if ex.enabled else 'off'}, probability {ex.probability:g}, "
          f"strength {ex.strength[0]:g}..{ex.strength[1]:g}, cast {ex.cast[0]:g}..{ex.cast[1]:g}\n")
    rows = []
    for name, effect in EFFECTS.items():
        s = loaded.effects[name]
        params = ", ".join(f"{k} {_format_value(spec, s.values[k])}" for k, spec in effect.specs.items())
        rows.append([name, "on" if s.enabled else "off", f"{s.probability:g}", params])
    print_table(rows, ["EFFECT", "STATE", "PROB", "PARAMETERS"])
    return 0


def _validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.degrade.library import load_file
    from engine.degrade.schema import Mix
    from engine.errors import ArchivistError

    path = Path(args.path)
    if not path.is_file():
        raise ArchivistError(f"{path}: no such file")
    loaded = load_file(path)
    kind = "mix" if isinstance(loaded, Mix) else "profile"
    print(f"{path}: ok ({kind} {loaded.name}, hash {loaded.hash[:12]})")
    return 0


def _new(args: argparse.Namespace) -> int:
    from engine.degrade.library import new_profile

    path = new_profile(args.name, args.template)
    print(f"created {path}")
    return 0
