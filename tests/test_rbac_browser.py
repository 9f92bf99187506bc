"""Roles in a real browser (Debian Chromium) served by real Voila, the acting user supplied
through the trusted header (``workbench serve --trusted-header X-Forwarded-User``), as a
reverse proxy or JupyterHub would send it:

- a Security Reader's Explorer offers no action at all and the dashboard loads;
- a Security Administrator without Search and Purge proposes a remediation from the Explorer
  but cannot approve or run it (the buttons are disabled; the service refuses anyway);
- an approver (Security Operator + Search and Purge) approves and runs it, and the copy leaves
  the Inbox.

``WORKBENCH_USER`` is set to a user without roles, so only the header can explain what each
page allows."""

from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import Page, expect

from workbench import audit, rbac
from workbench.actions import ActionService, ActionStatus
from workbench.enums import Folder
from workbench.errors import PermissionDenied
from workbench.explorer import Query, Window
from workbench.mail import EmbeddedMailStore
from workbench.rbac import Role
from workbench.store import open_store
from workbench.tenant import open_tenant

pytestmark = [pytest.mark.slow, pytest.mark.browser]
RENDER = 120_000  # ms: kernel start and imports
HEADER = "X-Forwarded-User"
WINDOW = Window.between("2026-11-17", "2026-11-21")


@pytest.fixture
def tenant(small_tenant, tmp_path, monkeypatch):
    """A private copy of the small tenant whose store holds roles for four analysts."""
    shutil.copytree(small_tenant.root, tmp_path / "tenants" / "small", ignore=shutil.ignore_patterns("workbench.sqlite*"))
    t = open_tenant("small", base=tmp_path)
    for name in ("WORKBENCH_DB_URL", "WORKBENCH_APPROVERS", "JUPYTERHUB_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_USER", "nobody-without-roles")  # the header must win
    store = open_store(t)
    rbac.bootstrap(store, "root")
    for user, role in (("bob", Role.SECURITY_READER), ("sam", Role.SECURITY_ADMINISTRATOR),
                       ("ana", Role.SECURITY_OPERATOR), ("ana", Role.SEARCH_AND_PURGE)):
        rbac.grant(store, "root", user, role)
    store.dispose()
    return t


def as_user(page: Page, user: str) -> None:
    page.set_extra_http_headers({HEADER: user})


def action_row(page: Page):
    """The Explorer's action controls (dropdown, incident box, confirm, Request)."""
    return page.locator(".widget-hbox", has=page.get_by_role("button", name="Request"))


def test_reader_sees_no_actions_and_the_dashboard_loads(page: Page, network_log, voila_server, tenant):
    base = voila_server(tenant, trusted_header=HEADER)
    as_user(page, "bob")
    page.goto(Query("all_email", WINDOW).to_link(base + "voila/render/Explorer.ipynb"))
    expect(page.locator(".wb-note", has_text=" rows, ").first).to_be_visible(timeout=RENDER)
    expect(page.locator(".wb-table").first).to_be_visible()
    expect(action_row(page)).to_be_hidden()  # a reader may not act: no action row at all
    assert page.get_by_role("option", name=re.compile("delete|Propose|Move to", re.I)).count() == 0

    page.goto(base + "voila/render/Dashboard.ipynb")
    expect(page.locator(".wb-note", has_text=" UTC · computed in ")).to_be_visible(timeout=RENDER)
    assert page.locator(".wb-error:visible").count() == 0
    network_log.assert_only_loopback()


def test_admin_proposes_and_an_approver_runs(page: Page, network_log, voila_server, tenant):
    base = voila_server(tenant, trusted_header=HEADER)
    # sam (Security Administrator, no Search and Purge): only Propose remediation among the mail actions
    as_user(page, "sam")
    page.goto(Query("all_email", WINDOW).to_link(base + "voila/render/Explorer.ipynb"))
    expect(page.locator(".wb-note", has_text=" rows, ").first).to_be_visible(timeout=RENDER)
    dropdown = action_row(page).locator("select").first
    offered = [o.replace("\xa0", " ") for o in dropdown.locator("option").all_inner_texts()]
    assert offered == ["Propose remediation", "Start automated investigation", "Add to incident", "Create incident"]
    page.locator(".widget-select-multiple select").first.select_option(index=0)
    dropdown.select_option(label="Propose remediation")
    page.get_by_role("button", name="Request").click()
    result = page.locator(".wb-note", has_text="is pending; approve it in the Action center")
    expect(result).to_be_visible(timeout=30_000)
    action_id = int(re.search(r"action (\d+) \(Soft delete, 1 copies\)", result.inner_text()).group(1))

    store, mail = open_store(tenant), EmbeddedMailStore.for_tenant(tenant)
    try:
        action = ActionService(store, "root", mail=mail).get(action_id)
        assert action.status is ActionStatus.PENDING and action.proposed_by == "sam"
        (nmid, mailbox), = [(r.network_message_id, r.mailbox) for r in ActionService(store, "root").results(action_id)]
        with pytest.raises(PermissionDenied, match="sam lacks the action approval permission"):
            ActionService(store, "sam", mail=mail).approve([action_id])  # the service refuses, whatever the page shows

        # sam in the Action center: the proposal is there, approving and running are not
        page.goto(base + "voila/render/ActionCenter.ipynb")
        row = page.locator(f'tr[data-action="{action_id}"]:visible')
        expect(row).to_have_attribute("data-status", "pending", timeout=RENDER)
        for name in ("Approve", "Reject", "Run", "Undo"):
            expect(page.locator("button", has_text=re.compile(rf"^\s*{name}\s*$"))).to_be_disabled()

        # ana (Security Operator + Search and Purge) approves and runs it
        as_user(page, "ana")
        page.goto(base + "voila/render/ActionCenter.ipynb")
        expect(page.locator(f'tr[data-action="{action_id}"]:visible')).to_be_visible(timeout=RENDER)
        select = page.locator(".widget-select-multiple", has_text="Select").locator("select")
        label = select.locator("option", has_text=f"#{action_id} ").inner_text()
        select.select_option(label=label)
        page.locator("button", has_text=re.compile(r"^\s*Approve\s*$")).click()
        expect(page.locator(f'tr[data-action="{action_id}"]')).to_have_attribute("data-status", "approved",
                                                                                  timeout=30_000)
        select.select_option(label=select.locator("option", has_text=f"#{action_id} ").inner_text())
        page.locator("button", has_text=re.compile(r"^\s*Run\s*$")).click()
        expect(page.locator(f'[data-action-log="{action_id}"] tr[data-outcome="Success"]')).to_have_count(
            1, timeout=60_000)

        done = ActionService(store, "root", mail=mail).get(action_id)
        assert done.status is ActionStatus.COMPLETED and done.decided_by == "ana"
        assert nmid not in mail.messages_in(mailbox, Folder.INBOX)
        who = {(r.actor, r.activity) for r in audit.query(store, target=f"action {action_id}", limit=None)}
        assert {("sam", "action.proposed"), ("ana", "action.approved"), ("ana", "action.completed")} <= who
        assert ("sam", "action.search_and_purge") in {(r.actor, r.activity)
                                                      for r in audit.query(store, result="denied")}
    finally:
        mail.close()
        store.dispose()
    network_log.assert_only_loopback()
