"""Simulation mail over real SMTP: smtplib sessions against the embedded aiosmtpd server on loopback."""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import logging
import shutil
import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import polars as pl
import pytest

from workbench.errors import InputError
from workbench.simulator.mail_server import DeliveryRefused, EmbeddedSmtpServer, serve_forever, tenant_delivery
from workbench.simulator.smtp import Backoff, Security, SendOutcome, SmtpSession, SmtpSettings

PASSWORD = "S3cret-Relay-Pa55"
SENDER = "it-support@contoso-sim.example"


def message(to: str = "alice@example.org", subject: str = "Password expiry notice", html: bool = False) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"IT Support <{SENDER}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="contoso-sim.example")
    msg["Date"] = "Fri, 20 Nov 2026 09:30:00 +0000"
    msg.set_content("Your password expires today.")
    if html:
        msg.add_alternative('<p>Your password expires today. <a href="http://127.0.0.1:9/c/tok">Keep it</a></p>',
                            subtype="html")
    return msg


class Collect:
    def __init__(self) -> None:
        self.items: list[tuple[bytes, str, list[str]]] = []

    def __call__(self, data: bytes, mail_from: str, recipients: list[str]) -> None:
        self.items.append((data, mail_from, recipients))


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost/127.0.0.1 (PEM cert, PEM key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "workbench test relay")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "relay.pem", folder / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
def server_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*map(str, tls_files))
    return ctx


def free_closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- settings and backoff -----------------------------------------------------------------------


def test_settings_round_trip_and_validation() -> None:
    s = SmtpSettings.from_dict({"host": "relay.example.org", "port": 587, "security": "STARTTLS",
                                "username": "sim", "password_env": "SIM_SMTP_PASSWORD"})
    assert s.security is Security.STARTTLS and s.timeout == 30.0 and s.verify_tls and s.ca_file is None
    assert SmtpSettings.from_dict(s.to_dict()) == s
    assert "password" not in s.to_dict() and s.to_dict()["security"] == "starttls"
    bad = [
        ({"host": "h", "port": 0}, "port"), ({"host": "h", "port": 70000}, "port"),
        ({"host": "h", "security": "tls"}, "security"), ({"host": "h", "username": "u"}, "password_env"),
        ({"host": "h", "password": PASSWORD}, "password_env"), ({"host": "h", "colour": 1}, "colour"),
        ({"port": 25}, "host"), ({"host": "h", "timeout": 0}, "timeout"),
        ({"host": "h", "username": "u", "password_env": "not a name"}, "password_env"),
    ]
    for data, field in bad:
        with pytest.raises(InputError, match=field) as info:
            SmtpSettings.from_dict(data)
        assert "\n" not in str(info.value) and PASSWORD not in str(info.value)


def test_unset_password_env_and_missing_ca_file_raise_before_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIM_SMTP_UNSET", raising=False)
    with pytest.raises(InputError, match="SIM_SMTP_UNSET.*not set"):
        with SmtpSession(SmtpSettings("127.0.0.1", 25, username="u", password_env="SIM_SMTP_UNSET")):
            pass
    with pytest.raises(InputError, match="ca_file"):
        with SmtpSession(SmtpSettings("127.0.0.1", 25, security="starttls", ca_file="/nonexistent/ca.pem")):
            pass


