"""What a name becomes on a terminal: one line, measured in cells, the end kept (issue 26)."""

from __future__ import annotations

import os

import pytest
from rich.cells import cell_len

from archivist_tui.output import shorten, shown

CHAIN = " → medium › drunet:0.5:5"


def test_shown_is_one_printable_line_whatever_a_name_holds():
    assert shown("two\nlines\r\t.mkv") == "two\\nlines\\r\\t.mkv"
    assert shown("red\x1b[31m\x7f.mkv") == "red\\x1b[31m\\x7f.mkv"
    assert shown("rtl\u202eevil\u2028.mkv") == "rtl\\u202eevil\\u2028.mkv"  # reorders or breaks what follows
    assert shown(os.fsdecode(b"scan\xff.mkv")) == "scan\\xff.mkv"
    assert shown(os.fsdecode("café".encode())) == "café"  # a UTF-8 name, whatever the locale decoded
    assert shown("宽字符 é ●") == "宽字符 é ●"


@pytest.mark.parametrize("width", range(0, 60))
@pytest.mark.parametrize("name", ["reel_03.mkv", "x" * 200 + "-end.mkv", "宽字符的名字" * 8 + ".mkv"])
def test_shorten_fits_every_width_and_keeps_the_end(name, width):
    for keep in ("", CHAIN):
        out = shorten(name, width, keep)
        assert cell_len(out) <= max(width, 0)
        if cell_len(name + keep) <= width:
            assert out == name + keep
        elif keep and width >= cell_len(keep) + 8:
            assert out.startswith("…") and out.endswith(name[-3:] + keep)  # the file name's end and the chain
        elif not keep and width >= 4:
            assert out.startswith("…") and out.endswith(name[-2:])
