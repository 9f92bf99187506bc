"""Investigation records and logged analyzer steps, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from workbench.air import records
from workbench.air.engine import AnalyzerFailed, Run, retry
from workbench.air.model import ActionType, ClusterCounts, ClusterKind, InvestigationStatus, MailCluster
from workbench.errors import ConflictError, NotFound
from workbench.incidents.model import Entity, EntityKind, RemediationStatus, Verdict
from workbench.store import open_store


@pytest.fixture
def store(db_url):
    s = open_store(url=db_url)
    yield s
    s.dispose()


def test_a_run_records_evidence_clusters_actions_and_its_log(store):
    run = Run.begin(store, "user_reported_phish", "Reported phish <b>", started_by="dispatcher",
                    parameters={"alert_id": "wb1", "dry_run": False})
    found = run.step("email_indicators", lambda: ["https://evil.example/a", "evil.example"])
    assert found == ["https://evil.example/a", "evil.example"]
    url = Entity.of("url", "https://evil.example/a")
    assert records.add_evidence(store, run.id, [records.EvidenceItem(url, Verdict.MALICIOUS, RemediationStatus.PENDING,
                                                                    "url_reputation")]) == 1
    assert records.add_evidence(store, run.id, [records.EvidenceItem(url, Verdict.UNKNOWN, RemediationStatus.NONE,
                                                                    "again")]) == 0  # first verdict stands
    cluster = MailCluster(ClusterKind.URL, url.value, {"view": "all_email"}, ClusterCounts(total=3, phish=3, in_mailbox=2),
                          Verdict.MALICIOUS, volume_anomaly=True)
    records.add_clusters(store, run.id, [cluster, cluster])
    for _ in range(2):  # proposing twice is one proposal
        records.propose(store, run.id, ActionType.SOFT_DELETE_CLUSTER, EntityKind.CLUSTER, cluster.name,
                        messages=[("nm-1", "bob@corp.example"), ("nm-2", "eve@corp.example")], reason="phish URL")
    run.skip("mailbox_delegation", "no mailbox in scope")
    run.finish(InvestigationStatus.PENDING_ACTION)
    rec = records.load(store, run.id)
    assert rec.investigation.status is InvestigationStatus.PENDING_ACTION and rec.investigation.ended is None
    assert rec.investigation.parameters == {"alert_id": "wb1", "dry_run": False}
    assert [(e.entity.value, e.verdict) for e in rec.evidence] == [(url.value, Verdict.MALICIOUS)]
    assert rec.clusters == (cluster,) and rec.clusters[0].counts.in_mailbox == 2
    [action] = rec.actions
    assert action.action is ActionType.SOFT_DELETE_CLUSTER and len(action.messages) == 2 and action.status == "pending"
    assert [(x.analyzer, x.status) for x in rec.log] == [("email_indicators", "ok"), ("mailbox_delegation", "skipped")]
    assert rec.log[0].summary == "2 item(s)" and rec.log[0].seconds >= 0
    run.finish(InvestigationStatus.REMEDIATED)
    assert records.load(store, run.id).investigation.ended is not None
    with pytest.raises(ConflictError, match="already ended"):
        run.finish(InvestigationStatus.NO_THREATS_FOUND)


def test_a_failing_analyzer_fails_the_run_and_a_retry_links_to_it(store):
    run = Run.begin(store, "compromised_user", "Compromised user", started_by="ana", parameters={"user": "x"})
    run.step("forwarding_rules", lambda: [])

    def boom() -> None:
        raise ValueError("sign-in table unreadable")
    with pytest.raises(AnalyzerFailed, match="analyzer sign_in_anomalies failed .*ValueError"):
        run.step("sign_in_anomalies", boom)
    rec = records.load(store, run.id)
    assert rec.investigation.status is InvestigationStatus.FAILED
    assert "sign_in_anomalies" in rec.investigation.error and rec.log[-1].status == "failed"
    again = retry(store, run.id, started_by="ana")
    new = records.load(store, again.id).investigation
    assert new.retry_of == run.id and new.parameters == {"user": "x"} and new.status is InvestigationStatus.RUNNING
    with pytest.raises(Exception, match="not failed"):
        retry(store, again.id, started_by="ana")
    with pytest.raises(NotFound, match="no investigation 999"):
        records.load(store, 999)
