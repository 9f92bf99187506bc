"""What lands in the audit log besides actions and role changes: content preview and download,
exports (Explorer, action center, the audit log itself), alert policy and AIR setting changes,
and each refused attempt exactly once; reading the audit log needs a security role."""

from __future__ import annotations


import pytest
from click.testing import CliRunner

from workbench import audit, rbac
from workbench.errors import NotFound, PermissionDenied
from workbench.lake import Lake
from workbench.rbac import Role
from workbench.store import open_store

ADMIN = "root"


@pytest.fixture
def store(tmp_path):
    s = open_store(url=f"sqlite:///{tmp_path / 'wb.sqlite'}")
    rbac.bootstrap(s, ADMIN)
    rbac.grant(s, ADMIN, "carol", Role.SECURITY_ADMINISTRATOR)
    rbac.grant(s, ADMIN, "carol", Role.PREVIEW)
    rbac.grant(s, ADMIN, "bob", Role.SECURITY_READER)
    rbac.grant(s, ADMIN, "pat", Role.PREVIEW)  # an add-on alone: no security role
    yield s
    s.dispose()


def activities(store, prefix: str) -> list[tuple[str, str, str]]:
    return [(r.actor, r.activity, r.result.value) for r in audit.query(store, activity=prefix, newest_first=False)]


def test_preview_is_checked_and_audited(store, small_tenant):
    from workbench.explorer.entity import email_entity
    from workbench.mail import EmbeddedMailStore

    lake = Lake.for_tenant(small_tenant)
    row = lake.scan("EmailEvents", columns=["NetworkMessageId", "RecipientEmailAddress", "Timestamp"]).head(1).collect()
    nmid, rcpt, at = row.row(0)
    mail = EmbeddedMailStore.for_tenant(small_tenant)
    try:
        shown = email_entity(lake, nmid, rcpt, at=at, mail_store=mail, read_content=True, roles=store, actor="carol")
        assert shown.preview is not None
        with pytest.raises(PermissionDenied, match="bob lacks the content read permission"):
            email_entity(lake, nmid, rcpt, at=at, mail_store=mail, read_content=True, roles=store, actor="bob")
        headers_only = email_entity(lake, nmid, rcpt, at=at, mail_store=mail, roles=store, actor="bob")
        assert headers_only.preview is None and headers_only.headers  # metadata: not content, not audited
    finally:
        mail.close()
    assert activities(store, "mail.preview") == [("carol", "mail.preview", "ok"), ("bob", "mail.preview", "denied")]
    record = audit.query(store, activity="mail.preview", result="ok")[0]
    assert record.target == f"{nmid} ({rcpt})" and record.details["bytes"] > 0


def test_download_is_checked_atomic_and_audited(store, tmp_path):
    from workbench.mail.download import download
    from workbench.mail.maildir import MaildirMailStore

    mail = MaildirMailStore(tmp_path / "maildir")
    raw = b"From: x@evil.test\r\nSubject: Invoice\r\n\r\npay https://evil.test/pay\r\n"
    ref = mail.deliver("ann@contoso.test", raw)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PermissionDenied, match="content read"):
        download(mail, ref.network_message_id, out, roles=store, actor="bob")
    assert not any(out.iterdir())  # nothing half-written
    path = download(mail, ref.network_message_id, out, roles=store, actor="carol")
    assert path.read_bytes() == raw and path.suffix == ".txt" and path.stat().st_mode & 0o077 == 0
    with pytest.raises(NotFound):
        download(mail, "no-such-id", out, roles=store, actor="carol")
    assert [p.name for p in out.iterdir()] == [path.name]
    assert activities(store, "mail.download") == [("bob", "mail.download", "denied"),
                                                  ("carol", "mail.download", "ok")]
    assert audit.query(store, activity="mail.download", result="ok")[0].details["file"] == path.name


def test_mail_download_cli(tmp_path, monkeypatch):
    from workbench.cli import main
    from workbench.mail import config
    from workbench.mail.maildir import MaildirMailStore
    from workbench.tenant import ensure

    for name in ("WORKBENCH_DB_URL", "JUPYTERHUB_USER", "WORKBENCH_TRUSTED_HEADER"):
        monkeypatch.delenv(name, raising=False)
    tenant = ensure("dl", base=tmp_path)
    tree = MaildirMailStore(tmp_path / "vmail")
    ref = tree.deliver("ann@contoso.test", b"Subject: hi\r\n\r\nhello\r\n")
    tree.close()
    config.configure_maildir(tenant, tmp_path / "vmail")
    s = open_store(tenant)
    rbac.bootstrap(s, ADMIN)
    rbac.grant(s, ADMIN, "bob", Role.SECURITY_READER)
    s.dispose()
    where = ["--home", str(tmp_path), "--tenant", "dl", "--out", str(tmp_path)]
    refused = CliRunner().invoke(main, ["mail", "download", ref.network_message_id, *where],
                                 env={"WORKBENCH_USER": "bob"})
    assert refused.exit_code == 5 and refused.stderr.count("\n") == 1 and "content read" in refused.stderr
    done = CliRunner().invoke(main, ["mail", "download", ref.network_message_id, *where], env={"WORKBENCH_USER": ADMIN})
    assert done.exit_code == 0, done.stderr
    assert "open it as text" in done.stdout and len(list(tmp_path.glob("*.eml.txt"))) == 1
    unknown = CliRunner().invoke(main, ["mail", "download", "nope", *where], env={"WORKBENCH_USER": ADMIN})
    assert unknown.exit_code == 3 and unknown.stderr.count("\n") == 1


