"""`workbench demo generate` and friends from the command line: bad input, conflicts, interruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.errors import NotFound
from workbench.tenant import list_tenants, open_tenant

GENERATE = ["demo", "generate", "--users", "12", "--days", "2", "--end", "2026-11-20", "--tenant", "t"]


def run(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args, "--home", str(home)],
        capture_output=True, text=True, timeout=300,
    )


def leftovers(home: Path) -> list[str]:
    folder = home / "tenants"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--users", "0"], 2, "--users must be between 5 and"),
        (["--users", "-5"], 2, "--users must be between 5 and"),
        (["--days", "-3"], 2, "--days must be between 1 and"),
        (["--days", "0"], 2, "--days must be between 1 and"),
        (["--users", "4"], 2, "the planted stories need 5 mailboxes"),
    ],
)
def test_bad_parameters_give_one_line_and_write_nothing(tmp_path, args, code, message):
    result = run("demo", "generate", *args, home=tmp_path)
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.stderr and leftovers(tmp_path) == []


def test_unwritable_home(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run(*GENERATE, home=blocker / "sub")
    assert result.returncode == 6
    assert result.stderr.startswith("error: cannot write to") and "WORKBENCH_HOME" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_tenant(tmp_path):
    result = run("lake", "info", "--tenant", "nope", home=tmp_path)
    assert result.returncode == 3
    assert "tenant 'nope' not found" in result.stderr and "workbench demo generate --tenant nope" in result.stderr


@pytest.mark.slow
def test_existing_tenant_needs_force_and_force_replaces(tmp_path):
    first = run(*GENERATE, "--seed", "1", home=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "EmailEvents" in first.stdout and "stories planted (7)" in first.stdout
    again = run(*GENERATE, "--seed", "2", home=tmp_path)
    assert again.returncode == 4 and "already exists" in again.stderr and "--force" in again.stderr
    assert open_tenant("t", base=tmp_path).manifest()["parameters"]["seed"] == 1
    forced = run(*GENERATE, "--seed", "2", "--force", home=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert open_tenant("t", base=tmp_path).manifest()["parameters"]["seed"] == 2
    assert leftovers(tmp_path) == ["t"]
    info = run("lake", "info", "--tenant", "t", home=tmp_path)
    assert info.returncode == 0 and "EmailEvents" in info.stdout


@pytest.mark.slow
def test_interrupted_generation_leaves_no_tenant(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "demo", "generate", "--users", "150", "--days", "30",
         "--tenant", "big", "--home", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not list((tmp_path / "tenants").glob(".staging-big-*/lake")):
        time.sleep(0.1)
    time.sleep(1.0)  # let it write part of the lake
    assert proc.poll() is None, "generation finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list_tenants(tmp_path) == []
    with pytest.raises(NotFound):
        open_tenant("big", base=tmp_path)
    # The next generation sweeps the dead process's staging folder and succeeds.
    result = run(*GENERATE, home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert leftovers(tmp_path) == ["t"]
    assert json.loads((tmp_path / "tenants" / "t" / "tenant.json").read_text())["name"] == "t"
