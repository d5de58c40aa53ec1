"""``archivist models``: the model library (list, info, import, export, rename, role, interpolate, remove, speed, fetch)."""

from __future__ import annotations

import argparse

from archivist_tui.commands._common import add_device_options, add_json_option, float_arg, int_arg
from engine.models.library import ROLES


def register(sub) -> None:
    p = sub.add_parser("models", help="manage the model library",
                       description="The model library in ARCHIVIST_HOME/models plus the built-in models.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")

    q = msub.add_parser("list", help="list the models")
    add_json_option(q)
    q.set_defaults(func=cmd_list)

    q = msub.add_parser("info", help="everything known about one model")
    q.add_argument("name", metavar="NAME")
    add_json_option(q)
    q.set_defaults(func=cmd_info)

    q = msub.add_parser("import", help="add a model file (.pth/.ckpt/.safetensors) to the library")
    q.add_argument("path", metavar="PATH")
    q.add_argument("--name", help="library name (default: the file name)")
    q.add_argument("--role", choices=ROLES, help="what the model is for (default custom; denoise for DRUNet)")
    q.add_argument("--force", action="store_true", help="replace a model of the same name")
    q.add_argument("--act", choices=("prelu", "relu", "leakyrelu"),
                   help="a Compact's activation, for files that do not say it (ReLU and LeakyReLU leave no weights)")
    q.add_argument("--scale", type=int_arg("--scale", 1, 16), metavar="N",
                   help="a Compact's scale, where its weights fit more than one (channels, scale) pair")
    q.add_argument("--out-channels", type=int, choices=(1, 3, 4), metavar="C",
                   help="a Compact's output channels (1, 3 or 4), where its weights fit more than one pair")
    q.set_defaults(func=cmd_import)

    q = msub.add_parser("export", help="write a model as .pth (Real-ESRGAN layout), .safetensors or ONNX")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--format", required=True, choices=("pth", "safetensors", "onnx"))
    q.add_argument("-o", "--output", required=True, metavar="OUT", help="output file or folder")
    q.add_argument("--overwrite", action="store_true",
                   help="replace an output file that exists (by default refused); replaced only once the new file "
                   "is written and checked")
    q.set_defaults(func=cmd_export)

    q = msub.add_parser("rename", help="rename a model")
    q.add_argument("old", metavar="OLD")
    q.add_argument("new", metavar="NEW")
    q.set_defaults(func=cmd_rename)

    q = msub.add_parser("role", help="set a model's role")
    q.add_argument("name", metavar="NAME")
    q.add_argument("role", metavar="ROLE", choices=ROLES)
    q.set_defaults(func=cmd_role)

    q = msub.add_parser("interpolate", help="blend two models of the same network into a new one",
                        description="Write a new model whose every weight is (1 - W) x A + W x B (network "
                        "interpolation). It trades what B learned against what A keeps, with no training: "
                        "meaningful when B was fine-tuned from A (or both from one parent).")
    q.add_argument("a", metavar="A", help="the first model (weight 0 gives A itself)")
    q.add_argument("b", metavar="B", help="the second model (weight 1 gives B itself)")
    q.add_argument("--weight", required=True, type=float_arg("--weight", 0.0, 1.0), metavar="W",
                   help="the share of B, from 0 to 1")
    q.add_argument("--name", required=True, help="library name of the new model")
    q.add_argument("--role", choices=ROLES, help="what the new model is for (default: B's role)")
    q.add_argument("--force", action="store_true", help="replace a model of the same name")
    q.set_defaults(func=cmd_interpolate)

    q = msub.add_parser("remove", help="delete a model from the library")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=cmd_remove)

    q = msub.add_parser("speed", help="frames per second of a chain on this machine",
                        description="Run the chain given by -m over noise frames of SIZE×SIZE for about "
                        "SECONDS (after one warm-up frame) and print its speed.")
    q.add_argument("-m", "--model", action="append", required=True, metavar="MODEL",
                   help="MODEL[:strength[:sigma]]; repeat to chain")
    q.add_argument("--size", type=int_arg("--size", 8, 16384), default=128, metavar="N",
                   help="frame width and height in pixels (default 128)")
    q.add_argument("--seconds", type=float_arg("--seconds", 0.0, 3600.0), default=1.0, metavar="S",
                   help="how long to measure (default 1)")
    add_device_options(q)
    add_json_option(q)
    q.set_defaults(func=cmd_speed)

    try:
        from archivist_tui.commands.models_fetch import add_fetch_parser
    except ImportError:  # fetch arrives in its own module
        pass
    else:
        add_fetch_parser(msub)


def cmd_speed(args: argparse.Namespace) -> int:
    from engine.inference.chain import Chain, parse_stage

    chain = Chain.load([parse_stage(m) for m in args.model], device=args.device, precision=args.precision)
    doc = chain.speed(args.size, args.seconds)
    if args.json:
        from archivist_tui.output import print_json

        print_json(doc)
        return 0
    print(f"{doc['chain']}: {doc['fps']:.1f} fps at {doc['size']}×{doc['size']} on {doc['device']} "
          f"({doc['frames']} frames)")
    return 0


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.0f} k" if n >= 1e3 else str(n)


