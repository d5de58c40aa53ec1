"""The ``archivist`` command line: every action of the workstation is a command here.

Each command group lives in ``archivist_tui/commands/<group>.py`` with a ``register(subparsers)``
function. Modules imported here stay cheap (no torch, no textual): handlers import the engine
lazily, so ``archivist --help`` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from engine.document import Conflict, InvalidValue
from engine.errors import ArchivistError, UsageError, os_error_line

# Order is the order of the help listing.
COMMAND_MODULES = (
    "demo",
    "doctor",
    "models",
    "restore",
    "preview",
    "profiles",
    "degrade",
    "train",
    "runs",
    "queue",
    "daemon",
    "tui",
    "docs",
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line (raised, so ``main`` decides the exit)."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> ArgumentParser:
    """The whole command tree; also used to generate docs/cli.md."""
    parser = ArgumentParser(
        prog="archivist",
        description="Archivist: restore old film and cel animation with small neural networks.",
        epilog="Run 'archivist COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("-v", "--verbose", action="store_true", help="log engine details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"archivist_tui.commands.{name}")
        module.register(sub)
    return parser


def _version() -> str:
    from engine import __version__

    return f"archivist {__version__}"


# Arguments that name a file or a folder. An empty one would silently mean the current folder
# (Path("") is "."): a script whose variable is unset would restore or write into wherever it runs.
PATH_DESTS = frozenset({"input", "inputs", "output", "work_dir", "config", "frame", "images", "path", "paths",
                        "source", "dest", "folder"})


def _empty_path(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The name of the first path argument given as an empty string (``-o/--output``, ``INPUT``), or None."""
    for dest, value in vars(args).items():
        if dest not in PATH_DESTS:
            continue
        values = value if isinstance(value, list) else [value]
        if any(v == "" for v in values):  # (a name of spaces is a name: only the empty string is none)
            return _option_name(parser, dest)
    return None


def _option_name(parser: argparse.ArgumentParser, dest: str) -> str:
    """How the command line spells the argument stored in ``dest`` (its flags, or its metavar)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                name = _option_name(child, dest)
                if name != dest:
                    return name
        elif action.dest == dest:
            return "/".join(action.option_strings) or str(action.metavar or dest)
    return dest


def _leaf_parser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The (sub-)parser of the command that ``argv`` runs (``archivist queue add`` → that of ``add``)."""
    for token in argv:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is not None and token in sub.choices:
            parser = sub.choices[token]
    return parser


def _flag_for_key(parser: argparse.ArgumentParser, key: str) -> str | None:
    """The flag that sets a document's key in this command (``tile`` → ``--tile``; a key of a section,
    ``video.crf``, by its last part), or None."""
    for name in dict.fromkeys((key, key.rsplit(".", 1)[-1])):
        for action in parser._actions:
            if action.dest == name and action.option_strings:
                return max(action.option_strings, key=len)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 failure, 2 usage error)."""
    from archivist_tui.output import guard_streams

    guard_streams()  # a name or a symbol the terminal's encoding cannot hold never ends a command
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
    except UsageError as exc:
        print(f"archivist: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    empty = _empty_path(parser, args)
    if empty is not None:  # an unset shell variable ("-o $OUT"): never "the current folder"
        print(f"archivist: error: {empty}: an empty path names no file or folder", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="archivist: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    handler = getattr(args, "func", None)
    if handler is None:
        if args.command is None:  # bare `archivist` opens the workstation
            from archivist_tui.commands import tui

            handler = tui.run
        else:  # a group such as `archivist models` with no sub-command
            return _print_group_help(parser, args.command)
    try:
        return int(handler(args) or 0)
    except InvalidValue as exc:  # the engine names the document's key; the command line names its flag
        flag = _flag_for_key(_leaf_parser(parser, args_list), exc.key) if exc.source is None else None
        print(f"archivist: error: {exc.line(flag)}", file=sys.stderr)
        return exc.exit_code
    except Conflict as exc:  # keys that do not go together: shown by the flags that set them
        leaf = _leaf_parser(parser, args_list)
        flags = [_flag_for_key(leaf, key) for key in exc.keys] if exc.source is None else None
        print(f"archivist: error: {exc.line(flags)}", file=sys.stderr)
        return exc.exit_code
    except ArchivistError as exc:
        print(f"archivist: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except OSError as exc:
        # The environment said no (a full disk, a name too long, a folder not writable): one line,
        # about the first such error when one led to another.
        print(f"archivist: error: {os_error_line(_first_os_error(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("archivist: interrupted", file=sys.stderr)
        return 130


def _first_os_error(exc: OSError) -> OSError:
    """The earliest OSError in a chain (a failure while cleaning up after a full disk names the same)."""
    seen = exc
    cause = exc.__context__
    while cause is not None:
        if isinstance(cause, OSError):
            seen = cause
        cause = cause.__context__
    return seen


def _print_group_help(parser: ArgumentParser, command: str) -> int:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            print(action.choices[command].format_help(), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
