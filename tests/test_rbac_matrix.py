"""Every activity × role cell of the default matrix (workbench/rbac/matrix.json), driven through
the real services (not the UI): each role alone is granted to a fresh user, who then tries the
activity; the cell says allow or deny. Also: bootstrap, grant/revoke rules, the CLI, identity.

Activities without a service yet (metadata read is never refused; trackers and SIEM have no
service) are checked on the matrix data only (:data:`DATA_ONLY`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench import audit, rbac
from workbench.actions import ActionKind, ActionService
from workbench.air import dispatch
from workbench.enums import Folder
from workbench.errors import InputError, NotFound, PermissionDenied
from workbench.explorer.entity import email_entity
from workbench.identity import acting_user
from workbench.incidents import alerting
from workbench.incidents.service import IncidentService
from workbench.mail import EmbeddedMailStore
from workbench.mail.search import SearchCriteria, search
from workbench.rbac import Permission as P
from workbench.rbac import Role
from workbench.simulator.campaigns import SimulationService
from workbench.simulator.model import Recipient
from workbench.simulator.payload_store import save_payload
from workbench.simulator.payloads import load_library, to_dict
from workbench.store import open_store

ADMIN = "root"
COPIES = [("m0", f"user{u}@contoso.test") for u in range(2)]


@pytest.fixture
def store(tmp_path):
    s = open_store(url=f"sqlite:///{tmp_path / 'wb.sqlite'}")
    assert rbac.bootstrap(s, ADMIN)
    yield s
    s.dispose()


@pytest.fixture
def mail(tmp_path):
    m = EmbeddedMailStore(tmp_path / "mail" / "store.sqlite")
    m.place([("m0", f"user{u}@contoso.test", Folder.INBOX) for u in range(2)])
    yield m
    m.close()


def _no_run(job: dispatch.Job) -> int:
    raise dispatch.RunFailed("not run by the matrix test")


def _policy_id() -> str:
    from workbench.detect import policies

    return policies.load_policies()[0].id


def _activities(store, mail, tmp_path: Path) -> dict[P, Callable[[str], object]]:
    """One real service call per enforced permission, made by *user*."""
    admin = ActionService(store, ADMIN, mail=mail)

    def approve(user: str) -> object:  # one action per attempt (an identical open action is not proposed twice)
        pending = admin.propose(ActionKind.SOFT_DELETE, copies=[("m0", f"{user}@contoso.test")], reason=user)
        return ActionService(store, user, mail=mail).approve([pending.id])

    def preview(user: str) -> object:
        try:  # the check comes before the lookup: allowed means "no such message"
            return email_entity(None, "no-such-id", "nobody@contoso.test", read_content=True, roles=store, actor=user)
        except (NotFound, AttributeError):
            return "allowed"

    return {
        P.CONTENT_READ: preview,
        P.REMEDIATION: lambda u: search(mail, SearchCriteria(subject="anything"), actor=u,
                                        audit_path=tmp_path / "search-audit.jsonl", roles=store),
        P.ACTION_APPROVAL: approve,
        P.START_INVESTIGATION: lambda u: dispatch.start(store, _no_run, "phish_zap", {"messages": ["m0"]},
                                                        started_by=u),
        P.INCIDENT_MANAGEMENT: lambda u: IncidentService(store, u).create(f"opened by {u}"),
        P.ALERT_POLICY_CONFIGURATION: lambda u: (alerting.configure(store, _policy_id(), u, enabled=True),
                                                 dispatch.configure(store, actor=u, max_running=3)),
        P.ROLE_MANAGEMENT: lambda u: rbac.grant(store, u, f"new-{u}", Role.GLOBAL_READER),
        P.SIMULATION_MANAGEMENT: lambda u: SimulationService(store, u).create(
            f"by {u}", "password-expiry-notice", [Recipient(f"{u}@contoso.test")]),
        P.PAYLOAD_AUTHORING: lambda u: save_payload(store, u, {**to_dict(load_library()[0]), "id": f"mine-{u}".replace("_", "-")}),
    }


DATA_ONLY = {P.METADATA_READ, P.TRACKER_MANAGEMENT, P.SIEM_CONFIGURATION}


def test_every_activity_role_cell_through_the_services(store, mail, tmp_path):
    activities = _activities(store, mail, tmp_path)
    assert set(activities) | DATA_ONLY == set(P)
    cells = 0
    for role in Role:
        user = "u-" + role.name.lower()
        rbac.grant(store, ADMIN, user, role)
        allowed = rbac.matrix()[role]
        for permission, attempt in activities.items():
            if permission in allowed:
                attempt(user)
            else:
                with pytest.raises(PermissionDenied, match=f"lacks the {permission.value} permission"):
                    attempt(user)
            cells += 1
    assert cells == len(Role) * len(activities)
    denied = [r for r in audit.query(store) if r.result.value == "denied"]
    assert denied and {r.actor for r in denied} >= {"u-security_reader", "u-preview"}
    approvals = [r for r in denied if r.activity == "action.search_and_purge"]
    assert approvals and all(r.target.startswith("action ") for r in approvals)  # the refused attempt names its action


def test_the_matrix_is_the_documented_default():
    m = rbac.matrix()
    assert set(m) == set(Role) and m[Role.GLOBAL_ADMINISTRATOR] == frozenset(P)
    assert m[Role.SECURITY_READER] == m[Role.GLOBAL_READER] == {P.METADATA_READ}
    assert P.CONTENT_READ not in m[Role.SECURITY_ADMINISTRATOR] and P.REMEDIATION not in m[Role.SECURITY_OPERATOR]
    assert m[Role.PREVIEW] == {P.CONTENT_READ} and m[Role.SEARCH_AND_PURGE] == {P.REMEDIATION, P.ACTION_APPROVAL}
    assert m[Role.ATTACK_PAYLOAD_AUTHOR] == {P.PAYLOAD_AUTHORING}
    assert P.SIMULATION_MANAGEMENT in m[Role.ATTACK_SIMULATION_ADMINISTRATOR]
    assert {r for r in Role if P.SIEM_CONFIGURATION in m[r]} == {Role.GLOBAL_ADMINISTRATOR,
                                                                 Role.SECURITY_ADMINISTRATOR}
    assert {r for r in Role if P.TRACKER_MANAGEMENT in m[r]} == {Role.GLOBAL_ADMINISTRATOR,
                                                                 Role.SECURITY_ADMINISTRATOR}
    # the union of roles: Security Administrator + Preview reads content
    assert P.CONTENT_READ in rbac.permissions_of([Role.SECURITY_ADMINISTRATOR, Role.PREVIEW])


def test_denial_is_one_line_naming_roles_and_fix(store):
    with pytest.raises(PermissionDenied) as err:
        rbac.require(store, "eve", P.CONTENT_READ)
    message = str(err.value)
    assert "\n" not in message and "Global Administrator, Preview" in message
    assert "workbench roles grant eve 'Preview'" in message


def test_grant_revoke_and_bootstrap_rules(store):
    assert not rbac.bootstrap(store, "someone-else")  # only while no assignment exists
    assert rbac.roles_of(store, ADMIN) == {Role.GLOBAL_ADMINISTRATOR}
    with pytest.raises(PermissionDenied, match="role management"):
        rbac.grant(store, "eve", "eve", Role.GLOBAL_ADMINISTRATOR)
    assert rbac.grant(store, ADMIN, "Ana", Role.SECURITY_OPERATOR) and not rbac.grant(store, ADMIN, "ana",
                                                                                       Role.SECURITY_OPERATOR)
    assert rbac.roles_of(store, "ANA") == {Role.SECURITY_OPERATOR}
    rbac.revoke(store, ADMIN, "ana", Role.SECURITY_OPERATOR)
    with pytest.raises(NotFound, match="does not hold"):
        rbac.revoke(store, ADMIN, "ana", Role.SECURITY_OPERATOR)
    with pytest.raises(InputError, match="no role manager"):
        rbac.revoke(store, ADMIN, ADMIN, Role.GLOBAL_ADMINISTRATOR)
    assert rbac.roles_of(store, ADMIN) == {Role.GLOBAL_ADMINISTRATOR}
    logged = sorted((r.activity, r.actor, r.result.value) for r in audit.query(store) if r.activity.startswith("role."))
    assert logged == [("role.grant", "bootstrap", "ok"), ("role.grant", "eve", "denied"), ("role.grant", ADMIN, "ok"),
                      ("role.revoke", ADMIN, "ok")]
    assert Role.parse("search-and-purge") is Role.SEARCH_AND_PURGE and Role.parse("PREVIEW") is Role.PREVIEW
    with pytest.raises(InputError, match="unknown role"):
        Role.parse("Wizard")


def test_without_assignments_the_approver_fallback_applies(tmp_path, mail, monkeypatch):
    s = open_store(url=f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    try:
        monkeypatch.setenv("WORKBENCH_APPROVERS", "ana")
        assert IncidentService(s, "bob").create("no roles yet")  # everything else allowed
        pending = ActionService(s, "bob", mail=mail).propose(ActionKind.SOFT_DELETE, copies=COPIES)
        with pytest.raises(PermissionDenied, match="WORKBENCH_APPROVERS"):
            ActionService(s, "bob", mail=mail).approve([pending.id])
        ActionService(s, "ana", mail=mail).approve([pending.id])
    finally:
        s.dispose()


def test_roles_cli(tmp_path, monkeypatch):
    from workbench import tenant as tenants
    from workbench.cli import main

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    monkeypatch.delenv("WORKBENCH_TRUSTED_HEADER", raising=False)
    tenants.ensure("acme")

    def cli(user: str, *args: str):
        return CliRunner().invoke(main, ["roles", *args, "--tenant", "acme"], env={"WORKBENCH_USER": user})

    first = cli("ana", "grant", "bob", "security operator")
    assert first.exit_code == 0, first.output
    assert "ana is the first Global Administrator" in first.output and "bob now holds Security Operator" in first.output
    denied = cli("bob", "grant", "bob", "Global Administrator")
    assert denied.exit_code == 5 and denied.output.count("\n") == 1 and "lacks the role management" in denied.output
    listed = cli("bob", "list", "--json")
    assert [json.loads(line)["role"] for line in listed.output.splitlines()] == ["Global Administrator",
                                                                                 "Security Operator"]
    assert cli("ana", "revoke", "bob", "Security Operator").exit_code == 0
    bad = cli("ana", "grant", "bob", "Wizard")
    assert bad.exit_code == 2 and "unknown role" in bad.output


def test_identity_order(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "wb")
    monkeypatch.setenv("JUPYTERHUB_USER", "hub")
    monkeypatch.setenv("HTTP_X_FORWARDED_USER", "proxy")
    monkeypatch.delenv("WORKBENCH_TRUSTED_HEADER", raising=False)
    assert acting_user() == "hub"  # a header nobody declared trusted is ignored
    monkeypatch.setenv("WORKBENCH_TRUSTED_HEADER", "X-Forwarded-User")
    assert acting_user() == "proxy"
    monkeypatch.delenv("HTTP_X_FORWARDED_USER")
    assert acting_user() == "hub"
    monkeypatch.delenv("JUPYTERHUB_USER")
    assert acting_user() == "wb"


def test_demo_analysts_and_system_proposals(tmp_path, mail):
    from workbench.actions.service import AIR_ACTOR
    from workbench.rbac.demo import DEMO_ANALYSTS, seed_demo

    s = open_store(url=f"sqlite:///{tmp_path / 'demo.sqlite'}")
    try:
        assert seed_demo(s, "creator") == 1 + sum(len(roles) for _, roles in DEMO_ANALYSTS)
        assert seed_demo(s, "creator") == 0  # once
        assert rbac.roles_of(s, "creator") == {Role.GLOBAL_ADMINISTRATOR}
        assert rbac.roles_of(s, "bob") == {Role.SECURITY_READER}
        # the workbench itself (AIR, the pipeline) proposes without a role; a user without one cannot
        pending = ActionService(s, AIR_ACTOR, mail=mail, system=True).propose(ActionKind.SOFT_DELETE, copies=COPIES)
        with pytest.raises(PermissionDenied, match="start investigation or remediation"):
            ActionService(s, "stranger", mail=mail).propose(ActionKind.SOFT_DELETE, copies=[("m0", "x@contoso.test")])
        with pytest.raises(PermissionDenied, match="action approval"):
            ActionService(s, "bob", mail=mail).approve([pending.id])
        ActionService(s, "ana", mail=mail).approve([pending.id])
    finally:
        s.dispose()


def test_explorer_offers_what_the_roles_allow(store):
    from workbench.explorer.actions import ActionKind as Ek
    from workbench.ui.explorer import role_settings

    assert role_settings(None, "carol") == {"read_content": False, "actions": tuple(Ek)}  # no store, no roles
    for user, role in (("bob", Role.SECURITY_READER), ("sam", Role.SECURITY_ADMINISTRATOR), ("carol", Role.PREVIEW)):
        rbac.grant(store, ADMIN, user, role)
    rbac.grant(store, ADMIN, "ana", Role.SECURITY_OPERATOR)
    rbac.grant(store, ADMIN, "ana", Role.SEARCH_AND_PURGE)
    assert role_settings(store, "bob") == {"read_content": False, "actions": ()}  # a reader only reads
    assert role_settings(store, "carol")["read_content"]
    assert role_settings(store, "sam")["actions"] == (Ek.PROPOSE_REMEDIATION, Ek.START_INVESTIGATION,
                                                      Ek.ADD_TO_INCIDENT, Ek.CREATE_INCIDENT)
    assert role_settings(store, "ana")["actions"] == tuple(Ek) and role_settings(store, ADMIN)["actions"] == tuple(Ek)


def test_proposing_and_explorer_remediation_through_the_service(store, mail):
    """Proposing needs a role that acts (start investigation or remediation); moving or deleting
    from the Explorer needs remediation; readers may do neither."""
    from workbench.explorer.actions import ActionKind as Ek
    from workbench.explorer.actions import MessageRef, build_request

    may_propose = {Role.GLOBAL_ADMINISTRATOR, Role.SECURITY_ADMINISTRATOR, Role.SECURITY_OPERATOR,
                   Role.SEARCH_AND_PURGE}
    for n, role in enumerate(Role):
        user = "p-" + role.name.lower()
        rbac.grant(store, ADMIN, user, role)
        service = ActionService(store, user, mail=mail)
        propose = build_request(Ek.PROPOSE_REMEDIATION, [MessageRef("m0", f"{n}a@contoso.test")], requested_by=user)
        delete = build_request(Ek.SOFT_DELETE, [MessageRef("m0", f"{n}b@contoso.test")], requested_by=user)
        if role in may_propose:
            assert service.from_explorer(propose).status.value == "pending"
        else:
            with pytest.raises(PermissionDenied, match="start investigation or remediation"):
                service.from_explorer(propose)
        if P.REMEDIATION in rbac.matrix()[role]:
            assert service.from_explorer(delete).status.value == "approved"  # a purger's move runs next
        else:
            with pytest.raises(PermissionDenied, match="lacks the remediation permission"):
                service.from_explorer(delete)
    refused = audit.query(store, activity="explorer.remediate", result="denied")
    assert {r.actor for r in refused} == {"p-" + r.name.lower() for r in Role if P.REMEDIATION not in rbac.matrix()[r]}


def test_incident_panel_disables_changes_for_readers(store):
    from workbench.ui.incidents import IncidentPanel

    rbac.grant(store, ADMIN, "bob", Role.SECURITY_READER)
    incident = IncidentService(store, ADMIN).create("phish")
    reader = IncidentPanel(IncidentService(store, "bob"), incident.id)
    assert reader.resolve_button.disabled and "incident management" in reader.resolve_button.tooltip
    assert not IncidentPanel(IncidentService(store, ADMIN), incident.id).resolve_button.disabled
    with pytest.raises(PermissionDenied):  # the service refuses whatever the panel shows
        IncidentService(store, "bob").resolve(incident.id, "done")


def test_payload_authors_edit_payloads_but_neither_launch_nor_see_reports(store):
    from workbench.simulator.reports import campaign_report

    rbac.grant(store, ADMIN, "paula", Role.ATTACK_PAYLOAD_AUTHOR)
    rbac.grant(store, ADMIN, "simon", Role.ATTACK_SIMULATION_ADMINISTRATOR)
    rbac.grant(store, ADMIN, "olga", Role.SECURITY_OPERATOR)
    mine = save_payload(store, "paula", {**to_dict(load_library()[0]), "id": "paulas-payload"})
    assert mine.source == "tenant" and mine.author == "paula"
    campaign = SimulationService(store, "simon").create("Q4", "paulas-payload", [Recipient("a@contoso.test")])
    for attempt in (lambda: SimulationService(store, "paula").launch(campaign.id),
                    lambda: SimulationService(store, "paula").create("x", "paulas-payload", [Recipient("b@x.test")]),
                    lambda: campaign_report(store, campaign.id, actor="paula"),
                    lambda: SimulationService(store, "paula").list()):
        with pytest.raises(PermissionDenied):
            attempt()
    assert campaign_report(store, campaign.id, actor="olga").counts["targeted"] == 1  # read-only roles see reports
    with pytest.raises(PermissionDenied, match="simulation management"):
        SimulationService(store, "olga").launch(campaign.id)
    with pytest.raises(PermissionDenied, match="payload authoring"):
        save_payload(store, "olga", {**to_dict(load_library()[0]), "id": "olgas"})
    assert SimulationService(store, "simon").launch(campaign.id).status.value == "running"