def cmd_list(args: argparse.Namespace) -> int:
    from archivist_tui.output import print_json, print_table
    from engine.models.library import Library

    entries = Library().list()
    if args.json:
        print_json([e.to_dict() for e in entries])
        return 0
    if not entries:
        print("no models yet: archivist models import PATH, or archivist models fetch --list")
        return 0
    rows = [
        (e.name + (" (built-in)" if e.builtin else ""), e.arch, e.size_label, e.role, _fmt_params(e.params),
         e.iterations if e.iterations is not None else "-", e.sha256[:12])
        for e in entries
    ]
    print_table(rows, ("NAME", "ARCH", "SIZE", "ROLE", "PARAMS", "ITERS", "SHA256"))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from archivist_tui.output import print_json
    from engine.models.library import Library

    entry = Library().get(args.name)
    info = entry.to_dict()
    info["metadata"] = entry.metadata
    if args.json:
        print_json(info)
        return 0
    for key in ("name", "arch", "role", "num_feat", "num_conv", "scale", "in_channels", "out_channels",
                "params", "iterations", "sha256", "source", "builtin", "size_bytes", "path"):
        print(f"{key:13} {info.get(key) if info.get(key) is not None else '-'}")
    pretrained = entry.metadata.get("pretrained")
    if isinstance(pretrained, dict):  # the model it was fine-tuned from
        print(f"{'pretrained':13} {pretrained.get('model')}  {str(pretrained.get('sha256') or '')[:12]}")
    parents = entry.metadata.get("interpolated")
    if isinstance(parents, dict):
        for i, part in enumerate(v for v in parents.values() if isinstance(v, dict)):
            print(f"{'interpolated' if i == 0 else '':13} {part.get('name')} x {part.get('weight')}  "
                  f"{str(part.get('sha256') or '')[:12]}")
    for i, line in enumerate(profile_lines(entry.profiles)):
        print(f"{'profiles' if i == 0 else '':13} {line}")
    return 0


def profile_lines(profiles) -> list[str]:
    """The training profiles a model records, one line each: ``mix default  f6f44f6ec102`` then
    ``  normal  0.30  30a7b33507ba`` per profile of the mix (hashes cut to 12 like the library's)."""
    if not profiles:
        return []
    if isinstance(profiles, str):
        return [profiles]
    if isinstance(profiles, list):
        return [line for p in profiles for line in profile_lines(p)]
    if not isinstance(profiles, dict):
        return [str(profiles)]
    parts = profiles.get("profiles")
    head = ("mix " if parts else "") + str(profiles.get("name") or "?")
    if profiles.get("hash"):
        head += f"  {str(profiles['hash'])[:12]}"
    lines = [head]
    if isinstance(parts, dict):
        width = max(len(str(n)) for n in parts)
        for name, info in parts.items():
            info = info if isinstance(info, dict) else {"weight": info}
            weight = info.get("weight")
            weight = f"{weight:.2f}" if isinstance(weight, (int, float)) else str(weight or "")
            lines.append(f"  {str(name):<{width}}  {weight}  {str(info.get('hash') or '')[:12]}".rstrip())
    return lines


def cmd_import(args: argparse.Namespace) -> int:
    from engine.models.library import Library
    from engine.models.spec import Hints

    hints = Hints.given("flag", act_type=args.act, scale=args.scale, out_channels=args.out_channels)
    entry = Library().import_file(args.path, name=args.name, role=args.role, force=args.force, hints=hints)
    print(f"imported {entry.name}: {entry.arch} {entry.size_label}, {entry.params} parameters, role {entry.role}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from engine.models.library import Library

    out = Library().export(args.name, args.format, args.output, overwrite=args.overwrite)
    print(out)
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    from engine.models.library import Library

    entry = Library().rename(args.old, args.new)
    print(f"renamed {args.old} -> {entry.name}")
    return 0


def cmd_role(args: argparse.Namespace) -> int:
    from engine.models.library import Library

    entry = Library().set_role(args.name, args.role)
    print(f"{entry.name}: role {entry.role}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from engine.models.library import Library

    lib = Library()
    entry = lib.interpolate(args.a, args.b, args.weight, args.name, role=args.role, force=args.force)
    weight = args.weight + 0.0  # (-0.0 is 0)
    print(f"wrote {entry.name}: {args.a} x {1 - weight:g} + {args.b} x {weight:g}, "
          f"{entry.arch} {entry.size_label}, role {entry.role}")
    if not lib.related(lib.get(args.a), lib.get(args.b)):
        print(f"note: {args.a} and {args.b} are not related (neither was fine-tuned or blended from the other, "
              "nor both from one model): networks trained apart rarely blend into a useful one; compare it before "
              "you use it")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from engine.models.library import Library

    Library().remove(args.name)
    print(f"removed {args.name}")
    return 0
