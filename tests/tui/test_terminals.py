"""The workstation on terminals that cannot show it, and in locales that cannot show its symbols (issue 26).

Real pseudo-terminals (``pty``), real child processes with the environment set as a user's shell
would set it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_on_pty(env: dict[str, str], columns: int = 100, lines: int = 30, timeout: float = 60.0):
    """``archivist`` (the bare command: the workstation) with a pty as its terminal; (exit code, output)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "archivist_tui.cli"], stdin=slave, stdout=slave, stderr=slave,
                            env=env, cwd=ROOT, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every process holding the pty has closed it
                    break
                if not chunk:
                    break
                out += chunk
        else:
            proc.kill()  # still running: it took the terminal over instead of answering
    finally:
        os.close(master)
    return proc.wait(timeout=30), out


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color", ARCHIVIST_IMAGES="none")
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.mark.parametrize(("env", "size"), [
    (_env(TERM=None), (100, 30)),
    pytest.param(_env(TERM="dumb"), (100, 30), marks=pytest.mark.slow),
    pytest.param(_env(), (0, 0), marks=pytest.mark.slow),  # what a serial console or an editor's shell reports
], ids=["no-TERM", "dumb", "zero-size"])
def test_a_terminal_that_cannot_show_the_workstation_gets_one_line(env, size):
    assert_one_line_answer(*run_on_pty(env, *size))


@pytest.mark.slow
def test_a_terminal_terminfo_knows_without_cursor_addressing_gets_one_line(tmp_path):
    """A glass teletype: known to terminfo (compiled here with tic), but it cannot place the cursor."""
    source = tmp_path / "glass.ti"
    source.write_text("glasstty|a glass teletype without cursor addressing,\n"
                      "\tam, cols#80, bel=^G, cr=\\r, cud1=\\n, ind=\\n,\n")
    compiled = tmp_path / "terminfo"
    tic = subprocess.run(["tic", "-o", str(compiled), str(source)], capture_output=True, text=True)
    if tic.returncode != 0:
        pytest.skip(f"tic cannot compile a terminfo entry here: {tic.stderr.strip()}")
    code, out = run_on_pty(_env(TERM="glasstty", TERMINFO=str(compiled)))
    assert_one_line_answer(code, out)
    assert b"TERM=glasstty cannot move the cursor" in out


def assert_one_line_answer(code: int, out: bytes) -> None:
    text = out.replace(b"\r\n", b"\n").strip()
    assert code == 1, out[-400:]
    assert b"\x1b" not in out  # not one escape code written to a terminal that cannot draw them
    assert b"\n" not in text, text
    assert text.startswith(b"archivist: error: the workstation needs a terminal ("), text
    assert text.endswith(b"for scripts use the commands: archivist --help")


@pytest.mark.slow  # over ~1 s: outside the inner loop (CI runs it)
async def test_names_never_push_the_status_columns_away_nor_break_a_row(archivist_home, tmp_path):
    """At 120×40: a 200-character name, a newline, an escape sequence, a byte that is not UTF-8 and
    wide characters all stay on their row, inside the NAME column, with the chain kept."""
    from rich.cells import cell_len
    from textual.widgets import DataTable

    from engine.queue.store import Store
    from tests.tui.conftest import cell_texts, make_app, wait_for

    names = ["reel-" + "x" * 190 + "-end.mkv", "two\nlines.mkv", "red\x1b[31m.mkv",
             os.fsdecode(b"scan\xff.mkv"), "宽字符的名字" * 6 + ".mkv"]
    with Store() as store:
        for i, name in enumerate(names):  # (two jobs that have not ended never write one output)
            out = str(tmp_path / f"out{i}.mkv")
            store.insert_job("restore", {"input": str(tmp_path / name), "output": out,
                                         "models": ["medium", "drunet:0.5:5"]}, output=out)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == len(names), what="the jobs listed")
        await pilot.pause()
        widths = {c.key.value: c.width for c in table.columns.values()}
        # Every column in view: widths plus one cell of padding each side, and the scrollbar.
        assert sum(w + 2 for w in widths.values()) <= 120 - 2, widths
        assert [c.label.plain for c in table.columns.values()][3:] == ["STATUS", "PROGRESS", "RATE", "ETA", "DEV"]
        rows = cell_texts(table)
        for row in rows:
            assert cell_len(row[2]) <= widths["name"], row[2]
            assert row[2].endswith(" → medium › drunet:0.5:5"), row[2]  # the chain is kept
            assert row[3] == "queued" and row[7] == "any"
            assert "\n" not in row[2] and "\x1b" not in row[2]
        assert rows[0][2].startswith("…") and "-end.mkv → medium" in rows[0][2]
        assert rows[1][2].startswith("two\\nlines.mkv") and rows[2][2].startswith("red\\x1b[31m.mkv")
        assert rows[3][2].startswith("scan\\xff.mkv")
        assert all(table.rows[key].height == 1 for key in table.rows)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.parametrize("env", [{"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},
                                 {"PYTHONIOENCODING": "ascii"}], ids=["C", "ascii-io"])
def test_the_workstation_stays_readable_in_a_locale_that_cannot_show_its_symbols(archivist_home, tmp_path, env):
    from engine.queue.store import Store
    from tests.tui.test_tmux_e2e import Tmux

    with Store() as store:
        store.insert_job("restore", {"input": str(tmp_path / "première ●.mkv"), "output": str(tmp_path / "o.mkv"),
                                     "models": ["medium"]}, output=str(tmp_path / "o.mkv"))
    tmux = Tmux(tmp_path, archivist_home)
    try:
        tmux.start(f"{sys.executable} -m archivist_tui.cli", **env)
        screen = tmux.wait_for("1 Queue")
        # The row as laid out for the final size (under load the first layout may use an earlier one).
        screen = tmux.wait_for("premiere *.mkv > medium")
        assert "\\u" not in screen and "\\x" not in screen, screen  # no escaped characters
        header = next(line for line in screen.splitlines() if "1 Queue" in line)
        assert "daemon * down" in header, header  # the status dot as its look-alike
        row = next(line for line in screen.splitlines() if "queued" in line)
        assert "premiere *.mkv > medium" in row, row
        # Aligned: the row's STATUS starts where the header's does.
        head = next(line for line in screen.splitlines() if "STATUS" in line)
        assert row.index("queued") == head.index("STATUS"), (head, row)
        tmux.keys("q")
        tmux.wait_gone()
    finally:
        tmux.kill()
