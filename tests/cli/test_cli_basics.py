"""The command line's conventions: help, usage errors, JSON, lazy imports, docs kept current."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archivist_tui.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("doctor", "models", "restore"):
        assert cmd in out


def test_usage_error_is_one_line_exit_2(capsys):
    assert main(["restore"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archivist: error: ")


def test_unknown_command(capsys):
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_help_does_not_import_torch_or_textual():
    code = (
        "import sys\n"
        "from archivist_tui.cli import main\n"
        "main(['--help']); main(['models', '--help']); main(['restore', '--help']); main(['degrade', '--help'])\n"
        "heavy = [m for m in ('torch', 'textual', 'av', 'cv2', 'numpy') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_cli_reference_is_current():
    from archivist_tui.clidoc import render

    committed = (ROOT / "docs" / "cli.md").read_text()
    before = os.environ.get("COLUMNS")
    assert committed == render(), "docs/cli.md is stale: python -m archivist_tui.clidoc > docs/cli.md"
    assert os.environ.get("COLUMNS") == before  # rendering leaves no width behind for later programs


def test_doctor_json(capsys):
    rc = main(["doctor", "--json"])
    checks = json.loads(capsys.readouterr().out)
    names = {c["name"] for c in checks}
    assert {"python", "torch", "ffmpeg", "encoders", "state", "models"} <= names
    assert all(c["status"] in ("ok", "warn", "fail") for c in checks)
    enc = next(c for c in checks if c["name"] == "encoders")
    assert "x264" in enc["detail"] and "FFV1" in enc["detail"]
    assert rc == (1 if any(c["status"] == "fail" for c in checks) else 0)


def test_doctor_says_which_backends_run_here(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as on a machine without TensorRT
    assert main(["doctor"]) in (0, 1)
    line = next(x for x in capsys.readouterr().out.splitlines() if " backends " in x)
    assert line.startswith("OK") and "--backend eager, compile; tensorrt needs tensorrt" in line
    assert "pip install tensorrt onnx" in line


def test_doctor_reports_loose_state_permissions(archivist_home, capsys):
    archivist_home.chmod(0o755)
    main(["doctor"])
    out = capsys.readouterr().out
    assert "WARN  state" in out and "chmod 700" in out


def test_state_directory_created_owner_only(tmp_path, monkeypatch):
    from engine.paths import archivist_home

    home = tmp_path / "new" / "home"
    monkeypatch.setenv("ARCHIVIST_HOME", str(home))
    assert archivist_home() == home
    assert (home.stat().st_mode & 0o777) == 0o700


@pytest.mark.slow
def test_engine_never_imports_faces():
    """Import hygiene: walking the engine imports no textual, rich or archivist_tui."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'archivist_tui')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_import_linter_contract():
    import shutil

    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    out = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "KEPT" in out.stdout
