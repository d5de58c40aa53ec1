"""What a new user meets in the first hour: help texts, doctor, models info, messages, the README."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from archivist_tui.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_top_level_help_says_restore_takes_video(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    line = " ".join(out[out.index("    restore"):].split("\n    ")[0].split())
    assert "video" in line, line


def test_doctor_lists_nvenc_only_where_a_gpu_opens_it(capsys):
    from engine.doctor import NVENC, _can_encode

    usable = [n for n in NVENC if _can_encode(n)]
    main(["doctor", "--json"])
    enc = next(c for c in json.loads(capsys.readouterr().out) if c["name"] == "encoders")
    present = enc["detail"].split("present: ", 1)[1].split(" (NVENC", 1)[0]
    if usable:  # a machine with an NVIDIA GPU and driver
        assert "NVENC H.264" in present
    else:  # here: PyAV carries the encoders, but nothing can run them
        assert "NVENC" not in present and "no NVIDIA GPU" in enc["detail"]
        import av

        assert "h264_nvenc" in av.codecs_available  # the build has it: the rule is what decides


def test_models_info_prints_profiles_readably(capsys):
    assert main(["models", "info", "archivist-starter"]) == 0
    out = capsys.readouterr().out
    lines = out[out.index("profiles"):].splitlines()
    assert lines[0].split() == ["profiles", "mix", "default", lines[0].split()[-1]]
    assert [ln.split()[:2] for ln in lines[1:4]] == [["subtle", "0.10"], ["normal", "0.30"], ["heavy", "0.60"]]
    assert "{" not in out and "'" not in out


def test_a_missing_model_says_how_to_get_it(capsys):
    assert main(["models", "info", "archivist-medium"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "archivist models fetch archivist-medium" in err[0]
    assert main(["models", "info", "no-such-model"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "models: archivist-starter" in err[0]
    assert "the catalog offers" in err[0] and "archivist-medium" in err[0] and "archivist models fetch NAME" in err[0]


def test_daemon_help_points_to_a_guide_that_ships(capsys):
    assert main(["daemon", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "'archivist docs daemon'" in help_text and "docs/daemon.md" not in help_text
    assert main(["docs", "daemon"]) == 0
    assert capsys.readouterr().out == (ROOT / "docs" / "daemon.md").read_text()
    assert main(["docs", "archivist.service", "--path"]) == 0
    assert "[Unit]" in Path(capsys.readouterr().out.strip()).read_text()
    assert main(["docs", "nothing"]) == 1
    assert "no guide named 'nothing'" in capsys.readouterr().err


def test_the_guides_are_packaged_where_docs_looks(tmp_path):
    """The wheel carries docs/ as archivist_tui/docs (pyproject), and an installed copy reads them there."""
    import tomllib

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert conf["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]["docs"] == "archivist_tui/docs"
    # The installed layout, without the source tree beside it.
    shutil.copytree(ROOT / "archivist_tui", tmp_path / "archivist_tui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "engine", tmp_path / "engine", ignore=shutil.ignore_patterns("__pycache__", "builtin"))
    shutil.copytree(ROOT / "docs", tmp_path / "archivist_tui" / "docs")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "archivist_tui.cli", "docs", "daemon", "--path"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "archivist_tui" / "docs" / "daemon.md")


def test_readme_says_the_cpu_route_before_the_install_and_the_demo_time():
    readme = (ROOT / "README.md").read_text()
    setup = readme[readme.index("## Set up"):readme.index("## A short tour")]
    first_install = setup.index("\npip install .")  # the command, not the prose about it
    cpu_route = setup.index("--index-url https://download.pytorch.org/whl/cpu")
    assert cpu_route < first_install
    warning = setup[:cpu_route]
    assert "GB" in warning and "CUDA" in warning and "without a GPU" in warning.replace("\n", " ")
    demo = " ".join(setup[setup.index("`archivist demo` needs"):].split())
    assert "On a CPU it takes" in demo and "minutes" in demo
