"""What reaches the terminal: JSON for scripts, aligned tables for people, progress on a TTY.

Whatever a name holds and whatever the terminal can show, output degrades instead of failing:

- :func:`guard_streams` (called first by every command) makes stdout and stderr replace what their
  encoding cannot hold: ``?`` (or an ASCII look-alike: ``●`` ``*``, ``…`` ``.``, box lines ``-``
  ``|`` ``+``, a letter with an accent as the letter) instead of a ``UnicodeEncodeError``; on stdout a file
  name's undecodable bytes go out as the bytes themselves (scripts get the exact name), on stderr
  as ``\xff``. The TUI puts the same net under the stream Textual draws on, keeping every
  replacement as wide as the character it stands for, so columns never shift.
- :func:`shown` makes any text one printable line (control characters escaped as ``\n``,
  ``\x1b``...; undecodable bytes as ``\xff``) and :func:`shorten` fits it to a number of terminal
  cells, keeping the end (``…/reel_03.mkv``): a name can neither break a row nor push a column away.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any

ELLIPSIS = "…"
# Characters a name may hold that would break a line or move the cursor, besides the C0/C1 controls:
# line and paragraph separators and the bidirectional overrides (they reorder what follows).
_INVISIBLE = {0x2028, 0x2029, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF}
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def shown(value: Any) -> str:
    """``value`` as one printable line: control characters escaped, undecodable name bytes as ``\xff``."""
    from engine.fsnames import readable

    text = readable(str(value))
    if text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif code in _INVISIBLE:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def cells(text: str) -> int:
    """How many terminal cells ``text`` takes (wide characters two, combining marks none)."""
    from rich.cells import cell_len

    return cell_len(text)


def _tail(text: str, width: int) -> str:
    """The end of ``text`` that fits ``width`` cells."""
    taken, out = 0, []
    for ch in reversed(text):
        w = cells(ch)
        if taken + w > width:
            break
        taken += w
        out.append(ch)
    return "".join(reversed(out))


def _head(text: str, width: int) -> str:
    """The start of ``text`` that fits ``width`` cells."""
    taken, out = 0, []
    for ch in text:
        w = cells(ch)
        if taken + w > width:
            break
        taken += w
        out.append(ch)
    return "".join(out)


def shorten(text: str, width: int, keep: str = "") -> str:
    """``text + keep`` in at most ``width`` cells: the start of ``text`` gives way to an ellipsis.

    The end of a path (the file name) is what tells one job from another; ``keep`` (a restore's
    `` → chain``) stays whole while there is room for it and a few cells of the name. Where there is
    not, the name keeps up to half the room and ``keep`` is cut at its end instead.
    """
    if cells(text) + cells(keep) <= width:
        return text + keep
    if width <= 1:
        return ELLIPSIS[:width]
    if not keep:
        return ELLIPSIS + _tail(text, width - 1)
    if cells(keep) + 8 <= width:
        return ELLIPSIS + _tail(text, width - cells(keep) - 1) + keep
    half = max(1, width // 2)
    name = text if cells(text) <= half else ELLIPSIS + _tail(text, half - 1)
    rest = width - cells(name)
    return name + (_head(keep, rest - 1) + ELLIPSIS if rest > 0 else "")


def output_width(stream=None) -> int | None:
    """The width to fit tables to: ``$COLUMNS``, else the terminal's; None for a pipe or a file."""
    stream = stream or sys.stdout
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        pass
    return None


def print_json(obj: Any) -> None:
    """One JSON document on stdout (arrays for listings, objects for show/info).

    ASCII, and the same in every locale: a file name reads as the text its bytes are in UTF-8, and
    bytes that are not UTF-8 as Python's ``\udcff`` escapes (``os.fsencode`` gives them back).
    """
    json.dump(_portable(obj), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _portable(value: Any) -> Any:
    from engine.errors import ArchivistError
    from engine.fsnames import name_bytes

    if isinstance(value, str) and not value.isascii():
        try:
            return name_bytes(value).decode("utf-8", "surrogateescape")
        except ArchivistError:  # a lone surrogate that no name's byte gives: json escapes it as it is
            return value
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_portable(v) for v in value]
    return value


FIT_MINIMUM = 12  # cells a shortened column keeps, however narrow the terminal


def print_table(rows: Iterable[Sequence[Any]], headers: Sequence[str], fit: str | None = None,
                width: int | None = None,
                give_way: Sequence[tuple[str, Callable[[str], str] | None]] = ()) -> None:
    """A plain aligned table, one line per row whatever the cells hold; empty cells print as '-'.

    ``fit`` names the column that gives way (its cells shortened from the start) so that a line
    fits ``width`` cells (default: the terminal's; a pipe gets everything). Where the other columns
    leave ``fit`` less than :data:`FIT_MINIMUM`, the steps of ``give_way`` are taken in order until
    they do: ``(name, None)`` drops that column, ``(name, narrower)`` passes its cells through
    ``narrower``.
    """
    headers = list(headers)
    rows = [["-" if c is None or c == "" else shown(c) for c in row] for row in rows]
    widths = [cells(h) for h in headers]
    for row in rows:
        widths = [max(w, cells(c)) for w, c in zip(widths, row)]
    width = output_width() if width is None else width
    if fit is not None and width is not None and fit in headers:
        steps = iter(give_way)
        while True:
            i = headers.index(fit)
            others = sum(widths) - widths[i] + 2 * (len(headers) - 1)
            if others + max(FIT_MINIMUM, cells(fit)) <= width:
                break
            step = next(steps, None)
            if step is None:
                break  # nothing more may go: the line is as short as it can be
            name, narrower = step
            if name not in headers or name == fit:
                continue
            j = headers.index(name)
            if narrower is None:
                for cols in (headers, widths, *rows):
                    del cols[j]
            else:
                for row in rows:
                    row[j] = row[j] if row[j] == "-" else narrower(row[j])
                widths[j] = max([cells(name)] + [cells(row[j]) for row in rows])
        room = max(FIT_MINIMUM, cells(headers[i]), width - others)
        if widths[i] > room:
            widths[i] = room
            for row in rows:
                row[i] = shorten(row[i], room)

    def line(cols: Sequence[str]) -> str:
        return "  ".join(c + " " * (w - cells(c)) for c, w in zip(cols, widths)).rstrip()

    print(line(headers))
    for row in rows:
        print(line(row))


