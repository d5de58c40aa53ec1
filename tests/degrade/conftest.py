"""Fixtures for the degrader tests: a temporary ARCHIVIST_HOME and the in-process CLI."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Every test gets its own state directory."""
    path = tmp_path / "home"
    monkeypatch.setenv("ARCHIVIST_HOME", str(path))
    return path


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run ``archivist ...`` in-process; returns (rc, stdout, stderr)."""
    import archivist_tui.cli as cli_module

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = cli_module.main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    return run
