"""The project's setup files agree with each other, and every CLI command answers --help."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

import workbench
from workbench.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(specs: list[str]) -> dict[str, str]:
    pins = {}
    for spec in specs:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)\s*", spec)
        assert match, f"not an exact pin: {spec!r}"
        pins[_norm(match[1])] = match[2]
    return pins


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [s for group in project["optional-dependencies"].values() for s in group]
    return _pins(specs)


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    env_pins = _pins([s for s in pip_section if not s.startswith("-")])
    expected = pyproject_pins()
    assert env_pins == expected, {
        "only in pyproject": sorted(expected.keys() - env_pins.keys()),
        "only in environment.yml": sorted(env_pins.keys() - expected.keys()),
        "different pins": {k: (expected[k], env_pins[k]) for k in expected.keys() & env_pins.keys() if expected[k] != env_pins[k]},
    }


def test_lock_has_every_direct_pin():
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    locked = _pins([line for line in lines if line and not line.startswith((" ", "#", "-"))])
    wrong = {name: (ver, locked.get(name)) for name, ver in pyproject_pins().items() if locked.get(name) != ver}
    assert not wrong, f"requirements.lock disagrees with pyproject.toml (run `make lock`): {wrong}"


def test_ci_runs_make_test():
    script = ROOT / ".ci" / "run"
    text = script.read_text()
    commands = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "set -euo pipefail" in commands
    assert commands[-1] == "make test"
    assert script.stat().st_mode & 0o111, ".ci/run must be executable"


def test_makefile_has_user_targets():
    text = (ROOT / "Makefile").read_text()
    for target in ("demo", "test", "env", "bench", "clean"):
        assert re.search(rf"^{target}:", text, re.M), f"Makefile lacks target {target!r}"


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_test_runs_pytest_dry_run():
    out = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "-m pytest" in out


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, cmd in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))


@pytest.mark.parametrize("path", [(), *_commands(main)], ids=lambda p: " ".join(p) or "workbench")
def test_every_command_has_help(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_version():
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"workbench, version {workbench.__version__}"
