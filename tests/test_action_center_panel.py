"""The action center panel, built headless on a copy of the small tenant (real store, real
embedded mail store, real lake) and driven through its widgets: filters, bulk approval,
rejection, dry run, run, per-message log, undo, CSV export, permissions, hostile text; and
the two other sources wired here: the Explorer's remediation requests and the incident page's
"Take action"."""

from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import timedelta
import pytest

from test_incidents_panel import assert_inert
from workbench.actions import ActionKind, ActionService, ActionSource, ActionStatus
from workbench.enums import Folder
from workbench.lake import Lake
from workbench.mail import EmbeddedMailStore
from workbench.mail.base import CopyRef
from workbench.store import open_store
from workbench.tenant import open_tenant
from workbench.ui.actions import ActionCenterPanel

XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
APPROVERS = frozenset({"ana"})


@pytest.fixture
def tenant(small_tenant, tmp_path):
    """A private copy (runs move mail); the session's small tenant stays as generated."""
    shutil.copytree(small_tenant.root, tmp_path / "tenants" / "small", ignore=shutil.ignore_patterns("workbench.sqlite*"))
    return open_tenant("small", base=tmp_path)


@pytest.fixture
def env(tenant, monkeypatch):
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    monkeypatch.delenv("QUERY_STRING", raising=False)
    monkeypatch.delenv("WORKBENCH_APPROVERS", raising=False)
    store, mail = open_store(tenant), EmbeddedMailStore.for_tenant(tenant)
    yield tenant, store, mail
    mail.close()
    store.dispose()


def service(env, actor: str = "ana") -> ActionService:
    tenant, store, mail = env
    return ActionService(store, actor, mail=mail, lake=Lake.for_tenant(tenant), approvers=APPROVERS)


def inbox_copies(mail: EmbeddedMailStore, n: int, skip: int = 0) -> list[tuple[str, str]]:
    """*n* copies now in an Inbox, one per mailbox (mailboxes after the first *skip*)."""
    out = []
    for mailbox in mail.mailboxes()[skip:]:
        ids = mail.messages_in(mailbox, Folder.INBOX)
        if ids:
            out.append((ids[0], mailbox))
        if len(out) == n:
            return out
    raise AssertionError("the small tenant has too few inbox copies")


def panel_for(env, actor: str = "ana", **kw) -> ActionCenterPanel:
    return ActionCenterPanel(service(env, actor), export_dir=env[0].root / "reports", **kw)


