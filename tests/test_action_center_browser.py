"""The Action center app in a real browser (Debian Chromium) served by real Voila, on a copy of
the small tenant: select a pending soft delete, approve it, run it, and see it in History
with its per-message results; the copies really left the Inboxes; hostile names, reasons
and targets stay text; no traceback; no request leaves the machine."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from workbench.actions import ActionKind, ActionService, ActionStatus
from workbench.enums import Folder
from workbench.mail import EmbeddedMailStore
from workbench.store import open_store
from workbench.tenant import open_tenant

pytestmark = [pytest.mark.slow, pytest.mark.browser]
RENDER = 120_000  # ms: kernel start and imports
PAYLOAD = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture
def seeded(small_tenant, tmp_path, monkeypatch):
    """A private tenant copy with two pending actions proposed by someone else."""
    shutil.copytree(small_tenant.root, tmp_path / "tenants" / "small", ignore=shutil.ignore_patterns("workbench.sqlite*"))
    tenant = open_tenant("small", base=tmp_path)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)  # the kernel opens the copy's own store
    monkeypatch.setenv("WORKBENCH_USER", "browser-approver")  # the Voila kernel inherits these
    monkeypatch.setenv("WORKBENCH_APPROVERS", "browser-approver")
    store, mail = open_store(tenant), EmbeddedMailStore.for_tenant(tenant)
    copies = []
    for mailbox in mail.mailboxes():
        ids = mail.messages_in(mailbox, Folder.INBOX)
        if ids:
            copies.append((ids[0], mailbox))
        if len(copies) == 3:
            break
    svc = ActionService(store, "analyst", mail=mail)
    soft = svc.propose(ActionKind.SOFT_DELETE, copies=copies, name=f"Soft delete {PAYLOAD}", reason=f"phish {PAYLOAD}")
    url = svc.propose(ActionKind.BLOCK_URL, target=f"https://evil.example/{PAYLOAD}", reason=PAYLOAD)
    yield tenant, svc, mail, soft, url, copies
    mail.close()
    store.dispose()


def test_approve_and_run_in_voila(page: Page, network_log, voila_server, seeded, tmp_path):
    tenant, svc, mail, soft, url, copies = seeded
    dialogs: list[str] = []
    page.context.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(voila_server(tenant) + "voila/render/ActionCenter.ipynb")
    pending = page.locator("tr[data-action]:visible")
    expect(pending).to_have_count(2, timeout=RENDER)
    expect(page.locator(f'tr[data-action="{url.id}"]')).to_contain_text("hxxps[://]evil[.]example")
    expect(page.locator(f'tr[data-action="{soft.id}"]')).to_contain_text(f"Soft delete {PAYLOAD}")  # as text

    select = page.locator(".widget-select-multiple", has_text="Select").locator("select")
    select.select_option(label=f"#{soft.id} · Soft delete · pending · {soft.name[:70]}")
    page.locator("button", has_text=re.compile(r"^\s*Approve\s*$")).click()
    expect(page.locator(f'tr[data-action="{soft.id}"]')).to_have_attribute("data-status", "approved", timeout=30_000)
    expect(page.locator(".wb-note", has_text="1 action(s) approved")).to_be_visible()

    select.select_option(label=f"#{soft.id} · Soft delete · approved · {soft.name[:70]}")
    page.locator("button", has_text=re.compile(r"^\s*Run\s*$")).click()
    log = page.locator(f'[data-action-log="{soft.id}"]')
    expect(log).to_be_visible(timeout=60_000)
    expect(log.locator("tr[data-copy]")).to_have_count(3)
    expect(log.locator('tr[data-outcome="Success"]')).to_have_count(3)
    expect(log).to_contain_text("Inbox → Recoverable Items/Deletions")
    expect(page.locator(f'tr[data-action="{soft.id}"]:visible')).to_have_count(0)  # left the Pending tab

    page.locator(".lm-TabBar-tab", has_text="History").click()
    done = page.locator(f'tr[data-action="{soft.id}"]:visible')
    expect(done).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(page.locator(".wb-totals:visible")).to_contain_text("1 completed. Copies: 3 moved")

    assert svc.get(soft.id).status is ActionStatus.COMPLETED and svc.get(soft.id).decided_by == "browser-approver"
    assert {mail.folder(*c) for c in copies} == {Folder.RECOVERABLE_DELETIONS}
    assert page.evaluate("window.__xss") is None, "a hostile value ran as script"
    assert page.locator("img[src='x']").count() == 0 and page.locator("script", has_text="__xss").count() == 0
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "There was an error when executing cell" not in body
    assert dialogs == []
    network_log.assert_only_loopback()
    page.set_viewport_size({"width": 1400, "height": 2000})  # the lab template's body does not scroll
    shot = tmp_path / "action-center-voila.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("WORKBENCH_ARTIFACTS"):
        Path(os.environ["WORKBENCH_ARTIFACTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(os.environ["WORKBENCH_ARTIFACTS"]) / shot.name)
