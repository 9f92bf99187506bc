"""The full loop on a copy of the small generated tenant: AIR proposes a soft delete of a phish
cluster → an approver approves → the copies leave the recipients' folders in the mail store →
the lake has EmailPostDeliveryEvents rows, the Explorer shows the latest delivery location and
the timeline shows the action → undo restores every copy to its original folder."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from workbench.actions import ActionKind, ActionService, ActionSource, ActionStatus, import_proposals
from workbench.air import records
from workbench.air.email_investigation import investigate_emails
from workbench.air.model import ActionType
from workbench.enums import Folder
from workbench.explorer import Cond, Op, Query, Window, query
from workbench.explorer.entity import email_entity
from workbench.lake import Lake
from workbench.mail import EmbeddedMailStore
from workbench.mail.base import Outcome
from workbench.store import open_store
from workbench.tenant import open_tenant

WINDOW = Window.between("2026-11-17", "2026-11-21")


@pytest.fixture
def tenant(small_tenant, tmp_path):
    """A private copy: the session's small tenant is shared with other tests and stays as generated."""
    root = tmp_path / "tenants" / "small"
    shutil.copytree(small_tenant.root, root, ignore=shutil.ignore_patterns("workbench.sqlite*"))
    return open_tenant("small", base=tmp_path)


