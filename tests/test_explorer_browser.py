"""The Explorer in a real browser (Debian Chromium), served by real Voila and real JupyterLab:
filters, pivot, legend click, the email entity and its timeline; hostile text stays inert and
no request leaves the machine."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import date

import polars as pl
import pytest
from playwright.sync_api import Page, expect

from conftest import free_port
from workbench.explorer import Query, Window
from workbench.lake import Lake

pytestmark = [pytest.mark.slow, pytest.mark.browser]
RENDER = 120_000  # ms: kernel start, imports, the offline chart bundle
PAYLOAD = '<img src=x onerror="window.__xss=1">'
WINDOW = Window.between("2026-11-18", "2026-11-21")


def hostile_message() -> bytes:
    """One message with the payload in the subject, the display name, a URL and a file name."""
    text = f'''From: "{PAYLOAD} CEO" <ceo@evil.example>
To: someone@contoso.test
Subject: {PAYLOAD} urgent
Date: Thu, 19 Nov 2026 10:00:00 +0000
Message-ID: <xss-1@evil.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/html; charset=utf-8

<p>Hello</p><a href="https://evil.example/x?&quot;&gt;&lt;img src=x onerror=window.__xss=1&gt;">click</a>
--b1
Content-Type: application/pdf
Content-Disposition: attachment; filename="{PAYLOAD}.pdf"

%PDF-1.4 harmless
--b1--
'''
    return text.replace("\n", "\r\n").encode()


@pytest.fixture(scope="module")
def hostile_tenant(tmp_path_factory):
    from workbench.ingest.batch import ingest
    from workbench.ingest.demo import generate
    from workbench.ingest.sources import RawItem
    from workbench.tenant import open_tenant

    base = tmp_path_factory.mktemp("hostile-home")
    generate("hostile", users=20, days=2, seed=5, end=date(2026, 11, 20), base=base, progress=False)
    tenant = open_tenant("hostile", base=base)
    assert ingest(tenant, [RawItem("xss.eml", hostile_message())]).messages == 1
    return tenant


@pytest.fixture(scope="module")
def events(hostile_tenant) -> pl.DataFrame:
    return pl.read_parquet(Lake.for_tenant(hostile_tenant).partition_files("EmailEvents"))


def explorer_flow(page: Page, events: pl.DataFrame, *, root) -> None:  # noqa: ANN001 - root: Page or FrameLocator
    """Filter, legend click, pivot, open the hostile email and its timeline."""
    expect(root.locator(".wb-note", has_text=" rows, ").first).to_contain_text(f"{events.height:,} rows", timeout=RENDER)

    # legend click on the default pivot (Delivery action) adds it as a filter
    action = next(a for a in ("Junked", "Blocked") if a in events["DeliveryAction"].to_list())
    picked = events.filter(pl.col("DeliveryAction") == action).height
    root.locator(".role-legend text", has_text=re.compile(f"^{action}$")).first.click(timeout=60_000)
    expect(root.locator(".wb-note", has_text=" rows, ").first).to_contain_text(f"{picked:,} rows", timeout=30_000)

    # a condition typed into the builder (the legend's condition is removed first)
    root.locator("button:has(.fa-times)").first.click()  # the legend's condition row
    root.get_by_role("button", name="Condition").first.click()
    condition = root.locator(".widget-hbox", has=page.locator("input[placeholder='values, comma-separated']")).last
    condition.locator("select").first.select_option(label="Sender domain")
    root.locator("input[placeholder='values, comma-separated']").last.fill("evil.example")
    root.get_by_role("button", name="Refresh").click()
    expect(root.locator(".wb-note", has_text=" rows, ").first).to_contain_text("1 rows", timeout=30_000)
    expect(root.locator(".wb-table").first).to_contain_text(PAYLOAD + " urgent")  # shown as text

    # pivot by full URL: the hostile URL becomes a legend entry and a tooltip
    pivot = root.locator(".widget-dropdown", has=page.locator("label", has_text=re.compile("^Pivot$"))).locator("select")
    pivot.select_option(label="URL")
    expect(root.locator(".role-legend text", has_text="evil.example").first).to_be_visible(timeout=30_000)
    root.locator(".mark-rect.role-mark path:visible").first.hover()
    tooltip = page.locator("#vg-tooltip-element")
    expect(tooltip).to_contain_text("evil.example", timeout=10_000)
    assert tooltip.locator("img").count() == 0, "tooltip rendered markup from the data"

    # open the email: the entity's tabs, its timeline, defanged URLs
    root.locator(".widget-select-multiple select").select_option(index=0)
    root.get_by_role("button", name="Open email").click()
    expect(root.get_by_text("Email: " + PAYLOAD + " urgent")).to_be_visible(timeout=30_000)
    details = root.locator(".wb-dl", has_text="Sender display name").first  # the entity's first tab
    expect(details).to_contain_text("onerror=")  # the hostile display name, shown as text
    assert details.locator("img").count() == 0
    root.get_by_role("tab", name="Timeline", exact=True).click()
    expect(root.locator(".wb-table", has_text="Original delivery")).to_be_visible()
    root.get_by_role("tab", name="URLs", exact=True).click()
    expect(root.locator(".wb-table", has_text="hxxps[://]evil[.]example")).to_be_visible()
    root.get_by_role("tab", name="Attachments", exact=True).click()
    expect(root.locator(".wb-table", has_text=PAYLOAD + ".pdf")).to_be_visible()
    assert page.evaluate("window.__xss") is None, "a hostile value ran as script"


def test_explorer_in_voila(page: Page, network_log, voila_server, hostile_tenant, events):
    page.set_viewport_size({"width": 1400, "height": 1900})
    link = Query("all_email", WINDOW).to_link(voila_server(hostile_tenant) + "voila/render/Explorer.ipynb")
    page.goto(link)
    explorer_flow(page, events, root=page)
    shared = page.locator("code", has_text="/voila/render/Explorer.ipynb?q=").first.inner_text()
    assert Query.from_link(shared).view == "all_email"  # the panel offers a link to what is on screen
    page.wait_for_load_state("networkidle")
    network_log.assert_only_loopback()
    if os.environ.get("WORKBENCH_SCREENSHOTS"):
        page.screenshot(path=os.environ["WORKBENCH_SCREENSHOTS"])


@pytest.fixture
def lab_server(hostile_tenant, tmp_path) -> Iterator[str]:
    """A real JupyterLab on loopback, its kernels opening the hostile tenant."""
    from workbench.serve import notebooks_dir, stop_process, tenant_env, wait_for_port

    port, token = free_port(), secrets.token_hex(16)
    root = tmp_path / "lab"
    root.mkdir()
    (root / "Explorer.ipynb").write_text((notebooks_dir() / "Explorer.ipynb").read_text())
    log = tmp_path / "lab.log"
    env = {**os.environ, **tenant_env(hostile_tenant), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             "--ServerApp.port_retries=0"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, proc, timeout=90)
        yield f"http://127.0.0.1:{port}/lab/tree/Explorer.ipynb?reset&token={token}"
    finally:
        stop_process(proc, timeout=20)
        if proc.returncode not in (0, -15, None):
            print(log.read_text(errors="replace")[-5000:])


def test_explorer_in_jupyterlab(page: Page, network_log, lab_server, events):
    page.set_viewport_size({"width": 1500, "height": 2000})
    # Lab may ask which kernel to start (it depends on the kernelspecs it finds): take the preferred one
    page.add_locator_handler(page.get_by_text("Select kernel for:"),
                             lambda: page.get_by_role("button", name="Select Kernel").click())
    page.goto(lab_server)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_visible(timeout=RENDER)
    panel = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").last
    for attempt in range(2):  # a kernel dialog that pops up after the click swallows the first run
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile("^Run All Cells")).click()
        try:
            expect(panel.locator(".wb-note", has_text=" rows, ").first).to_be_visible(timeout=RENDER // 2)
            break
        except AssertionError:
            if attempt:
                raise
    link = Query("all_email", WINDOW)
    # in JupyterLab there is no page query string: the window is chosen in the panel
    select_window = panel.locator(".widget-dropdown", has=page.locator("label", has_text=re.compile("^Window$")))
    select_window.locator("select").select_option(label="Custom")
    panel.locator("input[type=date]").nth(0).fill(link.window.start.date().isoformat())
    panel.locator("input[type=date]").nth(1).fill("2026-11-20")
    panel.get_by_role("button", name="Refresh").click()
    explorer_flow(page, events, root=panel)
    network_log.assert_only_loopback()
