"""Shared fixtures: Debian Chromium for Playwright, a real Voila server, a network log, a small tenant."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
CHROMIUM_MISSING = "Chromium not installed; run: apt-get install -y chromium chromium-driver"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def require_chromium() -> None:
    """Skip when Debian's Chromium is missing; under CI=true fail instead (never skip in CI)."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    pytest.skip(CHROMIUM_MISSING)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("browser"):
        require_chromium()  # before any slow fixture (servers, tenants) runs


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)  # fixtures read it to print logs on failure
    return report


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    require_chromium()
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def voila_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """Factory: ``voila_server(tenant, notebook=None) -> base URL`` of a real Voila on loopback.

    Servers are stopped by PID (SIGTERM, then kill) at teardown; their logs are printed
    when the test failed.
    """
    from workbench.serve import stop_process, voila_command, wait_for_port

    started: list[tuple[subprocess.Popen, Path]] = []

    def start(tenant, notebook: Path | None = None) -> str:
        port = free_port()
        log = tmp_path / f"voila-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                voila_command(tenant, port=port, host="127.0.0.1", notebook=notebook),
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        started.append((proc, log))
        wait_for_port("127.0.0.1", port, proc, timeout=90)
        return f"http://127.0.0.1:{port}/"

    yield start
    failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))
    for proc, log in started:
        stop_process(proc, timeout=20)
        if failed:
            print(f"----- {log.name} (exit {proc.returncode}) -----\n{log.read_text(errors='replace')[-20000:]}")


def assert_only_loopback(requests: list[str]) -> None:
    """Fail listing every request that left the machine (data:/blob:/about: are ignored)."""
    outside = [
        url for url in requests
        if urlsplit(url).scheme not in ("data", "blob", "about") and urlsplit(url).hostname not in LOOPBACK
    ]
    assert not outside, "non-loopback requests:\n  " + "\n  ".join(outside)


class NetworkLog(list):
    """Every request (and websocket) URL the page's context made, in order."""

    def assert_only_loopback(self) -> None:
        assert_only_loopback(list(self))


@pytest.fixture
def network_log(page) -> NetworkLog:
    log = NetworkLog()
    page.context.on("request", lambda req: log.append(req.url))
    page.on("websocket", lambda ws: log.append(ws.url))
    return log


@pytest.fixture(scope="session")
def small_tenant(tmp_path_factory: pytest.TempPathFactory):
    """A small generated tenant (40 users, 3 days, fixed seed and end date) in a session temp home."""
    from workbench.ingest.demo import generate
    from workbench.tenant import open_tenant

    base = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("WORKBENCH_HOME", str(base))
    generate("small", users=40, days=3, seed=11, end=date(2026, 11, 20), base=base, progress=False)
    yield open_tenant("small", base=base)
    mp.undo()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive of *members* (name -> content), for tests that build attachments."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
