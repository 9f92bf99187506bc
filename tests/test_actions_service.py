"""The action center's service on SQLite and PostgreSQL with a real embedded mail store:
lifecycle, dedup, bulk approval, expiry, permissions, blast radius, dry run, undo, races."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from workbench.actions import ActionKind, ActionService, ActionStatus, Limits
from workbench.enums import Folder
from workbench.errors import ConflictError, InputError, PermissionDenied
from workbench.mail import EmbeddedMailStore
from workbench.mail.base import Outcome
from workbench.store import open_store

APPROVERS = frozenset({"ana"})


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 9, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def mail(tmp_path):
    store = EmbeddedMailStore(tmp_path / "mail" / "store.sqlite")
    store.place([(f"m{i}", f"user{u}@contoso.test", Folder.INBOX) for i in range(4) for u in range(30)])
    yield store
    store.close()


@pytest.fixture
def store(db_url):
    s = open_store(url=db_url)
    yield s
    s.dispose()


@pytest.fixture
def clock():
    return Clock()


def service(store, mail, clock, actor="bob", **kw) -> ActionService:
    return ActionService(store, actor, mail=mail, clock=clock, approvers=APPROVERS, **kw)


def copies(n: int, message: str = "m0"):
    return [(message, f"user{u}@contoso.test") for u in range(n)]


def test_lifecycle_propose_approve_run_undo(store, mail, clock):
    bob, ana = service(store, mail, clock), service(store, mail, clock, "ana")
    a = bob.propose(ActionKind.SOFT_DELETE, copies=copies(3), reason="phish")
    assert a.status is ActionStatus.PENDING and a.totals.targets == 3 and a.proposed_by == "bob"
    with pytest.raises(PermissionDenied, match="bob lacks the Search and Purge role"):
        bob.approve([a.id])
    with pytest.raises(ConflictError, match="approve it first"):
        ana.run(a.id)
    approved = ana.approve([a.id], "confirmed phish")[0]
    assert approved.status is ActionStatus.APPROVED and approved.approved_by == "ana" and approved.comment == "confirmed phish"
    done = ana.run(a.id)
    assert done.status is ActionStatus.COMPLETED and done.totals.success == 3
    assert {mail.folder("m0", f"user{u}@contoso.test") for u in range(3)} == {Folder.RECOVERABLE_DELETIONS}
    assert [r.outcome for r in ana.results(a.id)] == [Outcome.SUCCESS] * 3
    with pytest.raises(ConflictError, match="already completed"):
        ana.run(a.id)
    restore = ana.undo(a.id)
    assert restore.status is ActionStatus.COMPLETED and restore.undo_of == a.id
    assert {mail.folder("m0", f"user{u}@contoso.test") for u in range(3)} == {Folder.INBOX}
    assert ana.get(a.id).status is ActionStatus.UNDONE
    with pytest.raises(ConflictError, match="already undone"):
        ana.undo(a.id)
    events = [e.event for e in ana.history(a.id)]
    assert events[:3] == ["proposed", "approved", "started"] and events[-1] == "undone"


def test_identical_pending_actions_are_one(store, mail, clock):
    bob = service(store, mail, clock)
    a = bob.propose(ActionKind.SOFT_DELETE, copies=copies(3))
    b = bob.propose("softDelete", copies=list(reversed(copies(3))), name="same copies, other order")
    assert a.id == b.id and len(bob.list()) == 1
    c = bob.propose(ActionKind.MOVE_TO_JUNK, copies=copies(3))
    d = bob.propose(ActionKind.BLOCK_URL, target="http://evil.test/x", target_kind="url")
    assert len({a.id, c.id, d.id}) == 3
    assert bob.propose(ActionKind.BLOCK_URL, target="HTTP://evil.test/x ", target_kind="url").id == d.id


def test_bulk_approval_needs_one_type_and_is_all_or_nothing(store, mail, clock):
    bob, ana = service(store, mail, clock), service(store, mail, clock, "ana")
    ids = [bob.propose(ActionKind.SOFT_DELETE, copies=copies(2, f"m{i}")).id for i in range(3)]
    junk = bob.propose(ActionKind.MOVE_TO_JUNK, copies=copies(2)).id
    with pytest.raises(InputError, match="one type"):
        ana.approve([*ids, junk])
    assert {a.status for a in ana.list()} == {ActionStatus.PENDING}
    assert [a.status for a in ana.approve(ids)] == [ActionStatus.APPROVED] * 3
    with pytest.raises(ConflictError, match="already approved"):
        ana.approve([ids[0]])


def test_reject_needs_a_comment_and_records_who(store, mail, clock):
    bob, ana = service(store, mail, clock), service(store, mail, clock, "ana")
    a = bob.propose(ActionKind.SOFT_DELETE, copies=copies(2))
    with pytest.raises(InputError, match="comment"):
        ana.reject(a.id, " ")
    r = ana.reject(a.id, "false positive: newsletter")
    assert r.status is ActionStatus.REJECTED and r.decided_by == "ana" and r.comment == "false positive: newsletter"
    with pytest.raises(ConflictError, match="rejected by ana"):
        ana.approve([a.id])
    # a rejected action is closed: the same copies may be proposed again
    assert bob.propose(ActionKind.SOFT_DELETE, copies=copies(2)).id != a.id


def test_pending_actions_expire_after_seven_days(store, mail, clock):
    bob, ana = service(store, mail, clock), service(store, mail, clock, "ana")
    old = bob.propose(ActionKind.SOFT_DELETE, copies=copies(2))
    clock.now += timedelta(days=3)
    young = bob.propose(ActionKind.SOFT_DELETE, copies=copies(2, "m1"))
    clock.now += timedelta(days=4, seconds=1)
    assert [a.id for a in ana.list(["expired"])] == [old.id]
    assert ana.get(young.id).status is ActionStatus.PENDING
    with pytest.raises(ConflictError, match="expired on"):
        ana.approve([old.id])
    assert "expired" in [e.event for e in ana.history(old.id)]


def test_drafts_are_submitted_before_approval(store, mail, clock):
    bob, ana = service(store, mail, clock), service(store, mail, clock, "ana")
    draft = bob.propose(ActionKind.MOVE_TO_JUNK, copies=copies(1), submit=False)
    assert draft.status is ActionStatus.PROPOSED
    assert bob.submit(draft.id).status is ActionStatus.PENDING
    assert ana.approve([draft.id])[0].status is ActionStatus.APPROVED


def test_permissions_come_from_the_approver_list(store, mail, clock, monkeypatch):
    monkeypatch.setenv("WORKBENCH_APPROVERS", "Ana, carol")
    a = ActionService(store, "bob", mail=mail, clock=clock).propose(ActionKind.SOFT_DELETE, copies=copies(1))
    with pytest.raises(PermissionDenied, match="add bob to WORKBENCH_APPROVERS"):
        ActionService(store, "bob", mail=mail, clock=clock).approve([a.id])
    assert ActionService(store, "ana", mail=mail, clock=clock).approve([a.id])[0].decided_by == "ana"
    monkeypatch.delenv("WORKBENCH_APPROVERS")  # unset: the acting user is the admin
    b = ActionService(store, "bob", mail=mail, clock=clock).propose(ActionKind.SOFT_DELETE, copies=copies(2))
    assert ActionService(store, "bob", mail=mail, clock=clock).approve([b.id])[0].status is ActionStatus.APPROVED


def test_blast_radius_guard_and_hard_delete_need_confirmation(store, mail, clock):
    bob, ana = service(store, mail, clock), service(store, mail, clock, "ana")
    wide = bob.propose(ActionKind.SOFT_DELETE, copies=copies(13))  # 13 of 30 mailboxes: 43% > 40%
    ana.approve([wide.id])
    with pytest.raises(InputError, match="touches 13 of 30 mailboxes .43%, limit 40%.*--confirm"):
        ana.run(wide.id)
    assert ana.get(wide.id).status is ActionStatus.APPROVED and mail.folder("m0", "user0@contoso.test") is Folder.INBOX
    assert ana.run(wide.id, confirm=True).totals.success == 13
    many = ActionService(store, "ana", mail=mail, clock=clock, approvers=APPROVERS, limits=Limits(max_messages=5))
    big = bob.propose(ActionKind.MOVE_TO_JUNK, copies=copies(6, "m1"))
    many.approve([big.id])
    with pytest.raises(InputError, match="touches 6 copies .limit 5."):
        many.run(big.id)
    hard = bob.propose(ActionKind.HARD_DELETE, copies=copies(2, "m2"))
    ana.approve([hard.id])
    with pytest.raises(InputError, match="cannot be undone.*--confirm"):
        ana.run(hard.id)
    assert ana.run(hard.id, confirm=True).status is ActionStatus.COMPLETED
    assert mail.folder("m2", "user0@contoso.test") is Folder.RECOVERABLE_PURGES
    with pytest.raises(ConflictError, match="hard delete is final"):
        ana.undo(hard.id)


def test_dry_run_lists_exactly_what_would_move(store, mail, clock):
    bob, ana = service(store, mail, clock), service(store, mail, clock, "ana")
    mail.move([__import__("workbench.mail.base", fromlist=["CopyRef"]).CopyRef.of("m3", "user1@contoso.test")], Folder.JUNK)
    a = bob.propose(ActionKind.MOVE_TO_JUNK, copies=[*copies(3, "m3"), ("m3", "nobody@contoso.test")])
    rows = ana.dry_run(a.id)
    assert [(r.mailbox, r.current, r.destination, r.would) for r in rows] == [
        ("user0@contoso.test", Folder.INBOX, Folder.JUNK, Outcome.SUCCESS),
        ("user1@contoso.test", Folder.JUNK, Folder.JUNK, Outcome.ALREADY_IN_DESTINATION),
        ("user2@contoso.test", Folder.INBOX, Folder.JUNK, Outcome.SUCCESS),
        ("nobody@contoso.test", None, Folder.JUNK, Outcome.NOT_FOUND)]
    assert mail.folder("m3", "user0@contoso.test") is Folder.INBOX  # nothing moved
    ana.approve([a.id])
    done = ana.run(a.id)
    assert (done.status, done.totals.success, done.totals.already, done.totals.not_found) == (
        ActionStatus.PARTIALLY_COMPLETED, 2, 1, 1)
    assert [r.outcome for r in ana.results(a.id)] == [Outcome.SUCCESS, Outcome.ALREADY_IN_DESTINATION,
                                                      Outcome.SUCCESS, Outcome.NOT_FOUND]


def test_other_actions_are_requests_to_an_adapter(store, mail, clock):
    import sqlalchemy as sa

    from workbench.store import tables as t

    bob, ana = service(store, mail, clock), service(store, mail, clock, "ana")
    a = bob.propose(ActionKind.BLOCK_SENDER, target="evil@phish.test", target_kind="mailbox")
    ana.approve([a.id])
    done = ana.run(a.id)
    assert done.status is ActionStatus.REQUESTED
    with store.read() as conn:
        req = conn.execute(sa.select(t.action_requests)).one()
    assert (req.kind, req.target, req.status, req.requested_by) == ("blockSender", "evil@phish.test", "requested", "ana")
    assert "does not enforce" in ana.history(a.id)[-1].comment


def test_two_executors_never_both_run_an_action(store, db_url, mail, clock):
    bob = service(store, mail, clock)
    a = bob.propose(ActionKind.MOVE_TO_JUNK, copies=copies(8, "m1"))
    service(store, mail, clock, "ana").approve([a.id])
    barrier, outcomes = threading.Barrier(2), []

    def executor() -> None:
        s = open_store(url=db_url)
        m = EmbeddedMailStore(mail.path)
        try:
            barrier.wait()
            outcomes.append(ActionService(s, "ana", mail=m, approvers=APPROVERS).run(a.id).status.value)
        except ConflictError as exc:
            outcomes.append(f"conflict: {exc}")
        finally:
            m.close()
            s.dispose()
    threads = [threading.Thread(target=executor) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(o.split(":")[0] for o in outcomes) == ["completed", "conflict"], outcomes
    results = service(store, mail, clock).results(a.id)
    assert [r.outcome for r in results] == [Outcome.SUCCESS] * 8 and {r.attempts for r in results} == {1}


def test_a_running_action_of_a_live_executor_is_not_taken_over(store, mail, clock):
    import sqlalchemy as sa

    from workbench.actions.execute import runner_id
    from workbench.store import tables as t

    ana = service(store, mail, clock, "ana")
    a = ana.propose(ActionKind.MOVE_TO_JUNK, copies=copies(2))
    ana.approve([a.id])
    now = datetime.now(UTC)
    store.run(lambda c: c.execute(t.actions.update().where(t.actions.c.id == a.id).values(
        status="running", runner=runner_id(), heartbeat=now)))  # this (live) process holds it
    with pytest.raises(ConflictError, match="is being run by"):
        ActionService(store, "ana", mail=mail, approvers=APPROVERS).run(a.id)
    store.run(lambda c: c.execute(t.actions.update().where(t.actions.c.id == a.id).values(
        heartbeat=now - timedelta(minutes=5))))  # silent past the lease: resumed
    assert ActionService(store, "ana", mail=mail, approvers=APPROVERS).run(a.id).status is ActionStatus.COMPLETED
    assert "resumed" in [e.event for e in ana.history(a.id)]
    with store.read() as conn:
        assert conn.execute(sa.select(t.actions.c.runner).where(t.actions.c.id == a.id)).scalar_one() == ""


def test_explorer_requests_become_actions(store, mail, clock):
    from workbench.explorer.actions import ActionKind as Ek, MessageRef, build_request

    sel = [MessageRef("m1", f"User{u}@contoso.test") for u in range(3)]
    bob, ana = service(store, mail, clock), service(store, mail, clock, "ana")
    proposed = bob.from_explorer(build_request(Ek.PROPOSE_REMEDIATION, sel, requested_by="bob", query={"view": "phish"}))
    assert (proposed.kind, proposed.status, proposed.source.value) == (ActionKind.SOFT_DELETE, ActionStatus.PENDING, "explorer")
    junk_by_bob = bob.from_explorer(build_request(Ek.MOVE_TO_JUNK, sel, requested_by="bob"))
    assert junk_by_bob.status is ActionStatus.PENDING  # bob lacks Search and Purge: two-step
    junk_by_ana = ana.from_explorer(build_request(Ek.MOVE_TO_JUNK, sel[:2], requested_by="ana"))
    assert junk_by_ana.status is ActionStatus.APPROVED and junk_by_ana.decided_by == "ana"
    assert ana.run(junk_by_ana.id).totals.success == 2
    with pytest.raises(InputError, match="not the action center"):
        ana.from_explorer(build_request(Ek.CREATE_INCIDENT, sel, requested_by="ana"))


def test_doctests():
    import doctest

    from workbench.actions import model, permissions

    for module in (model, permissions):
        assert doctest.testmod(module).failed == 0


def test_an_error_during_a_run_hands_the_action_back(store, mail, clock, tmp_path):
    ana = service(store, mail, clock, "ana")
    a = ana.propose(ActionKind.MOVE_TO_JUNK, copies=copies(4, "m2"))
    ana.approve([a.id])
    broken = EmbeddedMailStore(tmp_path / "other.sqlite")
    broken.close()  # a closed store: every move raises
    with pytest.raises(Exception):
        service(store, broken, clock, "ana").run(a.id)
    assert ana.get(a.id).status is ActionStatus.APPROVED and ana.history(a.id)[-1].event == "interrupted"
    assert ana.run(a.id).totals.success == 4  # the next run carries it out