def test_backoff_delays_and_exhaustion() -> None:
    b = Backoff()
    assert [b.delay(n) for n in range(1, 9)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert not b.exhausted(5) and b.exhausted(6) and b.exhausted(7)
    assert Backoff(base_seconds=1, factor=1.5, max_seconds=10).delay(3) == 2.25
    with pytest.raises(InputError):
        b.delay(0)
    with pytest.raises(InputError, match="factor"):
        Backoff(factor=0.5)


# -- sending ------------------------------------------------------------------------------------


def test_plain_send_many_on_one_connection_and_reconnect() -> None:
    got = Collect()
    with EmbeddedSmtpServer(got) as server, SmtpSession(SmtpSettings("127.0.0.1", server.port)) as session:
        first = session.send(message("alice@example.org"), envelope_from=SENDER, recipient="alice@example.org")
        second = session.send(message("bob@example.org"), envelope_from=SENDER, recipient="bob@example.org")
        session._smtp.close()  # the connection is gone (as when a server drops an idle client)
        third = session.send(message("carol@example.org"), envelope_from=SENDER, recipient="carol@example.org")
    assert [r.outcome for r in (first, second, third)] == [SendOutcome.SENT] * 3
    assert first.code == 250 and "alice@example.org" in first.detail
    assert [(frm, rcpts) for _, frm, rcpts in got.items] == [
        (SENDER, ["alice@example.org"]), (SENDER, ["bob@example.org"]), (SENDER, ["carol@example.org"])]
    data = got.items[0][0]
    assert data.startswith(b"Received: from ") and b"[127.0.0.1]" in data.split(b"\r\n\r\n")[0]
    assert b"for <alice@example.org>" in data and b"Subject: Password expiry notice" in data


def test_starttls_with_ca_file_is_sent_and_without_it_fails_permanently(server_tls: ssl.SSLContext,
                                                                         tls_files: tuple[Path, Path]) -> None:
    got = Collect()
    with EmbeddedSmtpServer(got, tls_context=server_tls) as server:
        settings = SmtpSettings("127.0.0.1", server.port, security="starttls", ca_file=str(tls_files[0]))
        with SmtpSession(settings) as session:
            ok = session.send(message(), envelope_from=SENDER, recipient="alice@example.org")
        with SmtpSession(SmtpSettings("127.0.0.1", server.port, security="starttls")) as session:
            untrusted = session.send(message(), envelope_from=SENDER, recipient="alice@example.org")
            again = session.send(message(), envelope_from=SENDER, recipient="bob@example.org")
    assert ok.sent, ok.detail
    assert b"with ESMTPS id" in got.items[0][0]
    assert untrusted.outcome is SendOutcome.PERMANENT and again == untrusted
    assert "ca_file" in untrusted.detail and "verify_tls" in untrusted.detail and "\n" not in untrusted.detail
    assert len(got.items) == 1


def test_implicit_tls(server_tls: ssl.SSLContext, tls_files: tuple[Path, Path]) -> None:
    got = Collect()
    with EmbeddedSmtpServer(got, ssl_context=server_tls) as server:
        settings = SmtpSettings("127.0.0.1", server.port, security="ssl", ca_file=str(tls_files[0]))
        with SmtpSession(settings) as session:
            ok = session.send(message(), envelope_from=SENDER, recipient="alice@example.org")
        with SmtpSession(SmtpSettings("127.0.0.1", server.port, security="none", timeout=0.5)) as session:
            plain = session.send(message(), envelope_from=SENDER, recipient="alice@example.org")
    assert ok.sent, ok.detail
    assert b"with ESMTPS id" in got.items[0][0] and len(got.items) == 1
    assert plain.outcome is SendOutcome.TEMPORARY  # a plain client gets no greeting from a TLS port


def test_starttls_against_a_server_without_it_is_permanent() -> None:
    with EmbeddedSmtpServer(Collect()) as server:
        with SmtpSession(SmtpSettings("127.0.0.1", server.port, security="starttls")) as session:
            result = session.send(message(), envelope_from=SENDER, recipient="alice@example.org")
    assert result.outcome is SendOutcome.PERMANENT and "STARTTLS" in result.detail


def test_auth_right_and_wrong_password_never_leak(server_tls: ssl.SSLContext, tls_files: tuple[Path, Path],
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    got = Collect()
    wrong = "Wrong-" + PASSWORD
    results = []
    with EmbeddedSmtpServer(got, tls_context=server_tls, auth={"simulator": PASSWORD}) as server:
        base = dict(host="127.0.0.1", port=server.port, security="starttls", ca_file=str(tls_files[0]),
                    username="simulator", password_env="SIM_SMTP_PASSWORD")
        settings = SmtpSettings.from_dict(base)
        monkeypatch.setenv("SIM_SMTP_PASSWORD", PASSWORD)
        with SmtpSession(settings) as session:
            results.append(session.send(message(), envelope_from=SENDER, recipient="alice@example.org"))
        monkeypatch.setenv("SIM_SMTP_PASSWORD", wrong)
        with SmtpSession(settings) as session:
            results.append(session.send(message(), envelope_from=SENDER, recipient="alice@example.org"))
        with SmtpSession(SmtpSettings("127.0.0.1", server.port, security="starttls", ca_file=str(tls_files[0]))) as s:
            results.append(s.send(message(), envelope_from=SENDER, recipient="alice@example.org"))  # no AUTH at all
        monkeypatch.delenv("SIM_SMTP_PASSWORD")
        with pytest.raises(InputError) as unset:
            with SmtpSession(settings):
                pass
    ok, denied, anonymous = results
    assert ok.sent, ok.detail
    assert b"with ESMTPSA id" in got.items[0][0] and len(got.items) == 1
    assert denied.outcome is SendOutcome.PERMANENT and denied.code == 535
    assert "username" in denied.detail and "SIM_SMTP_PASSWORD" in denied.detail
    assert anonymous.outcome is SendOutcome.PERMANENT and anonymous.code == 530
    text = " ".join([*(repr(r) for r in results), str(unset.value), caplog.text, repr(settings.to_dict())])
    for secret in (PASSWORD, wrong):
        assert secret not in text


def test_policy_refusals_are_temporary_or_permanent_and_retry_succeeds() -> None:
    attempts: dict[str, int] = {}

    def policy(mail_from: str, recipient: str) -> str | None:
        attempts[recipient] = attempts.get(recipient, 0) + 1
        if recipient.startswith("busy") and attempts[recipient] == 1:
            return "451 4.3.0 try again later"
        if recipient.startswith("nobody"):
            return "550 5.1.1 no such user"
        return None

    got = Collect()
    with EmbeddedSmtpServer(got, policy=policy) as server, SmtpSession(SmtpSettings("127.0.0.1", server.port)) as s:
        busy = s.send(message("busy@example.org"), envelope_from=SENDER, recipient="busy@example.org")
        nobody = s.send(message("nobody@example.org"), envelope_from=SENDER, recipient="nobody@example.org")
        retried = s.send(message("busy@example.org"), envelope_from=SENDER, recipient="busy@example.org")
    assert (busy.outcome, busy.code) == (SendOutcome.TEMPORARY, 451) and "try again later" in busy.detail
    assert (nobody.outcome, nobody.code) == (SendOutcome.PERMANENT, 550) and "no such user" in nobody.detail
    assert retried.sent and attempts == {"busy@example.org": 2, "nobody@example.org": 1}
    assert [rcpts for _, _, rcpts in got.items] == [["busy@example.org"]]


def test_delivery_failures_answer_451_or_the_refusal() -> None:
    def failing(data: bytes, mail_from: str, recipients: list[str]) -> None:
        if "refuse" in recipients[0]:
            raise DeliveryRefused("554 5.6.0 not a message")
        raise RuntimeError("lake is\nbusy")

    with EmbeddedSmtpServer(failing) as server, SmtpSession(SmtpSettings("127.0.0.1", server.port)) as s:
        busy = s.send(message(), envelope_from=SENDER, recipient="alice@example.org")
        refused = s.send(message(), envelope_from=SENDER, recipient="refuse@example.org")
    assert (busy.outcome, busy.code) == (SendOutcome.TEMPORARY, 451) and "lake is busy" in busy.detail
    assert (refused.outcome, refused.code) == (SendOutcome.PERMANENT, 554)


def test_nothing_listening_is_temporary_and_remembered() -> None:
    port = free_closed_port()
    with SmtpSession(SmtpSettings("127.0.0.1", port, timeout=5)) as session:
        first = session.send(message(), envelope_from=SENDER, recipient="alice@example.org")
        assert session.broken == first
    assert first.outcome is SendOutcome.TEMPORARY and first.code is None
    assert f"127.0.0.1:{port}" in first.detail and "\n" not in first.detail


def test_silent_server_times_out_as_temporary() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the connection in the backlog, never greets
        settings = SmtpSettings("127.0.0.1", silent.getsockname()[1], timeout=0.5)
        with SmtpSession(settings) as session:
            result = session.send(message(), envelope_from=SENDER, recipient="alice@example.org")
    assert result.outcome is SendOutcome.TEMPORARY and "no answer" in result.detail and "0.5 s" in result.detail


def test_serve_forever_prints_where_it_listens() -> None:
    out, stop = io.StringIO(), threading.Event()
    thread = threading.Thread(target=serve_forever, args=(Collect(),), kwargs=dict(port=0, out=out, stop=stop))
    thread.start()
    try:
        for _ in range(100):
            if "listening" in out.getvalue():
                break
            threading.Event().wait(0.05)
        port = int(out.getvalue().split("127.0.0.1:")[1].split(";")[0].split()[0])
        with SmtpSession(SmtpSettings("127.0.0.1", port)) as s:
            assert s.send(message(), envelope_from=SENDER, recipient="alice@example.org").sent
    finally:
        stop.set()
        thread.join(10)
    assert "stopped" in out.getvalue()


# -- delivery into a tenant ---------------------------------------------------------------------


@pytest.fixture
def tenant_copy(small_tenant, tmp_path: Path):
    from workbench.tenant import open_tenant

    dest = tmp_path / "tenants" / small_tenant.name
    shutil.copytree(small_tenant.root, dest, ignore=shutil.ignore_patterns("workbench.sqlite*"))
    return open_tenant(str(dest))


@pytest.mark.slow
def test_tenant_delivery_lands_in_the_inbox_and_the_lake(tenant_copy) -> None:
    from workbench.enums import Folder
    from workbench.lake import Lake
    from workbench.mail.embedded import EmbeddedMailStore

    lake = Lake.for_tenant(tenant_copy)
    users = lake.scan("IdentityInfo", columns=["AccountUpn"]).collect()["AccountUpn"].drop_nulls().unique(
        maintain_order=True).to_list()
    user, other, third = users[:3]
    msg = message(user, subject="Action required: verify your mailbox", html=True)
    shared = message(f"{other}, {third}", subject="Team update")
    with EmbeddedSmtpServer(tenant_delivery(tenant_copy)) as server:
        with SmtpSession(SmtpSettings("127.0.0.1", server.port)) as session:
            result = session.send(msg, envelope_from=SENDER, recipient=user)
            again = session.send(msg, envelope_from=SENDER, recipient=user)  # a retry of the same message
        with smtplib.SMTP("127.0.0.1", server.port) as client:  # one DATA for two recipients
            assert client.send_message(shared, from_addr=SENDER, to_addrs=[other, third.upper()]) == {}
    assert result.sent and again.sent, (result.detail, again.detail)

    both = lake.scan("EmailEvents").collect().filter(pl.col("InternetMessageId") == shared["Message-ID"])
    assert both.height == 2 and both["NetworkMessageId"].n_unique() == 1
    with EmbeddedMailStore.for_tenant(tenant_copy) as store:
        for mailbox in (other, third):
            assert both["NetworkMessageId"][0] in store.messages_in(mailbox, Folder.INBOX)

    events = lake.scan("EmailEvents").collect().filter(pl.col("InternetMessageId") == msg["Message-ID"])
    assert events.height == 1  # one row for the one recipient, the retry added nothing
    row = events.row(0, named=True)
    assert row["RecipientEmailAddress"].lower() == user.lower()
    assert row["Subject"] == "Action required: verify your mailbox"
    assert row["SenderMailFromAddress"] == SENDER and row["DeliveryLocation"] == "Inbox/folder"
    assert row["UrlCount"] == 1
    with EmbeddedMailStore.for_tenant(tenant_copy) as store:
        inbox = store.messages_in(user, Folder.INBOX)
        assert row["NetworkMessageId"] in inbox
        raw = store.raw(row["NetworkMessageId"])
    assert b"Received: from " in raw and b"by " in raw and b"(workbench embedded SMTP)" in raw