# -- streams that never fail on a character -----------------------------------------------------
def _look_alike(ch: str) -> str:
    """An ASCII stand-in for ``ch`` of the same width in cells (``?`` when nothing looks like it)."""
    code = ord(ch)
    if ch in _ASCII:
        return _ASCII[ch]
    width = cells(ch)
    if width == 0:
        return ""
    name = unicodedata.name(ch, "")
    if 0x2500 <= code <= 0x257F:  # box drawing: the TUI's borders and rules
        horizontal, vertical = "HORIZONTAL" in name, "VERTICAL" in name
        return "-" if horizontal and not vertical else "|" if vertical and not horizontal else "+"
    if 0x2580 <= code <= 0x259F:  # blocks: bars, scrollbars, half-cell pictures
        return " " if code == 0x2591 else "#"
    if 0x2800 <= code <= 0x28FF:  # braille dots: the charts
        return " " if code == 0x2800 else "."
    if 0x2190 <= code <= 0x21FF:
        return ">" if "RIGHT" in name else "<" if "LEFT" in name else "^" if "UP" in name else "v"
    base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode("ascii")
    if width == 1 and len(base) == 1:  # a letter with an accent: the letter (é e, ñ n)
        return base
    return "?" * width


_ASCII = {"●": "*", "○": "o", "•": "*", "◆": "*", "▶": ">", "◀": "<", "…": ".", "›": ">", "‹": "<",
          "»": ">", "«": "<", "–": "-", "—": "-", "‒": "-", "×": "x", "✓": "v", "✔": "v", "✗": "x",
          "✕": "x", "✖": "x", "‖": "|", "■": "#", "□": "o", "·": ".", "°": "o", "±": "+", "²": "2",
          "│": "|", "─": "-", "░": ".", "▒": ":", "▓": "#", "σ": "s", "“": '"', "”": '"', "‘": "'", "’": "'"}


def _ascii_compatible(encoding: str) -> bool:
    try:
        return "a".encode(encoding) == b"a"
    except LookupError:
        return False


def _replace(exc: UnicodeError, name_bytes: str):
    """The body of the error handlers: ``name_bytes`` says what a file name's stray byte becomes
    (``raw``: itself, ``escape``: ``\xff``, ``cell``: ``?``)."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    piece = exc.object[exc.start:exc.end]
    raw = name_bytes == "raw" and _ascii_compatible(exc.encoding)
    out: list[str | bytes] = []
    for ch in piece:
        if "\udc80" <= ch <= "\udcff":
            byte = ord(ch) - 0xDC00
            out.append(bytes([byte]) if raw else f"\\x{byte:02x}" if name_bytes == "escape" else "?")
        else:
            out.append(_look_alike(ch))
    if any(isinstance(o, bytes) for o in out):
        return b"".join(o if isinstance(o, bytes) else o.encode("ascii") for o in out), exc.end
    return "".join(out), exc.end  # type: ignore[arg-type]


STDOUT_ERRORS = "archivist-stdout"
STDERR_ERRORS = "archivist-stderr"
SCREEN_ERRORS = "archivist-screen"
codecs.register_error(STDOUT_ERRORS, lambda exc: _replace(exc, "raw"))
codecs.register_error(STDERR_ERRORS, lambda exc: _replace(exc, "escape"))
codecs.register_error(SCREEN_ERRORS, lambda exc: _replace(exc, "cell"))


def guard_streams() -> None:
    """Make stdout and stderr replace what their encoding cannot show, for every command at once."""
    for stream, errors in ((sys.stdout, STDOUT_ERRORS), (sys.stderr, STDERR_ERRORS)):
        _guard(stream, errors)


def guard_screen_stream(stream) -> None:
    """The stream Textual draws on: width-keeping replacements (a column never shifts)."""
    _guard(stream, SCREEN_ERRORS)


def _guard(stream, errors: str) -> None:
    if isinstance(stream, io.TextIOWrapper):
        try:
            stream.reconfigure(errors=errors)
        except (ValueError, OSError, io.UnsupportedOperation):  # closed, or not reconfigurable
            pass


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal.

    Usable as the engine's ``progress(done, total)`` callback.
    """

    def __init__(self, label: str, unit: str = "", stream=None):
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self._last = 0.0

    def __call__(self, done: float, total: float | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and (total is None or done < total):
            return
        self._last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        if total:
            frac = min(max(done / total, 0.0), 1.0)
            bar = "█" * int(frac * 24) + "░" * (24 - int(frac * 24))
            eta = (total - done) / rate if rate > 0 else 0
            text = f"{self.label} {bar} {frac * 100:5.1f}% {done:g}/{total:g} {self.unit} " \
                   f"{rate:.2f}/s ETA {int(eta) // 60}:{int(eta) % 60:02d}"
        else:
            text = f"{self.label} {done:g} {self.unit} {rate:.2f}/s"
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
