"""pyproject.toml: the project installs with pip and its `agegender` command runs from any folder."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from core.config import PROJECT_ROOT

SOURCES = ("pyproject.toml", "README.md", "core", "dashboard")


def _pins(lines: list[str]) -> dict[str, str]:
    """name -> version of `name==version` or `name>=version` requirement lines."""
    found = (re.match(r"([A-Za-z0-9_.-]+(?:\[[a-z,]+\])?)\s*[=>]=\s*([^\s;#]+)", line.strip()) for line in lines)
    return {m[1].lower(): m[2] for m in found if m}


def test_dependencies_start_at_the_pins_of_requirements_txt():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    text = (PROJECT_ROOT / "requirements.txt").read_text()
    runtime, tests = text.split("# Tests")  # requirements.txt: runtime and dashboard first, then the tests
    assert _pins(project["dependencies"]) == _pins(runtime.splitlines())
    assert _pins(project["optional-dependencies"]["test"]) == _pins(tests.splitlines())
    scale = (PROJECT_ROOT / "requirements-scale.txt").read_text().splitlines()
    assert _pins(project["optional-dependencies"]["scale"]) == _pins(scale) != {}


def _copy_sources(folder: Path) -> None:
    """What pip needs to build the project, copied so the build leaves no build/ or egg-info here."""
    folder.mkdir()
    for name in SOURCES:
        if (PROJECT_ROOT / name).is_dir():
            shutil.copytree(PROJECT_ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(PROJECT_ROOT / name, folder / name)


def test_pip_install_gives_an_agegender_command(tmp_path):
    source, target, elsewhere = tmp_path / "source", tmp_path / "site", tmp_path / "elsewhere"
    _copy_sources(source)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, cwd=tmp_path)
    assert (target / "dashboard" / "views" / "evaluation.py").is_file()  # the pages come along
    assert (target / "core" / "detect" / "weights" / "face_detection_yunet_2023mar.tflite").is_file()  # and the detector
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, str(target / "bin" / "agegender"), "--help"], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout and "predict" in result.stdout
    failed = subprocess.run([sys.executable, str(target / "bin" / "agegender"), "evaluate", "--data", "missing"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1 and "error: no dataset at missing" in failed.stderr  # main's exit code, no traceback