def latest(lake: Lake, copies: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    rows = (lake.scan("EmailEvents", columns=["NetworkMessageId", "RecipientEmailAddress", "LatestDeliveryLocation"])
            .filter(pl.col("NetworkMessageId").is_in([n for n, _ in copies])).collect())
    return {(n, r.lower()): loc for n, r, loc in rows.iter_rows()}


def test_air_proposal_approved_run_shown_in_explorer_and_undone(tenant, db_url):
    lake = Lake.for_tenant(tenant)
    stories = {s["id"]: s for s in json.loads(tenant.scenarios_path.read_text())["stories"]}
    planted = sorted({m["NetworkMessageId"] for m in stories["bec-impersonation"]["messages"]})
    in_inbox = (lake.scan("EmailEvents", columns=["NetworkMessageId", "LatestDeliveryLocation"])
                .filter(pl.col("NetworkMessageId").is_in(planted) & (pl.col("LatestDeliveryLocation") == "Inbox/folder"))
                .collect()["NetworkMessageId"].unique().sort().to_list())
    assert in_inbox, "the small tenant leaves some planted phish in inboxes"
    store = open_store(url=db_url)
    mail = EmbeddedMailStore.for_tenant(tenant)
    try:
        inv = investigate_emails(store, lake, in_inbox, playbook="manual_email", name="Phish", started_by="AIR").record
        deletes = [p for p in inv.actions if p.action in (ActionType.SOFT_DELETE_CLUSTER, ActionType.SOFT_DELETE_EMAIL)]
        assert deletes, "the campaign's copies still in mailboxes are proposed for a soft delete"

        imported = import_proposals(store, inv.investigation.id)
        assert [a.id for a in import_proposals(store, inv.investigation.id)] == [a.id for a in imported]  # once, ever
        assert {a.status for a in imported} == {ActionStatus.PENDING} and {a.source for a in imported} == {ActionSource.AIR}
        soft = list({a.id: a for a in imported if a.kind is ActionKind.SOFT_DELETE}.values())
        # proposals naming the same copies (two clusters, the missed-copies list) are one action
        assert len(soft) == len({frozenset(p.messages) for p in deletes})

        ana = ActionService(store, "ana", mail=mail, lake=lake, approvers=frozenset({"ana"}))
        approved = ana.approve([a.id for a in soft], comment="phish campaign")
        assert {a.status for a in approved} == {ActionStatus.APPROVED}
        copies = sorted({(r.network_message_id, r.mailbox) for a in soft for r in ana.results(a.id)})
        before = {c: mail.folder(*c) for c in copies}
        assert Folder.INBOX in before.values()
        planned = {(r.network_message_id, r.mailbox): r.would for a in soft for r in ana.dry_run(a.id)}
        assert planned == {c: Outcome.SUCCESS if f not in (None, Folder.RECOVERABLE_DELETIONS) else
                           Outcome.ALREADY_IN_DESTINATION if f else Outcome.NOT_FOUND for c, f in before.items()}

        done = [ana.run(a.id, confirm=True) for a in soft]
        assert all(a.status is ActionStatus.COMPLETED for a in done)
        moved = sorted({(r.network_message_id, r.mailbox) for a in soft for r in ana.results(a.id)
                        if r.outcome is Outcome.SUCCESS})
        assert moved and {mail.folder(*c) for c in moved} == {Folder.RECOVERABLE_DELETIONS}
        for c in moved:  # out of the recipient's inbox
            assert c[0] not in mail.messages_in(c[1], Folder.INBOX)

        # the lake: one post-delivery row per moved copy, and the latest location
        post = (lake.scan("EmailPostDeliveryEvents").filter(pl.col("ReportId").str.starts_with("wb-action-")).collect())
        assert sorted(zip(post["NetworkMessageId"], post["RecipientEmailAddress"].str.to_lowercase())) == moved
        assert set(post["ActionType"]) == {"Manual Remediation"} and set(post["Action"]) == {"SoftDelete"}
        assert set(post["ActionTrigger"]) == {"AdminAction"} and set(post["DeliveryLocation"]) == {"Deleted items"}
        assert set(latest(lake, moved).values()) == {"Deleted items"}

        # the Explorer: the grid's latest delivery location, the "Additional action" filter, the timeline
        shown = query(Query("all_email", WINDOW, Cond("latest_delivery_location", Op.ANY, ("Deleted items",))), lake,
                      columns=["NetworkMessageId", "RecipientEmailAddress"]).collect()
        assert set(moved) <= set(zip(shown["NetworkMessageId"], shown["RecipientEmailAddress"].str.to_lowercase()))
        remediated = query(Query("all_email", WINDOW, Cond("additional_action", Op.ANY, ("Manual Remediation",))), lake,
                           columns=["NetworkMessageId", "RecipientEmailAddress"]).collect()
        assert set(zip(remediated["NetworkMessageId"], remediated["RecipientEmailAddress"].str.to_lowercase())) == set(moved)
        entity = email_entity(lake, *moved[0])
        assert entity.event["LatestDeliveryLocation"] == "Deleted items"
        action_rows = entity.timeline.filter(pl.col("Event") == "Manual Remediation")
        assert action_rows.select("Source", "Result").rows() == [("Admin", "Deleted items - SoftDelete (Success)")]

        # the investigation waits for its other proposals (block URL...), or is remediated when none is left
        status = records.load(store, inv.investigation.id).investigation.status.value
        others = {a.id for a in imported} - {a.id for a in soft}
        assert status == ("pendingAction" if others else "remediated")

        # undo: every copy back where it was, and the Explorer follows
        for a in soft:
            restore = ana.undo(a.id)
            assert restore.status is ActionStatus.COMPLETED and ana.get(a.id).status is ActionStatus.UNDONE
        assert {c: mail.folder(*c) for c in copies} == before
        back = latest(lake, moved)
        assert "Deleted items" not in back.values() and set(back.values()) <= {"Inbox/folder", "Junk folder"}
        events = email_entity(lake, *moved[0]).timeline.filter(pl.col("Event") == "Manual Remediation")["Result"].to_list()
        assert events[0] == "Deleted items - SoftDelete (Success)" and events[1].endswith("(Success)") and len(events) == 2
    finally:
        mail.close()
        store.dispose()


def test_the_pipeline_stage_imports_air_proposals_once(tenant):
    from workbench.pipeline import STAGES

    stage = next(s for s in STAGES if s.name == "actions")
    names = [s.name for s in STAGES]
    assert names.index("actions") == names.index("investigations") + 1  # AIR's proposals exist by then
    lake = Lake.for_tenant(tenant)
    stories = {s["id"]: s for s in json.loads(tenant.scenarios_path.read_text())["stories"]}
    store = open_store(tenant)
    try:
        ids = sorted({m["NetworkMessageId"] for m in stories["bec-impersonation"]["messages"]})
        rec = investigate_emails(store, lake, ids, playbook="manual_email", name="BEC", started_by="AIR").record
        assert rec.actions
        first = stage.run(tenant)
        assert first.endswith("pending approval in the action center") and not first.startswith("0 ")
        assert stage.run(tenant) == first  # idempotent: the same actions, none added
        service = ActionService(store, "ana")
        assert {a.source for a in service.list()} == {ActionSource.AIR}
        assert len(service.list()) == len({frozenset(p.messages) if p.messages else (p.action, p.target)
                                           for p in rec.actions})
    finally:
        store.dispose()