def rows(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-action="(\d+)"', html)]


def test_tabs_and_filters(env):
    tenant, store, mail = env
    svc = service(env, "bob")
    soft = svc.propose(ActionKind.SOFT_DELETE, copies=inbox_copies(mail, 2), source=ActionSource.EXPLORER)
    url = svc.propose(ActionKind.BLOCK_URL, target=f"https://evil.example/{XSS}", source=ActionSource.INCIDENT,
                      source_ref="incident 4", reason=XSS)
    junk = svc.propose(ActionKind.MOVE_TO_JUNK, copies=inbox_copies(mail, 1, skip=5), name=f"Junk {XSS}")
    service(env).reject(junk.id, f"not spam {XSS}")
    # an AIR proposal, imported through the service, carries its investigation
    from workbench.air.email_investigation import investigate_emails

    stories = {s["id"]: s for s in json.loads(tenant.scenarios_path.read_text())["stories"]}
    planted = sorted({m["NetworkMessageId"] for m in stories["bec-impersonation"]["messages"]})
    inv = investigate_emails(store, Lake.for_tenant(tenant), planted, playbook="manual_email", name="Phish",
                             started_by="AIR").record.investigation
    air = svc.import_proposals(inv.id)
    assert air and all(a.source is ActionSource.AIR for a in air)

    p = panel_for(env)
    assert set(rows(p.pending_table.value)) == {soft.id, url.id} | {a.id for a in air}
    assert rows(p.history_table.value) == [junk.id] and "1 rejected" in p.history_table.value
    assert f'Investigations.ipynb?investigation={inv.id}"' in p.pending_table.value
    assert "hxxps[://]evil[.]example" in p.pending_table.value  # a URL target, defanged
    assert [v for _, v in p.selection.options] == [a.id for a in p.pending]
    p.kind.value = ActionKind.BLOCK_URL.value
    p.apply_button.click()
    assert [a.id for a in p.pending] == [url.id] and p.history == []
    p.kind.value, p.source.value = "", ActionSource.AIR.value
    p.apply_button.click()
    assert {a.id for a in p.pending} == {a.id for a in air}
    p.source.value, p.investigation.value = "", str(inv.id)
    p.apply_button.click()
    assert {a.id for a in p.pending} == {a.id for a in air}
    p.investigation.value = "three"
    p.apply_button.click()
    assert "is not a number" in p.error.value
    p.investigation.value, p.status.value = "", ActionStatus.REJECTED.value
    p.apply_button.click()
    assert p.pending == [] and [a.id for a in p.history] == [junk.id]
    p.status.value, p.window.value = "", "24h"
    p.apply_button.click()
    assert len(p.pending) == 2 + len({a.id for a in air})  # proposed just now
    today = service(env).get(url.id).created.date()
    p.window.value = "custom"
    assert p.start.layout.display == "flex"
    p.start.value, p.end.value = today, today - timedelta(days=1)
    p.apply_button.click()
    assert "pick a From date on or before the To date" in p.error.value
    p.start.value = p.end.value = today - timedelta(days=3)
    p.apply_button.click()
    assert p.error.value == "" and p.pending == [] and p.history == []
    p.end.value = today
    p.apply_button.click()
    assert len(p.pending) == 2 + len({a.id for a in air}) and [a.id for a in p.history] == [junk.id]
    p.tabs.selected_index = 1
    assert [v for _, v in p.selection.options] == [junk.id]
    assert_inert(p)


def test_bulk_approval_takes_one_type(env):
    _, _, mail = env
    bob = service(env, "bob")
    a = bob.propose(ActionKind.SOFT_DELETE, copies=inbox_copies(mail, 1))
    b = bob.propose(ActionKind.SOFT_DELETE, copies=inbox_copies(mail, 1, skip=3))
    c = bob.propose(ActionKind.BLOCK_SENDER, target="evil@bad.example")
    p = panel_for(env)
    p.selection.value = (a.id, c.id)
    p.approve_button.click()
    assert "one type" in p.error.value and p.error.value.count("<br") == 0
    assert {x.status for x in p.pending} == {ActionStatus.PENDING}  # all or none
    p.selection.value = (a.id, b.id)
    p.comment.value = f"campaign {XSS}"
    p.approve_button.click()
    assert p.error.value == "" and "2 action(s) approved" in p.note.value
    assert {x.id: x.status for x in p.pending} == {a.id: ActionStatus.APPROVED, b.id: ActionStatus.APPROVED,
                                                   c.id: ActionStatus.PENDING}
    assert service(env).get(a.id).decided_by == "ana"
    p.selection.value = ()
    p.approve_button.click()
    assert "select one or more actions" in p.error.value


def test_reject_needs_a_comment(env):
    _, _, mail = env
    a = service(env, "bob").propose(ActionKind.SOFT_DELETE, copies=inbox_copies(mail, 1))
    p = panel_for(env)
    p.selection.value = (a.id,)
    p.reject_button.click()
    assert "say why in a comment" in p.error.value and p.pending[0].status is ActionStatus.PENDING
    p.comment.value = f"false positive {XSS}"
    p.reject_button.click()
    assert p.pending == [] and [x.status for x in p.history] == [ActionStatus.REJECTED]
    assert f"false positive {XSS}" == service(env).get(a.id).comment
    assert "false positive &lt;img" in p.history_table.value
    p.tabs.selected_index = 1
    p.selection.value = (a.id,)
    p.log_button.click()
    assert "rejected" in p.action_log.value and "false positive &lt;img" in p.action_log.value
    assert_inert(p)


def test_run_moves_to_history_with_per_message_results_and_undo(env):
    _, _, mail = env
    copies = inbox_copies(mail, 3)
    missing = ("<gone@x>", f"ghost{XSS}@contoso.test")
    a = service(env, "bob").propose(ActionKind.SOFT_DELETE, copies=copies + [missing], reason=f"phish {XSS}")
    p = panel_for(env)
    p.selection.value = (a.id,)
    p.run_button.click()
    assert "approve it first" in p.error.value  # pending: not yet
    p.approve_button.click()
    p.selection.value = (a.id,)
    assert p.dry_run() == 4
    assert "3 Success, 1 NotFound" in p.preview.value and "Inbox" in p.preview.value
    assert {mail.folder(*c) for c in copies} == {Folder.INBOX}  # a dry run moves nothing
    p.run_button.click()
    assert p.error.value == "" and "is partiallyCompleted" in p.note.value
    assert p.pending == [] and [x.id for x in p.history] == [a.id]
    assert "3 moved" in p.history_table.value and "1 not found" in p.history_table.value
    assert {mail.folder(*c) for c in copies} == {Folder.RECOVERABLE_DELETIONS}
    # the per-message log opened after the run
    assert p.log_id == a.id and f'data-action-log="{a.id}"' in p.action_log.value
    outcomes = re.findall(r'data-outcome="([^"]+)"', p.action_log.value)
    assert sorted(outcomes) == ["NotFound", "Success", "Success", "Success"]
    assert "Inbox → Recoverable Items/Deletions" in p.action_log.value and copies[0][1] in p.action_log.value
    assert p.progress.value == p.progress.max == 4 and p.progress.layout.visibility == "hidden"
    assert_inert(p)
    # undo: a restore action puts every moved copy back
    p.tabs.selected_index = 1
    p.selection.value = (a.id,)
    p.undo_button.click()
    assert p.error.value == "" and f"(undo of action {a.id})" in p.note.value
    assert {mail.folder(*c) for c in copies} == {Folder.INBOX}
    restore = service(env).get(p.log_id)
    assert restore.kind is ActionKind.RESTORE and restore.undo_of == a.id and restore.status is ActionStatus.COMPLETED
    assert "Recoverable Items/Deletions → Inbox" in p.action_log.value
    assert service(env).get(a.id).status is ActionStatus.UNDONE
    p.selection.value = (a.id,)
    p.undo_button.click()
    assert "already undone" in p.error.value


def test_hard_delete_needs_the_confirm_box(env):
    _, _, mail = env
    copies = inbox_copies(mail, 2)
    a = service(env, "bob").propose(ActionKind.HARD_DELETE, copies=copies)
    p = panel_for(env)
    p.selection.value = (a.id,)
    p.approve_button.click()
    p.selection.value = (a.id,)
    p.run_button.click()
    assert "cannot be undone" in p.error.value and 'tick “I confirm”' in p.error.value
    assert "--confirm" not in p.error.value and "Dry run: 2 Success" in p.preview.value  # shown what it would do
    assert {mail.folder(*c) for c in copies} == {Folder.INBOX}
    p.confirm.value = True
    p.run_button.click()
    assert p.error.value == "" and [x.status for x in p.history] == [ActionStatus.COMPLETED]
    assert {mail.folder(*c) for c in copies} == {Folder.RECOVERABLE_PURGES} and p.confirm.value is False
    p.tabs.selected_index = 1
    p.selection.value = (a.id,)
    p.undo_button.click()
    assert "a hard delete is final" in p.error.value


def test_export_csv_of_the_visible_list(env):
    _, _, mail = env
    bob = service(env, "bob")
    a = bob.propose(ActionKind.SOFT_DELETE, copies=inbox_copies(mail, 2), name=f"=HYPERLINK(\"x\") {XSS}")
    b = bob.propose(ActionKind.BLOCK_DOMAIN, target="bad.example")
    p = panel_for(env)
    path = p.export()
    assert path.parent == env[0].root / "reports" and path.name.startswith("actions-pending-")
    got = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [int(r["id"]) for r in got] == [b.id, a.id]
    first = {int(r["id"]): r for r in got}
    assert first[a.id]["name"].startswith("'=HYPERLINK")  # never a formula in a spreadsheet
    assert first[a.id]["copies"] == "2" and first[b.id]["kind"] == "blockDomain" and first[b.id]["target"] == "bad.example"
    assert 'href="data:text/csv;base64,' in p.download.value and "download" in p.download.value
    assert [x.name for x in path.parent.iterdir() if x.name.startswith(".")] == []  # no temp file left
    p.tabs.selected_index = 1
    empty = p.export()
    assert empty.name.startswith("actions-history-") and len(empty.read_text().splitlines()) == 1
    assert_inert(p)


def test_permissions_disable_buttons_and_the_service_refuses(env):
    _, _, mail = env
    a = service(env, "bob").propose(ActionKind.SOFT_DELETE, copies=inbox_copies(mail, 1))
    p = panel_for(env, "bob")
    assert all(b.disabled for b in (p.approve_button, p.reject_button, p.run_button, p.undo_button))
    assert not p.log_button.disabled and not p.export_button.disabled and not p.dry_run_button.disabled
    p.selection.value = (a.id,)
    p.approve()  # the service's check is what counts
    assert "bob lacks the Search and Purge role" in p.error.value and "<br" not in p.error.value
    assert service(env).get(a.id).status is ActionStatus.PENDING
    assert not panel_for(env, "ana").approve_button.disabled


def test_action_query_string_opens_the_log(env, monkeypatch):
    tenant, _, mail = env
    a = service(env, "bob").propose(ActionKind.SOFT_DELETE, copies=inbox_copies(mail, 2))
    monkeypatch.setenv("WORKBENCH_USER", "ana")
    monkeypatch.setenv("QUERY_STRING", f"action={a.id}")
    p = ActionCenterPanel.for_tenant(tenant)
    assert p.log_id == a.id and p.action_log.value.count("data-copy=") == 2 and "pending" in p.action_log.value
    monkeypatch.setenv("QUERY_STRING", "action=%3Cb%3E")
    p = ActionCenterPanel.for_tenant(tenant)
    assert "is not an action number" in p.error.value and "<b>" not in p.error.value
    monkeypatch.setenv("QUERY_STRING", "action=999")
    assert "no action 999" in ActionCenterPanel.for_tenant(tenant).error.value


def test_explorer_remediation_requests_become_actions(env, monkeypatch):
    from workbench.explorer import Query, Window
    from workbench.explorer.actions import ActionKind as Ek
    from workbench.ui.explorer import ExplorerPanel

    tenant, _, mail = env
    monkeypatch.setenv("WORKBENCH_USER", "bob")
    monkeypatch.setenv("WORKBENCH_APPROVERS", "ana")
    panel = ExplorerPanel.for_tenant(tenant, query=Query("all_email", Window.between("2026-11-17", "2026-11-21")),
                                     chart=False, page_size=20)
    panel.selection.value = (0, 1)
    picked = {(panel._page["NetworkMessageId"][i], panel._page["RecipientEmailAddress"][i].lower()) for i in (0, 1)}
    panel.action.value = Ek.PROPOSE_REMEDIATION.value
    panel.request_action()
    assert panel.error.value == "", panel.error.value
    [action] = service(env).list()
    assert action.kind is ActionKind.SOFT_DELETE and action.status is ActionStatus.PENDING
    assert action.source is ActionSource.EXPLORER and action.proposed_by == "bob"
    assert {(r.network_message_id, r.mailbox) for r in service(env).results(action.id)} == picked
    assert f"action {action.id} (Soft delete, 2 copies) is pending" in panel.action_result.value
    # "Move or delete" by an approver is approved at once (run it from the action center)
    monkeypatch.setenv("WORKBENCH_USER", "ana")
    panel.selection.value = (2,)
    panel.action.value = Ek.MOVE_TO_JUNK.value
    panel.request_action()
    junk = service(env).list(kind=ActionKind.MOVE_TO_JUNK)
    assert [a.status for a in junk] == [ActionStatus.APPROVED] and "run it in the Action center" in panel.action_result.value


def test_incident_take_action_proposes_a_soft_delete(env):
    from workbench.incidents.service import IncidentService
    from workbench.ui.incidents import IncidentPanel

    tenant, store, mail = env
    inbox = inbox_copies(mail, 2)
    gone = inbox_copies(mail, 1, skip=6)
    mail.move([CopyRef.of(*gone[0])], Folder.RECOVERABLE_DELETIONS)
    incidents = IncidentService(store, "ana")
    incident = incidents.create(f"Phish {XSS}", emails=inbox + gone)
    assert IncidentPanel(incidents, incident.id).take_action.disabled  # no action center: no button
    page = IncidentPanel(incidents, incident.id, actions=service(env))
    assert not page.take_action.disabled
    page.take_action.click()
    assert page.error.value == "", page.error.value
    [action] = service(env).list()
    assert action.kind is ActionKind.SOFT_DELETE and action.status is ActionStatus.PENDING
    assert action.source is ActionSource.INCIDENT and action.source_ref == f"incident {incident.id}"
    assert {(r.network_message_id, r.mailbox) for r in service(env).results(action.id)} == {
        (n, m.lower()) for n, m in inbox}  # only the copies still in mailboxes
    assert f"Action {action.id} (Soft delete, 2 copies still in mailboxes) is pending" in page.take_action_result.value
    assert f"ActionCenter.ipynb?action={action.id}" in page.take_action_result.value
    page.take_action.click()  # the same proposal again joins the open action
    assert [a.id for a in service(env).list()] == [action.id]
    empty = incidents.create("No mail")
    page = IncidentPanel(incidents, empty.id, actions=service(env))
    page.take_action.click()
    assert "has no email evidence" in page.error.value
    assert_inert(page)

