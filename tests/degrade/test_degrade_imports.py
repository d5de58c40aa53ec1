"""Import hygiene: the engine knows no screen, and the commands stay cheap to import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_engine_degrade_imports_no_screen_and_no_torch():
    loaded = _modules_after("import engine.degrade, engine.degrade.dataset")
    for banned in ("archivist_tui", "textual", "rich", "torch"):
        assert banned not in loaded, banned


def test_degrade_and_profiles_commands_are_cheap_to_import():
    loaded = _modules_after("import archivist_tui.commands.degrade, archivist_tui.commands.profiles")
    for heavy in ("engine.degrade", "cv2", "av", "torch", "yaml"):
        assert heavy not in loaded, heavy
