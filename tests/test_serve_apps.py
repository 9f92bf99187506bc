"""`workbench serve`: the home page lists the registered apps, a token guards every page, the
dashboard's kernel is preheated and still reads the visitor's request. Real Voila, real Chromium."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
import nbformat
import pytest
from click.testing import CliRunner
from playwright.sync_api import Page, expect

from conftest import free_port
from workbench import apps as registry
from workbench.apps import APPS, App, available
from workbench.errors import InputError
from workbench.serve import (
    check_header_name,
    check_preheat,
    is_loopback,
    kernel_pools,
    registry_template,
    resolve_token,
    stop_process,
    voila_command,
    wait_for_port,
)
from workbench.tenant import ensure

RENDER = 60_000  # ms
HEADER = "X-Forwarded-User"
POOL_FILLED = r"Kernel pool of Dashboard\.ipynb is filled with 1 kernel"
SHOWN = ["Threat dashboard", "Threat Explorer", "Tenant overview"]  # registry order, only those present


def write_notebook(path: Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


def kernel_pids(server_pid: int) -> set[int]:
    """Kernels (ipykernel processes) whose parent is the Voila process."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == server_pid and b"ipykernel" in cmdline:
            found.add(int(entry.name))
    return found


def get(base: str, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    """One GET without following redirects; the body is read."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    resp.body = resp.read().decode("utf-8", "replace")  # type: ignore[attr-defined]
    conn.close()
    return resp


class Server:
    def __init__(self, proc: subprocess.Popen, base: str, token: str, log: Path):
        self.proc, self.base, self.token, self.log = proc, base, token, log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, pattern: str, times: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(re.findall(pattern, self.log_text())) >= times:
                return
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} not {times} time(s) in the Voila log within {timeout} s")

    def kernels(self) -> set[int]:
        return kernel_pids(self.proc.pid)

    def auth(self, **headers: str) -> dict[str, str]:
        return {"Authorization": f"token {self.token}", **headers}


@pytest.fixture(scope="module")
def apps_folder(tmp_path_factory) -> Path:
    """Three registered apps (dashboard, explorer, overview) and one notebook that is not an app."""
    folder = tmp_path_factory.mktemp("apps")
    write_notebook(
        folder / "Dashboard.ipynb",
        "import os\nfrom voila.utils import wait_for_request\npreheat = os.environ.get('VOILA_PREHEAT')",
        "wait_for_request()\n"
        "print('PREHEAT=' + str(preheat))\n"
        "print('QS=' + os.environ.get('QUERY_STRING', '<none>'))\n"
        "print('USER=' + os.environ.get('HTTP_X_FORWARDED_USER', '<none>'))",
    )
    write_notebook(folder / "Explorer.ipynb", "import os\nprint('explorer-app-ready QS=' + os.environ.get('QUERY_STRING', ''))")
    write_notebook(folder / "Overview.ipynb", "print('overview-app-ready')")
    write_notebook(folder / "Scratch.ipynb", "print('scratch')")
    return folder


@pytest.fixture(scope="module")
def server(apps_folder, tmp_path_factory, request) -> Iterator[Server]:
    """One Voila for the module: token, a preheated dashboard, the trusted header."""
    home = tmp_path_factory.mktemp("serve-home")
    tenant = ensure("t", base=home)
    port, token = free_port(), secrets.token_urlsafe(16)
    log = home / "voila.log"
    cmd = voila_command(tenant, port=port, host="127.0.0.1", notebook=apps_folder, token=token, preheat=1,
                        trusted_header=HEADER, config_dir=home / "voila-config")
    failed_before = request.session.testsfailed
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, proc, timeout=90)
        srv = Server(proc, f"http://127.0.0.1:{port}/", token, log)
        srv.wait_for_log(POOL_FILLED)
        yield srv
    finally:
        stop_process(proc, timeout=20)
        if request.session.testsfailed > failed_before:
            print(f"----- voila log (exit {proc.returncode}) -----\n{log.read_text(errors='replace')[-20000:]}")


# --------------------------------------------------------------------------- registry, no server


def test_registry_order_and_titles():
    assert [a.key for a in APPS if not a.key.startswith("playbook_")] == [
        "dashboard", "explorer", "incidents", "action_center", "simulator", "threat_intel", "investigations", "overview",
        "audit"]
    assert all(a.notebook == f"playbooks/{a.key.removeprefix('playbook_')}.ipynb"
               for a in APPS if a.key.startswith("playbook_"))  # after the apps (tests/test_playbook_app.py)
    assert len({a.notebook for a in APPS}) == len(APPS)
    assert registry.by_key("dashboard").title == "Threat dashboard"
    assert registry.by_key("explorer").title == "Threat Explorer"
    assert registry.by_key("overview").title == "Tenant overview"
    assert [a.key for a in APPS if a.preheat] == ["dashboard"]
    assert all(a.description and "\n" not in a.description for a in APPS)


def test_available_keeps_existing_registered_notebooks_in_order(tmp_path):
    assert available(tmp_path) == ()
    for name in ("Overview.ipynb", "Scratch.ipynb", "Explorer.ipynb"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "Incidents.ipynb").mkdir()  # a folder is not an app
    assert [a.key for a in available(tmp_path)] == ["explorer", "overview"]
    (tmp_path / "Dashboard.ipynb").write_text("{}")
    assert [a.key for a in available(str(tmp_path))] == ["dashboard", "explorer", "overview"]


def test_kernel_pools_preheat_only_the_dashboard(tmp_path):
    (tmp_path / "Explorer.ipynb").write_text("{}")
    assert kernel_pools(tmp_path, 1) == {}  # no dashboard: preheat stays off
    (tmp_path / "Dashboard.ipynb").write_text("{}")
    assert kernel_pools(tmp_path, 2) == {"default": {"pool_size": 0}, "Dashboard.ipynb": {"pool_size": 2}}
    assert kernel_pools(tmp_path, 0) == {}
    assert kernel_pools(tmp_path / "Dashboard.ipynb", 1) == {}  # a single notebook is not a folder of apps


def _render_home(folder: Path, names: list[str]) -> str:
    """tree.html as Voila renders it (autoescape on), over a folder listing of *names*."""
    voila_templates = Path(sys.prefix) / "share" / "jupyter" / "voila" / "templates"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(folder), str(voila_templates / "base")]),
                             autoescape=True, extensions=["jinja2.ext.i18n"])
    env.install_null_translations()
    listing = [{"type": "notebook", "name": n, "path": n} for n in names]
    return env.get_template("tree.html").render(contents={"content": iter(listing)}, base_url="/", resources=None)


def test_home_template_escapes_every_registry_string(tmp_path, monkeypatch):
    src = Path(registry.__file__).parent / "voila_template"
    shutil.copy(src / "tree.html.j2", tmp_path / "tree.html")
    shutil.copy(src / "page.html.j2", tmp_path / "page.html")
    hostile = App("x\"><b>", "<script>window.__x=1</script> {{ 7*7 }}", "Evil <i>.ipynb",
                  "{% raw %}</p><img src=x onerror=alert(1)> & \"quotes\" \u00e9\u2603")
    monkeypatch.setattr("workbench.serve.APPS", (hostile, *APPS))
    (tmp_path / "workbench-apps.j2").write_text(registry_template())
    page = _render_home(tmp_path, ["Evil <i>.ipynb", "Explorer.ipynb", "Scratch.ipynb"])
    assert "<script>window" not in page and "&lt;script&gt;window.__x=1&lt;/script&gt; {{ 7*7 }}" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt; &amp; &#34;quotes&#34; \u00e9\u2603" in page
    assert "{% raw %}" in page
    assert 'href="/voila/render/Evil%20%3Ci%3E.ipynb"' in page and 'data-app="x&#34;&gt;&lt;b&gt;"' in page
    assert "Threat Explorer" in page and "Scratch" not in page


def test_no_token_only_on_loopback():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert is_loopback(host) and resolve_token(host, None, no_token=True) is None
    for host in ("0.0.0.0", "", "::", "10.0.0.5", "workbench.example"):
        assert not is_loopback(host)
        with pytest.raises(InputError) as err:
            resolve_token(host, None, no_token=True)
        message = str(err.value)
        assert "\n" not in message and "--no-token" in message and "--host 127.0.0.1" in message


def test_token_rules():
    first, second = resolve_token("0.0.0.0", None), resolve_token("0.0.0.0", None)
    assert first != second and len(first) >= 24 and re.fullmatch(r"[A-Za-z0-9_-]+", first)
    assert resolve_token("0.0.0.0", "my-token") == "my-token"
    for bad in ("", " padded", "has space", "ctl\x07"):
        with pytest.raises(InputError, match="--token"):
            resolve_token("127.0.0.1", bad)
    with pytest.raises(InputError, match="--no-token contradicts --token"):
        resolve_token("127.0.0.1", "x", no_token=True)
    assert check_header_name(HEADER) == HEADER
    for bad in ("X Forwarded", "X-User:", ""):
        with pytest.raises(InputError, match="--trusted-header"):
            check_header_name(bad)
    assert check_preheat(0) == 0
    with pytest.raises(InputError, match="--preheat must be between 0 and"):
        check_preheat(-1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--no-token", "--host", "0.0.0.0"], "--no-token is only allowed on a loopback address"),
        (["--preheat", "-1"], "--preheat must be between 0 and"),
        (["--trusted-header", "X User"], "is not an HTTP header name"),
    ],
)
def test_cli_bad_access_flags_are_one_line(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "workbench.cli", "serve", "--home", str(tmp_path), *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_cli_passes_token_from_environment(tmp_path, monkeypatch):
    from workbench.cli import main

    seen = {}
    monkeypatch.setattr("workbench.tenant.open_tenant", lambda name, base=None: name)
    monkeypatch.setattr("workbench.serve.serve", lambda tenant, **kw: seen.update(kw, tenant=tenant))
    result = CliRunner().invoke(main, ["serve", "--tenant", "demo", "--trusted-header", HEADER, "--preheat", "2"],
                                env={"WORKBENCH_TOKEN": "from-env"})
    assert result.exit_code == 0, result.output
    assert seen == {"tenant": "demo", "port": 8866, "host": "127.0.0.1", "token": "from-env", "no_token": False,
                    "trusted_header": HEADER, "preheat": 2, "open_browser": False}


def test_token_reaches_voila_in_a_private_file_not_the_command_line(tmp_path):
    tenant = ensure("t", base=tmp_path)
    cmd = voila_command(tenant, port=1, host="127.0.0.1", notebook=tmp_path, token="s3cret-value",
                        config_dir=tmp_path / "cfg")
    assert not any("s3cret-value" in part for part in cmd)
    config = tmp_path / "cfg" / "voila.json"
    assert "s3cret-value" in config.read_text() and config.stat().st_mode & 0o077 == 0
    assert f"--Voila.config_file_paths={tmp_path / 'cfg'}" in cmd
    assert "allow_remote_access" not in config.read_text()
    voila_command(tenant, port=1, host="127.0.0.1", notebook=tmp_path, config_dir=tmp_path / "open")
    # without a token the Host header must be local (no DNS rebinding onto the open server)
    assert json.loads((tmp_path / "open" / "voila.json").read_text())["Voila"] == {
        "tornado_settings": {"allow_remote_access": False}}


# --------------------------------------------------------------------------- one real server


@pytest.mark.slow
@pytest.mark.browser
def test_home_lists_available_apps_offline_and_starts_no_kernel(page: Page, network_log, server):
    before = server.kernels()
    assert before, "the dashboard's kernel is started with the server"
    page.goto(server.base + "?token=" + server.token)
    links = page.locator(".wb-app a")
    expect(links).to_have_text(SHOWN)
    expect(page.locator(".wb-app p").first).to_contain_text("What was stopped")
    assert "Scratch" not in page.content()
    assert links.nth(1).get_attribute("href") == "/voila/render/Explorer.ipynb"
    page.wait_for_load_state("networkidle")
    network_log.assert_only_loopback()
    time.sleep(1)
    assert server.kernels() == before, "visiting the home page started a kernel"


@pytest.mark.slow
@pytest.mark.browser
def test_home_link_opens_the_app_with_the_login_cookie(page: Page, network_log, server):
    page.goto(server.base + "?token=" + server.token)
    page.get_by_role("link", name="Threat Explorer").click()
    expect(page.get_by_text("explorer-app-ready QS=")).to_be_visible(timeout=RENDER)
    assert urlsplit(page.url).path == "/voila/render/Explorer.ipynb" and "token" not in page.url
    page.wait_for_load_state("networkidle")
    network_log.assert_only_loopback()
    assert any(url.endswith("/fontawesome/css/all.min.css") for url in network_log), "offline template not used"
    assert "for Explorer.ipynb" not in server.log_text(), "only the dashboard is preheated"


@pytest.mark.slow
@pytest.mark.browser
def test_without_token_the_login_page_shows_offline(page: Page, network_log, server):
    page.goto(server.base + "voila/render/Explorer.ipynb")
    expect(page.locator("#password_input")).to_be_visible(timeout=30_000)
    assert urlsplit(page.url).path == "/login"
    page.wait_for_load_state("networkidle")
    network_log.assert_only_loopback()


@pytest.mark.slow
def test_requests_without_the_token_are_refused(server):
    before = server.kernels()
    for path in ("/", "/voila/render/Explorer.ipynb", "/voila/render/Dashboard.ipynb", "/voila/tree"):
        for headers in ({}, {"Authorization": "token wrong"}):
            resp = get(server.base, path, headers)
            assert resp.status == 302 and resp.getheader("Location").startswith("/login?next="), (path, resp.status)
        assert get(server.base, path + "?token=wrong").status == 302
    assert get(server.base, "/voila/api/contents/").status == 403
    assert server.kernels() == before, "an unauthenticated request started a kernel"
    ok = get(server.base, "/?token=" + server.token)
    assert ok.status == 200 and "Threat Explorer" in ok.body
    assert "username-127-0-0-1-" in (ok.getheader("Set-Cookie") or ""), "no login cookie"
    assert get(server.base, "/", server.auth()).status == 200


@pytest.mark.slow
def test_preheated_dashboard_reads_the_request_after_wait_for_request(server):
    resp = get(server.base, "/voila/render/Dashboard.ipynb?q=hello-123&window=7d",
               server.auth(**{HEADER: "alice@contoso.test"}))
    assert resp.status == 200
    assert "PREHEAT=True" in resp.body, "the dashboard did not get the preheated kernel"
    assert "QS=q=hello-123&amp;window=7d" in resp.body
    assert "USER=alice@contoso.test" in resp.body
    assert re.search(r"Using pre-heated kernel: \S+ for Dashboard\.ipynb", server.log_text())
    other = get(server.base, "/voila/render/Explorer.ipynb?q=abc", server.auth())
    assert "explorer-app-ready QS=q=abc" in other.body
    assert "for Explorer.ipynb" not in server.log_text()
    server.wait_for_log(POOL_FILLED, times=2)  # the pool refilled: later tests see a steady kernel count


# --------------------------------------------------------------------------- the command


@pytest.mark.slow
def test_cli_serve_prints_the_login_link(tmp_path):
    ensure("t", base=tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_TOKEN"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--home", str(tmp_path), "--tenant", "t", f"--port={port}",
         "--preheat", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        assert proc.stdout.readline().strip() == f"Workbench apps: http://127.0.0.1:{port}/"
        line = proc.stdout.readline().strip()
        match = re.fullmatch(rf"open this link to log in: http://127\.0\.0\.1:{port}/\?token=([A-Za-z0-9_-]{{24,}})", line)
        assert match, line
        base = f"http://127.0.0.1:{port}/"
        assert get(base, "/").status == 302
        home = get(base, "/?token=" + match.group(1))
        assert home.status == 200 and "Threat Explorer" in home.body and "Tenant overview" in home.body
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
