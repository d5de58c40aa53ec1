"""Fixtures for the trainer tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.train.trainkit import tiny_config, write_pairs


@pytest.fixture
def workdir(tmp_path) -> Path:
    write_pairs(tmp_path / "pairs")
    return tmp_path


@pytest.fixture
def make_config(workdir):
    """Write a tiny config with dotted-key overrides; returns its path."""

    def make(filename: str = "cfg.yaml", **overrides) -> Path:
        path = workdir / filename
        path.write_text(yaml.safe_dump(tiny_config(**overrides)))
        return path

    return make
