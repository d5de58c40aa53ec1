"""Shared fixtures: a private ARCHIVIST_HOME, tiny real model files, small real images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

ROOT = Path(__file__).resolve().parents[1]
TEST_KINDS_MODULE = "tests.queue.kinds_for_tests"


@pytest.fixture(autouse=True)
def archivist_home(tmp_path_factory, monkeypatch):
    """Every test gets its own state directory."""
    home = tmp_path_factory.mktemp("archivist-home")
    monkeypatch.setenv("ARCHIVIST_HOME", str(home))
    return home


@pytest.fixture
def kinds_for_tests(monkeypatch):
    """The test-only job kinds (``selftest``, ``gated``) for this process, the daemon and its workers.

    They travel by environment (``ARCHIVIST_TEST_KINDS``), so every process started from the test
    registers them; the source root goes on ``PYTHONPATH`` so those processes can import the module.
    """
    monkeypatch.setenv("ARCHIVIST_TEST_KINDS", TEST_KINDS_MODULE)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT)]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *parts]))
    return TEST_KINDS_MODULE


@pytest.fixture
def gate(tmp_path):
    """A gate folder for the test kinds: ``gate.wait_held(K)`` then ``gate.open(K)``."""
    from tests.queue.kinds_for_tests import Gate

    return Gate(tmp_path / "gate")


@pytest.fixture
def tiny_compact(tmp_path):
    """A real tiny Compact (nf 8, nc 2, scale 1) saved as .safetensors, with its network."""
    import torch

    from engine.models import compact
    from engine.models.files import save_safetensors

    torch.manual_seed(0)
    spec = compact.spec_for(8, 2, 1)
    net = compact.build(spec).eval()
    path = tmp_path / "tiny.safetensors"
    save_safetensors(path, net.state_dict(), spec, role="custom")
    return path, net


@pytest.fixture
def tiny_drunet(tmp_path):
    import torch

    from engine.models import drunet
    from engine.models.files import save_safetensors

    torch.manual_seed(1)
    spec = drunet.spec_for((8, 16, 32, 64), nb=1)
    net = drunet.build(spec).eval()
    path = tmp_path / "tinydrunet.safetensors"
    save_safetensors(path, net.state_dict(), spec, role="denoise")
    return path, net


@pytest.fixture
def rgb_image():
    """A 48×64 RGB float image with edges and gradients."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64].astype(np.float32)
    img = np.stack([x / 63, y / 47, ((x // 8 + y // 8) % 2).astype(np.float32)], axis=-1)
    return np.clip(img * 0.8 + 0.1 + rng.normal(0, 0.02, img.shape).astype(np.float32), 0, 1)


def write_overflowing_compact(path: Path) -> Path:
    """A tiny Compact whose weights are finite but overflow float32 on real input (every conv weight
    ×1e15): a model file that loads, and a run that fails on its first batch."""
    import torch

    from engine.models import compact
    from engine.models.files import save_safetensors

    torch.manual_seed(0)
    net = compact.build(compact.spec_for(8, 2, 1)).eval()
    with torch.no_grad():
        for name, param in net.named_parameters():
            if name.endswith(".weight") and param.dim() == 4:
                param.mul_(1e15)
    save_safetensors(path, net.state_dict(), compact.spec_for(8, 2, 1))
    return path
