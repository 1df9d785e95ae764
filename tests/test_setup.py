"""Set-up and packaging: `make` repairs a half-made .venv; a plain install can run the simulator."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE_PYTHON = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable


def _make(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Not the outer `make test`'s flags and level: this is a make of its own, in a copy.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(
        ["make", "-C", str(folder), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_an_interrupted_first_set_up_is_repaired_by_the_next_make(tmp_path: Path) -> None:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    venv = tmp_path / ".venv"
    # What Ctrl-C in the first second of the first `make run` leaves: a Python, but no pip.
    subprocess.run([BASE_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    broken = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False)
    assert broken.returncode != 0

    # The set-up step of `make run` / `make test`, with the package installs left out (they
    # need the package index; what is under test is the repair of the environment).
    done = _make(tmp_path, ".venv/.installed", f"PYTHON={BASE_PYTHON}", "PIP_INSTALL=true")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "interrupted set-up" in done.stdout
    pip = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False)
    assert pip.returncode == 0, pip.stderr
    assert (venv / ".installed").exists()

    # Repaired once: the next call finds everything in place.
    assert _make(tmp_path, "-q", ".venv/.installed", "PIP_INSTALL=true").returncode == 0


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_stopped_package_install_is_taken_up_again_without_a_new_venv(tmp_path: Path) -> None:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    venv = tmp_path / ".venv"
    subprocess.run([BASE_PYTHON, "-m", "venv", str(venv)], check=True)
    marker = venv / "kept"
    marker.touch()  # stopped during `pip install`: pip works, the stamp is missing
    done = _make(tmp_path, ".venv/.installed", f"PYTHON={BASE_PYTHON}", "PIP_INSTALL=true")
    assert done.returncode == 0, done.stdout + done.stderr
    assert marker.exists() and (venv / ".installed").exists()


def _base_requirements() -> set[str]:
    """Distribution names in [project].dependencies (no extras), normalised."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0] for spec in project["dependencies"]}
    return {_normal(name) for name in names}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _third_party_imports(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found if name != "bot" and name not in sys.stdlib_module_names}


def test_a_plain_install_has_everything_the_simulator_imports() -> None:
    # `pip install .` (no extras), then `yimi-bot run` without a token starts the simulator.
    distributions = importlib.metadata.packages_distributions()
    required = _base_requirements()
    imported = _third_party_imports(ROOT / "bot" / "channels" / "simulator")
    assert "aiohttp" in imported
    missing = {
        module: distributions.get(module)
        for module in imported
        if not {_normal(d) for d in distributions.get(module, [])} & required
    }
    assert missing == {}, f"imported by the simulator but not a plain dependency: {missing}"
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    aiohttp = [d for d in dependencies["project"]["dependencies"] if d.startswith("aiohttp")]
    assert aiohttp and "==" in aiohttp[0]  # pinned, like every other dependency
