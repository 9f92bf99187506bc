"""Email AIR on the planted stories: the small generated tenant's alert policies run, the
dispatcher groups their alerts (``dispatch.pending``), and every email group is investigated
in-process as its playbook would (no kernels: the notebooks are tested in test_playbooks).
The proposals are then checked against ``scenarios.json``.

Ground truth, per story:

- malicious: the credential-phish campaign's messages, the malware campaign's, the burst the
  compromised user sent, the BEC messages, the user-reported phish;
- benign: everything else, i.e. ordinary mail, the clean reports, the reported simulations and
  the simulation messages, the BEC victim's reply. One exception: the generator also sends a
  trickle of commodity phish and malware that no story lists. Its indicators are all in the
  tenant's intelligence feed (``intel/``), so a message carrying a feed URL, URL domain,
  sender domain or attachment hash is neither planted nor benign: AIR may propose it.

Asserted: (a) every malicious copy still in a mailbox (latest delivery location Inbox or Junk)
is in some proposed soft delete; (b) no benign message is in any proposed action of any
investigation; (c) user-reported clean mail gets the verdict "no threats found" in every
investigation that looks at it, and an investigation of nothing but such reports ends
noThreatsFound; reported simulations are recognised by simulation_check and never remediated.
The verdict per message is asserted (not only the investigation's status) because AIR groups
an incident's alerts into one investigation: were a clean report grouped with phish reports,
the investigation would rightly end pending action for the phish while the clean message
itself stays clean.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from workbench.air import dispatch
from workbench.air.clusters import IN_MAILBOX
from workbench.air.email_investigation import investigate_emails
from workbench.air.model import ActionType, InvestigationStatus
from workbench.incidents import alerting
from workbench.incidents.model import EntityKind, Verdict
from workbench.intel.feeds import read_all
from workbench.lake import Lake
from workbench.store import open_store

EMAIL_PLAYBOOKS = {"user_reported_phish", "url_click_verdict_change", "malware_zap", "phish_zap",
                   "manual_email_investigation"}
SOFT_DELETES = (ActionType.SOFT_DELETE_EMAIL, ActionType.SOFT_DELETE_CLUSTER)
MALICIOUS = (("credential-phish-campaign", "messages"), ("malware-campaign", "messages"),
             ("compromised-user", "burst_messages"), ("bec-impersonation", "messages"), ("user-reports", "phish_reports"))


def copies(records) -> set[tuple[str, str]]:
    return {(r["NetworkMessageId"], r["RecipientEmailAddress"].lower()) for r in records}


@pytest.fixture(scope="module")
def truth(small_tenant) -> dict:
    stories = {s["id"]: s for s in json.loads((small_tenant.root / "scenarios.json").read_text())["stories"]}
    lake = Lake.for_tenant(small_tenant)
    malicious = set().union(*(copies(stories[s][k]) for s, k in MALICIOUS))
    mail = (lake.scan("EmailEvents", columns=["NetworkMessageId", "RecipientEmailAddress", "SenderFromDomain",
                                              "LatestDeliveryLocation"]).collect()
            .with_columns(pl.col("RecipientEmailAddress").str.to_lowercase(), pl.col("SenderFromDomain").str.to_lowercase()))
    in_mailbox = set(mail.filter(pl.col("LatestDeliveryLocation").is_in(IN_MAILBOX))
                     .select("NetworkMessageId", "RecipientEmailAddress").iter_rows())
    feed = list(read_all([small_tenant.root / "intel"]))
    bad = {k: sorted({i.value.lower() for i in feed if i.kind == k}) for k in ("url", "domain", "sha256")}
    urls = lake.scan("EmailUrlInfo", columns=["NetworkMessageId", "Url", "UrlDomain"]).collect()
    files = lake.scan("EmailAttachmentInfo", columns=["NetworkMessageId", "SHA256"]).collect()
    known_bad = set(urls.filter(pl.col("Url").str.to_lowercase().is_in(bad["url"])
                                | pl.col("UrlDomain").str.to_lowercase().is_in(bad["domain"]))["NetworkMessageId"])
    known_bad |= set(files.filter(pl.col("SHA256").str.to_lowercase().is_in(bad["sha256"]))["NetworkMessageId"])
    known_bad |= set(mail.filter(pl.col("SenderFromDomain").is_in(bad["domain"]))["NetworkMessageId"])
    malicious_ids = {m for m, _ in malicious}
    reports = stories["user-reports"]
    return {
        "malicious": malicious, "in_mailbox": in_mailbox,
        "benign": set(mail["NetworkMessageId"]) - malicious_ids - known_bad,
        "clean_reports": {r["NetworkMessageId"] for r in reports["clean_reports"]},
        "simulations": {r["NetworkMessageId"] for r in reports["simulation_reports"]}
        | {r["NetworkMessageId"] for r in reports.get("simulation_messages", [])},
        "reported_simulations": {r["NetworkMessageId"] for r in reports["simulation_reports"]},
        "replies": {r["NetworkMessageId"] for r in stories["bec-impersonation"]["replies"]},
    }


@pytest.fixture(scope="module")
def investigations(small_tenant, tmp_path_factory):
    """(group, investigation) for every email group the dispatcher would start."""
    store = open_store(url=f"sqlite:///{tmp_path_factory.mktemp('air-scenarios') / 'wb.sqlite'}")
    lake = Lake.for_tenant(small_tenant)
    alerting.run(store, lake)
    out = []
    for group in dispatch.pending(store):
        if group.playbook not in EMAIL_PLAYBOOKS or not group.messages:
            continue
        out.append((group, investigate_emails(store, lake, list(group.messages), playbook=group.playbook,
                                              name=f"{group.playbook} for incident {group.incident_id}",
                                              started_by="dispatcher", alert_id=group.alert_ids[0],
                                              incident_id=group.incident_id)))
    yield out
    store.dispose()


def proposed(investigations, kinds=tuple(ActionType)) -> set[tuple[str, str]]:
    return {m for _, r in investigations for a in r.record.actions if a.action in kinds for m in a.messages}


def test_every_email_playbook_ran_cleanly(investigations):
    assert {g.playbook for g, _ in investigations} >= {"user_reported_phish", "phish_zap", "manual_email_investigation"}
    for _, result in investigations:
        assert all(x.status == "ok" for x in result.record.log), result.record.log
        assert "sender_reputation" in [x.analyzer for x in result.record.log]


def test_every_planted_malicious_copy_still_in_a_mailbox_is_proposed_for_soft_delete(investigations, truth):
    reachable = truth["malicious"] & truth["in_mailbox"]
    assert reachable, "the tenant should leave some planted copies in mailboxes (else this test proves nothing)"
    missing = reachable - proposed(investigations, SOFT_DELETES)
    assert not missing, f"{len(missing)} of {len(reachable)} malicious copies in mailboxes not proposed: {sorted(missing)[:5]}"


def test_no_benign_message_is_in_any_proposed_action(investigations, truth):
    assert proposed(investigations)  # something is proposed at all
    benign = {(m, r) for m, r in proposed(investigations) if m in truth["benign"]}
    assert not benign, f"{len(benign)} benign copies proposed: {sorted(benign)[:5]}"
    named = truth["clean_reports"] | truth["simulations"] | truth["replies"]
    assert not {m for m, _ in proposed(investigations)} & named
    # only copies still in a mailbox are ever proposed for deletion
    assert proposed(investigations, SOFT_DELETES) <= truth["in_mailbox"]


def email_verdicts(result) -> dict[str, tuple[Verdict, str]]:
    return {e.entity.value: (e.verdict, e.analyzer) for e in result.record.evidence if e.entity.kind is EntityKind.EMAIL}


def test_reported_clean_mail_ends_as_no_threats_found(investigations, truth):
    clean = truth["clean_reports"]
    looked_at = set()
    for group, result in investigations:
        mine = clean & set(group.messages)
        looked_at |= mine
        verdicts = email_verdicts(result)
        for nmid in mine:
            assert verdicts[nmid][0] is Verdict.NO_THREATS_FOUND, (group.playbook, nmid, verdicts[nmid])
        if mine and set(group.messages) <= clean | truth["benign"]:
            assert result.record.investigation.status is InvestigationStatus.NO_THREATS_FOUND
            assert result.record.actions == ()
    assert looked_at == clean, "every clean report is investigated"


def test_reported_simulations_are_recognised_and_never_remediated(investigations, truth):
    sims = truth["reported_simulations"]
    looked_at = set()
    for group, result in investigations:
        mine = sims & set(group.messages)
        looked_at |= mine
        assert mine <= set(result.simulations)
        verdicts = email_verdicts(result)
        for nmid in mine:
            assert verdicts[nmid] == (Verdict.NO_THREATS_FOUND, "simulation_check")
        if mine and set(group.messages) <= sims:
            assert result.record.investigation.status is InvestigationStatus.NO_THREATS_FOUND
    assert looked_at == sims, "every reported simulation is investigated"
    assert not {m for m, _ in proposed(investigations)} & truth["simulations"]


def test_planted_malicious_messages_investigated_are_judged_malicious(investigations, truth):
    """Each planted malicious message an investigation looks at ends with a malicious verdict
    (the BEC mail that passed every filter included: its sender is judged malicious)."""
    malicious_ids = {m for m, _ in truth["malicious"]}
    for group, result in investigations:
        verdicts = email_verdicts(result)
        for nmid in malicious_ids & set(group.messages):
            assert verdicts[nmid][0] is Verdict.MALICIOUS, (group.playbook, nmid, verdicts[nmid])
