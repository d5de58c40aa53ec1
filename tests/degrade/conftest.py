"""Fixtures for the degrader tests: a temporary ARCHIVIST_HOME and the in-process CLI."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Every test gets its own state directory."""
    path = tmp_path / "home"
    monkeypatch.setenv("ARCHIVIST_HOME", str(path))
    return path


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run ``archivist ...`` in-process; returns (rc, stdout, stderr).

    Only the command modules present in this tree are registered (others arrive on other branches).
    """
    import archivist_tui.cli as cli_module

    present = tuple(m for m in cli_module.COMMAND_MODULES
                    if importlib.util.find_spec(f"archivist_tui.commands.{m}") is not None)
    monkeypatch.setattr(cli_module, "COMMAND_MODULES", present)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = cli_module.main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    return run
