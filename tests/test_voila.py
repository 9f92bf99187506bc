"""Real Voila + real Chromium: the apps render offline, and errors show no traceback."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import nbformat
import pytest
from playwright.sync_api import Page, expect

from workbench.errors import ConflictError
from workbench.serve import port_in_use, serve

pytestmark = pytest.mark.slow
RENDER_TIMEOUT = 90_000  # ms: kernel start + imports + execution


@pytest.mark.browser
def test_tree_lists_overview_offline(page: Page, network_log, voila_server, small_tenant):
    page.goto(voila_server(small_tenant))
    expect(page.get_by_text("Overview.ipynb")).to_be_visible(timeout=30_000)
    page.wait_for_load_state("networkidle")
    network_log.assert_only_loopback()


@pytest.mark.browser
def test_overview_renders_offline(page: Page, network_log, voila_server, small_tenant):
    page.goto(voila_server(small_tenant) + "voila/render/Overview.ipynb")
    expect(page.get_by_role("cell", name='"EmailEvents"', exact=True)).to_be_visible(timeout=RENDER_TIMEOUT)
    page.wait_for_load_state("networkidle")
    network_log.assert_only_loopback()
    assert any(url.endswith("/fontawesome/css/all.min.css") for url in network_log), "offline template not used"
    assert "open_tenant()" not in page.content(), "sources must be stripped"


@pytest.mark.browser
def test_error_shows_no_traceback(page: Page, network_log, voila_server, small_tenant, tmp_path):
    folder = tmp_path / "apps"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('before')"), nbformat.v4.new_code_cell("raise RuntimeError('secret-detail-4711')")]
    nbformat.write(nb, folder / "Boom.ipynb")
    page.goto(voila_server(small_tenant, notebook=folder) + "voila/render/Boom.ipynb")
    expect(page.get_by_text("There was an error when executing cell")).to_be_visible(timeout=RENDER_TIMEOUT)
    html = page.content()
    for secret in ("Traceback", "secret-detail-4711", "RuntimeError"):
        assert secret not in html
    network_log.assert_only_loopback()


def test_serve_prints_url_and_stops_on_ctrl_c(small_tenant):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = small_tenant.root.parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--home", str(home), "--tenant", "small", f"--port={port}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout.readline().strip() == f"Workbench apps: http://127.0.0.1:{port}/"
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert not port_in_use("127.0.0.1", port), "Voila still listens after Ctrl-C"


def test_serve_port_in_use_is_a_one_line_error(small_tenant):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConflictError, match="--port"):
            serve(small_tenant, port=port)
