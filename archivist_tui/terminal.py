"""Can this terminal show the workstation? Asked before Textual writes a single escape code.

A full-screen app needs a terminal on both ends (stdin and stdout), one that can move its cursor
(``TERM=dumb``, an unset ``TERM``, a hard-copy or line-only terminal cannot), and room to draw in.
Every other case gets one line that says why and points to the commands, which work anywhere.
"""

from __future__ import annotations

import os
import sys

# Below this the screens cannot show a table row with its status; 0×0 is what some consoles and
# editors' shells report.
MIN_COLUMNS, MIN_LINES = 40, 12
# TERM values that promise no screen control, whatever terminfo holds.
NO_SCREEN_TERMS = {"", "dumb", "unknown", "emacs"}


def why_no_workstation(stdin=None, stdout=None, environ=None) -> str | None:
    """Why the workstation cannot run here (a short phrase), or None when it can."""
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    environ = os.environ if environ is None else environ
    try:
        if stdin is None or stdout is None or not stdin.isatty() or not stdout.isatty():
            return "stdin and stdout must be a TTY"
        size = os.get_terminal_size(stdout.fileno())
    except (AttributeError, ValueError, OSError):
        return "stdin and stdout must be a TTY"
    term = environ.get("TERM", "")
    if term in NO_SCREEN_TERMS:
        return f"TERM={term or '(unset)'} cannot move the cursor or redraw the screen"
    if not _can_address_cursor(term):
        return f"TERM={term} cannot move the cursor (terminfo has no cursor addressing)"
    if size.columns < MIN_COLUMNS or size.lines < MIN_LINES:
        return (f"a {size.columns}×{size.lines} terminal is too small to draw it: at least "
                f"{MIN_COLUMNS}×{MIN_LINES}")
    return None


def _can_address_cursor(term: str) -> bool:
    """False only when terminfo knows ``term`` and says it is hard-copy or cannot place the cursor.

    A terminal terminfo does not know (a new emulator, a missing database) gets the benefit of the
    doubt: Textual speaks the xterm dialect that every emulator of the last decades understands.
    """
    try:
        import curses
    except ImportError:
        return True
    try:
        curses.setupterm(term, -1)  # -1: look up only, write nothing to the terminal
    except curses.error:
        return True
    return curses.tigetflag("hc") != 1 and curses.tigetstr("cup") is not None
