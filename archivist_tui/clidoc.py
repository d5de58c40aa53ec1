"""Generate docs/cli.md from the argparse tree, so the reference cannot drift from the code.

``python -m archivist_tui.clidoc > docs/cli.md``; a test checks the committed file is current.
"""

from __future__ import annotations

import argparse
import os


def _walk(parser: argparse.ArgumentParser, path: list[str]):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _walk(child, path + [name])


def render() -> str:
    """The whole CLI reference as Markdown."""
    from archivist_tui.cli import build_parser

    # argparse wraps help to $COLUMNS: a fixed width makes the reference the same everywhere. Put
    # back afterwards: a process that renders it (the test suite) must not pass 100 columns on to
    # every terminal program it starts (shutil.get_terminal_size believes $COLUMNS first).
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        parser = build_parser()
        out = [
            "# Command-line reference",
            "",
            "Generated from the parser by `python -m archivist_tui.clidoc`; do not edit by hand.",
            "",
        ]
        for path, p in _walk(parser, ["archivist"]):
            title = " ".join(path)
            out += [f"## `{title}`", "", "```text", p.format_help().rstrip(), "```", ""]
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