def test_exports_are_audited(store, small_tenant, tmp_path):
    from workbench.explorer import Query, Window
    from workbench.explorer.export import export

    q = Query("all_email", Window.between("2026-11-18", "2026-11-21"))
    result = export(Lake.for_tenant(small_tenant), q, tmp_path / "rows.csv", audit_store=store, actor="bob")
    record = audit.query(store, activity="explorer.export")[0]
    assert (record.actor, record.target, record.details["rows"]) == ("bob", "rows.csv", result.rows)
    assert record.details["query"] == q.to_json() and result.rows > 0

    assert audit.export(store, tmp_path / "log.jsonl", actor="bob") > 0
    with pytest.raises(PermissionDenied, match="pat lacks the metadata read permission"):
        audit.export(store, tmp_path / "pat.jsonl", actor="pat")
    assert not (tmp_path / "pat.jsonl").exists()
    assert activities(store, "audit.export") == [("bob", "audit.export", "ok"), ("pat", "audit.export", "denied")]


def test_action_center_export_is_audited(store, tmp_path):
    from workbench.actions import ActionKind, ActionService
    from workbench.ui.actions import ActionCenterPanel

    service = ActionService(store, ADMIN)
    service.propose(ActionKind.BLOCK_URL, target="https://evil.example/x", reason="phish")
    panel = ActionCenterPanel(ActionService(store, "bob"), export_dir=tmp_path)
    path = panel.export()
    record = audit.query(store, activity="actions.export")[0]
    assert (record.actor, record.target, record.details["tab"]) == ("bob", path.name, "pending")
    assert len(record.details["actions"]) == 1


def test_policy_and_air_setting_changes_are_audited(store):
    from workbench.air import dispatch
    from workbench.detect import policies
    from workbench.incidents import alerting

    policy = policies.load_policies()[0].id
    alerting.configure(store, policy, "carol", enabled=False)
    with pytest.raises(PermissionDenied):
        alerting.configure(store, policy, "bob", enabled=True)
    changed = audit.query(store, activity="policy.configure", newest_first=False)
    assert [(r.actor, r.target, r.result.value) for r in changed] == [("carol", policy, "ok"), ("bob", policy, "denied")]
    assert changed[0].details["before"]["enabled"] is True and changed[0].details["after"]["enabled"] is False

    dispatch.configure(store, actor="carol", max_running=3)
    dispatch.configure(store, actor="bob")  # reading the settings changes nothing: not audited
    air = audit.query(store, activity="air.configure")
    assert len(air) == 1 and air[0].details["after"]["max_running"] == 3 and air[0].actor == "carol"


def test_each_refusal_is_logged_once(store, tmp_path):
    from workbench.mail.maildir import MaildirMailStore
    from workbench.mail.search import SearchCriteria, search

    mail = MaildirMailStore(tmp_path / "maildir")
    mail.deliver("ann@contoso.test", b"Subject: Invoice\r\n\r\npay\r\n")
    with pytest.raises(PermissionDenied, match="remediation"):
        search(mail, SearchCriteria(subject="invoice"), actor="bob", roles=store, audit_store=store)
    refused = audit.query(store, result="denied")
    assert [(r.actor, r.activity) for r in refused] == [("bob", "mail.search")]
    assert "remediation" in refused[0].details["reason"]


def test_role_changes_commit_with_their_record(store):
    before = len(audit.query(store, activity="role.", limit=None))
    rbac.grant(store, ADMIN, "dan", Role.GLOBAL_READER)
    rbac.revoke(store, ADMIN, "dan", Role.GLOBAL_READER)
    with pytest.raises(NotFound):  # a failed revoke leaves no record
        rbac.revoke(store, ADMIN, "dan", Role.GLOBAL_READER)
    logged = audit.query(store, activity="role.", limit=None, newest_first=False)[before:]
    assert [(r.actor, r.activity, r.target) for r in logged] == [(ADMIN, "role.grant", "dan: Global Reader"),
                                                                 (ADMIN, "role.revoke", "dan: Global Reader")]
    assert audit.verify(store).ok


def test_audit_panel_refuses_without_a_security_role(tmp_path, monkeypatch):
    import ipywidgets as w

    from workbench.tenant import ensure
    from workbench.ui.audit import AuditPanel

    for name in ("WORKBENCH_DB_URL", "JUPYTERHUB_USER", "WORKBENCH_TRUSTED_HEADER"):
        monkeypatch.delenv(name, raising=False)
    tenant = ensure("au", base=tmp_path)
    s = open_store(tenant)
    rbac.bootstrap(s, ADMIN)
    rbac.grant(s, ADMIN, "pat", Role.PREVIEW)
    s.dispose()
    monkeypatch.setenv("WORKBENCH_USER", "pat")
    refused = AuditPanel.for_tenant(tenant)
    assert isinstance(refused, w.HTML) and "pat lacks the metadata read permission" in refused.value
    monkeypatch.setenv("WORKBENCH_USER", ADMIN)
    assert isinstance(AuditPanel.for_tenant(tenant), AuditPanel)
