"""Any file name a POSIX file system allows, in any locale, on any terminal width (issue 26).

The file-name and locale cases run the command line in subprocesses with the environment set, as a
user's shell would: a name is bytes, and the locale decides what Python makes of them.
"""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from engine.queue import QueueClient, Store

# A C locale with Python's UTF-8 mode and locale coercion off: file names and stdout are ASCII.
C_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
UTF8_LOCALE = {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "PYTHONUTF8": "1"}


def archivist(*args: str | bytes, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``archivist ARGS`` in a child process; output kept as bytes (the test decides how to read it)."""
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "COLUMNS", "LC_ALL", "LANG")}
    full.update(env or UTF8_LOCALE)
    return subprocess.run([sys.executable, "-m", "archivist_tui.cli", *args], env=full, capture_output=True,
                          timeout=120)


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    assert b"Traceback" not in result.stderr, result.stderr.decode("utf-8", "replace")
    assert b"UnicodeEncodeError" not in result.stderr


def _png(path: bytes) -> None:
    ok, buf = cv2.imencode(".png", np.random.default_rng(1).integers(0, 255, (16, 24, 3), dtype=np.uint8))
    assert ok
    with open(path, "wb") as f:
        f.write(buf.tobytes())


@pytest.mark.slow
def test_a_name_that_is_not_utf8_is_queued_stored_and_used_exactly(queue_home, tmp_path, tiny_compact, wait_for):
    model, _ = tiny_compact
    folder = os.fsencode(tmp_path)
    src = folder + b"/scan\xff\xe9.png"  # Latin-1 bytes: not UTF-8
    out = folder + b"/restored\xff.png"
    _png(src)

    queued = archivist(b"restore", src, b"-o", out, b"-m", os.fsencode(model), b"--queue", b"--device", b"cpu")
    assert_no_traceback(queued)
    assert queued.returncode == 0, queued.stderr
    jid = int(queued.stdout.strip())
    with Store() as store:
        job = store.get(jid)
    assert os.fsencode(job.output) == out and os.fsencode(job.spec["output"]) == out
    assert os.fsencode(job.spec["input"]) == src

    # Listed in another locale: one line per job, the stray bytes escaped, exit 0.
    for env in (UTF8_LOCALE, C_LOCALE):
        listed = archivist("queue", "list", env=env)
        assert_no_traceback(listed)
        assert listed.returncode == 0
        lines = listed.stdout.splitlines()
        assert len(lines) == 2 and lines[1].startswith(f"{jid} ".encode())
        assert b"restored\\xff.png" in lines[1]

    # Run by a daemon started in the C locale: it opens and writes the very same bytes.
    started = archivist("daemon", "start", env=C_LOCALE)
    assert started.returncode == 0, started.stderr
    wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=90, what="the restore job to end")
    job = Store().get(jid)
    assert job.status == "done", job.error
    assert sorted(os.listdir(folder)) == sorted([b"scan\xff\xe9.png", b"restored\xff.png", b"tiny.safetensors"])
    assert cv2.imdecode(np.fromfile(out.decode("utf-8", "surrogateescape"), np.uint8), cv2.IMREAD_COLOR).shape == (16, 24, 3)


def test_a_utf8_name_queued_in_one_locale_reads_the_same_in_another(queue_home, tmp_path):
    out = tmp_path / "café-ß.txt"
    with QueueClient() as q:
        jid = q.submit("selftest", {"output": str(out), "steps": 1})
    shown = archivist("queue", "show", str(jid), "--json", env=C_LOCALE)
    assert shown.returncode == 0, shown.stderr
    # JSON is ASCII: the C-locale process still names the UTF-8 bytes of the file on disk.
    assert b"caf\\u00e9-\\u00df.txt" in shown.stdout


@pytest.mark.slow
@pytest.mark.parametrize("env", [C_LOCALE, {**UTF8_LOCALE, "PYTHONIOENCODING": "ascii"},
                                 {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
                                  "PYTHONIOENCODING": "latin-1"}],
                         ids=["C", "ascii-io", "latin1-io"])
def test_every_command_degrades_in_a_locale_that_cannot_show_a_name(queue_home, tmp_path, env):
    with QueueClient() as q:
        first = q.submit("selftest", {"output": str(tmp_path / "première-bobine.txt"), "steps": 1})
        q.submit("selftest", {"output": str(tmp_path / "second→reel ●.txt"), "steps": 1})
        third = q.submit("selftest", {"output": str(tmp_path / "zz-last.txt"), "steps": 1})
    for args in (["queue", "list"], ["queue", "show", str(first)], ["daemon", "status"], ["queue", "--help"]):
        result = archivist(*args, env=env)
        assert_no_traceback(result)
        assert result.returncode == 0, (args, result.stderr)
    listed = archivist("queue", "list", env=env).stdout.splitlines()
    # Every row printed, the accented letter as its plain letter, the symbols as look-alikes.
    assert len(listed) == 4 and listed[-1].startswith(f"{third} ".encode())
    assert b"premiere-bobine.txt" in listed[1] or b"premi\xe8re-bobine.txt" in listed[1]
    assert b"second>reel *.txt" in listed[2]
    shown = archivist("queue", "show", str(first), env=env).stdout
    assert b"bobine.txt" in shown and b"\\u" not in shown


def test_a_long_or_odd_name_never_hides_the_status_columns(queue_home, tmp_path):
    long_name = "reel-" + "x" * 190 + "-end.txt"
    with QueueClient() as q:
        q.submit("selftest", {"output": str(tmp_path / long_name), "steps": 1})
        q.submit("selftest", {"output": str(tmp_path / "two\nlines\x1b[31m.txt"), "steps": 1})
        q.submit("selftest", {"output": str(tmp_path / ("宽字符的名字" * 12)), "steps": 1})
    listed = archivist("queue", "list", env={**UTF8_LOCALE, "COLUMNS": "120"})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.decode("utf-8").splitlines()
    from rich.cells import cell_len

    assert len(lines) == 4  # a header and one line per job, whatever the names hold
    assert all(cell_len(line) <= 120 for line in lines), [cell_len(line) for line in lines]
    header = lines[0]
    for col in ("STATUS", "PROGRESS", "ETA", "OUTPUT"):
        assert col in header
    assert all(" queued " in line for line in lines[1:])
    assert lines[1].endswith("-end.txt") and "…" in lines[1]  # the end of the path is what is kept
    assert lines[2].endswith("two\\nlines\\x1b[31m.txt")
    assert "\x1b" not in listed.stdout.decode("utf-8")
    # A pipe with no width given gets every name whole (still one line each).
    piped = archivist("queue", "list").stdout.decode("utf-8").splitlines()
    assert len(piped) == 4 and piped[1].endswith(str(tmp_path / long_name))


@pytest.mark.parametrize("queued", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["now", "queued"])
def test_images_are_written_under_a_name_that_is_not_utf8(queue_home, tmp_path, queued, wait_for):
    """OpenCV's own file functions crash the process on such a name: the dataset writer must not use them."""
    folder = os.fsencode(tmp_path)
    src = folder + b"/clean\xff.png"
    _png(src)
    out = folder + b"/pairs\xe9\xff"
    result = archivist(b"degrade", src, b"-o", out, b"--profile", b"subtle", *([b"--queue"] if queued else []))
    assert_no_traceback(result)
    assert result.returncode == 0, (result.returncode, result.stderr)
    if queued:
        jid = int(result.stdout.strip())
        assert archivist("daemon", "start", env=C_LOCALE).returncode == 0
        wait_for(lambda: Store().get(jid).status in ("done", "failed"), timeout=90, what="the degrade job")
        assert Store().get(jid).status == "done", Store().get(jid).error
    written = [name for _, _, names in os.walk(out) for name in names if name.endswith(b".png")]
    assert len(written) == 2, written  # the damaged frame and its clean twin
