"""Password-attack simulations against a real IMAP server on loopback: Debian's Dovecot, started
from a throwaway configuration with a passwd-file of directory users, some with a weak password
from the list and some with a strong one.

The spray finds exactly the weak accounts; the dictionary attack stops on an account once it
signs in; attempts are paced; the lockout guard stops below the directory's threshold; foreign
endpoints and accounts are refused before any connection; only simulation administrators may run
one; and no password, candidate or accepted, appears in the store, the result files, the audit
log, the log output or the result.

Skipped when Dovecot is missing (``apt-get install -y dovecot-imapd``); failed under CI=true.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from conftest import free_port
from workbench import audit, rbac
from workbench.errors import InputError, PermissionDenied
from workbench.lake import Lake
from workbench.rbac import Role
from workbench.simulator import password_config as pc
from workbench.simulator.password_attacks import (
    ACCEPTED_TEXT, AttackLimits, Mode, Outcome, dictionary_attack, imap_attempt, load_results, password_spray,
    results_dir, simulate)
from workbench.simulator.targets import directory
from workbench.store import open_store
from workbench.tenant import open_tenant, org_domains

pytestmark = pytest.mark.slow

DOVECOT_MISSING = "Dovecot not installed; run: apt-get install -y dovecot-imapd"
ADMIN, SIM_ADMIN, READER = "root", "simon", "rita"
WEAK_LIST = ["Passw0rd!", "Password1", "Summer2026!", "Welcome1", "Qwerty123"]  # the simulation's candidates
FAST = AttackLimits(min_interval=0, round_delay=0, timeout=10)


@dataclass(frozen=True)
class Accounts:
    weak: dict[str, str]  # account -> its (weak, listed) password
    strong: dict[str, str]  # account -> a strong password
    absent: str  # a directory user the IMAP server does not know

    @property
    def secrets(self) -> list[str]:
        return [*WEAK_LIST, *self.weak.values(), *self.strong.values()]


@dataclass(frozen=True)
class Dovecot:
    port: int  # plain and STARTTLS
    tls_port: int  # implicit TLS
    ca_file: Path  # the self-signed certificate both present
    accounts: Accounts

    @property
    def key(self) -> str:
        return f"imap://127.0.0.1:{self.port}"


def dovecot_unavailable(reason: str = DOVECOT_MISSING) -> None:
    """Skip with *reason*; under CI=true fail instead (never skip in CI)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def base_tenant(tmp_path_factory):
    from workbench.ingest.demo import generate

    base = tmp_path_factory.mktemp("pw-home")
    generate("pw", users=30, days=1, seed=5, end=date(2026, 11, 20), base=base, progress=False)
    return open_tenant("pw", base=base)


@pytest.fixture(scope="session")
def accounts(base_tenant) -> Accounts:
    emails = [e for e in directory(Lake.for_tenant(base_tenant))["email"].to_list()
              if e.rpartition("@")[2] in org_domains(base_tenant)]
    assert len(emails) >= 5
    return Accounts(weak={emails[0]: "Summer2026!", emails[1]: "Welcome1"},
                    strong={emails[2]: secrets.token_urlsafe(18), emails[3]: secrets.token_urlsafe(18)},
                    absent=emails[4])


def _service_users() -> tuple[str, str, str]:
    """(internal user, its group, login user) Dovecot drops privileges to."""
    import grp

    if os.geteuid() != 0:  # everything runs as the current user
        me = pwd.getpwuid(os.geteuid()).pw_name
        return me, grp.getgrgid(os.getegid()).gr_name, me
    names = {p.pw_name for p in pwd.getpwall()}
    internal = "dovecot" if "dovecot" in names else "nobody"
    group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
    return internal, group, "dovenull" if "dovenull" in names else "nobody"


def _config(root: Path, port: int, tls_port: int, users: Path) -> str:
    internal, group, login = _service_users()
    mail_uid = os.geteuid() or pwd.getpwnam("nobody").pw_uid
    mail_gid = os.getegid() if os.geteuid() else pwd.getpwnam("nobody").pw_gid
    return f"""\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users}
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/mail/%u
}}
# no chroot: an unprivileged user cannot chroot, and root gains nothing from it here
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
# no per-IP auth penalty (its anvil socket is off): the simulation paces itself
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def _self_signed(root: Path) -> None:
    """cert.pem / key.pem for 127.0.0.1 (the certificate is its own CA)."""
    done = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                           "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"), "-subj", "/CN=127.0.0.1",
                           "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True, text=True, timeout=60)
    if done.returncode:
        pytest.fail(f"openssl could not make a test certificate: {done.stderr[-500:]}", pytrace=False)


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    pytest.fail(f"Dovecot did not listen on 127.0.0.1:{port} (exit {proc.poll()}):\n{tail}", pytrace=False)


@pytest.fixture(scope="session")
def dovecot(request: pytest.FixtureRequest) -> Dovecot:
    exe = shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot",) if os.access(p, os.X_OK)), None)
    if exe is None:
        dovecot_unavailable()  # before the tenant is generated
    accounts: Accounts = request.getfixturevalue("accounts")
    root = Path(tempfile.mkdtemp(prefix="wb-dovecot-"))
    root.chmod(0o755)  # the unprivileged login and mail processes traverse it
    (root / "mail").mkdir(mode=0o777)
    (root / "mail").chmod(0o777)
    users = root / "users"
    users.write_text("".join(f"{a}:{{PLAIN}}{p}::::::nodelay=y\n"
                             for a, p in {**accounts.weak, **accounts.strong}.items()), encoding="utf-8")
    users.chmod(0o644)
    _self_signed(root)
    port, tls_port = free_port(), free_port()
    conf = root / "dovecot.conf"
    conf.write_text(_config(root, port, tls_port, users), encoding="utf-8")
    proc = subprocess.Popen([exe, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            env={**os.environ, "LC_ALL": "C"})
    try:
        _wait_for_port(port, proc, root / "dovecot.log")
        server = Dovecot(port, tls_port, root / "cert.pem", accounts)
        endpoint = pc.OwnEndpoint("127.0.0.1", port, "plain")
        imap_attempt(endpoint, "warm-up@invalid", "x", 10)  # the auth process's first start is slow
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tenant(base_tenant, tmp_path, monkeypatch, dovecot):
    for name in ("WORKBENCH_DB_URL", "JUPYTERHUB_USER", "WORKBENCH_TRUSTED_HEADER"):
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(base_tenant.root, tmp_path / "tenants" / "pw", ignore=shutil.ignore_patterns("workbench.sqlite*"))
    t = open_tenant("pw", base=tmp_path)
    store = open_store(t)
    rbac.bootstrap(store, ADMIN)
    rbac.grant(store, ADMIN, SIM_ADMIN, Role.ATTACK_SIMULATION_ADMINISTRATOR)
    rbac.grant(store, ADMIN, READER, Role.GLOBAL_READER)
    pc.configure(t, store, SIM_ADMIN, pc.PasswordAttackConfig(
        own_endpoints=(pc.OwnEndpoint("127.0.0.1", dovecot.port, "plain"),), lockout_threshold=10))
    yield t
    store.dispose()


@pytest.fixture
def store(tenant):
    s = open_store(tenant)
    yield s
    s.dispose()


class Spy:
    """An attempt function that records calls and passes them on to the real IMAP sign-in."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def __call__(self, endpoint, user, password, timeout):
        self.starts.append(time.monotonic())
        return imap_attempt(endpoint, user, password, timeout)


def test_spray_finds_exactly_the_weak_accounts(tenant, store, dovecot):
    acc = dovecot.accounts
    targets = [*acc.weak, *acc.strong]
    seen: list[tuple[int, int]] = []
    result = password_spray(tenant, store, SIM_ADMIN, targets, ["Welcome1", "Summer2026!"], endpoint=dovecot.key,
                            limits=AttackLimits(min_interval=0, round_delay=0.3, timeout=10),
                            progress=lambda d, t: seen.append((d, t)))
    assert set(result.accepted) == set(acc.weak)
    by = {o.account: o for o in result.outcomes}
    holder = {p: a for a, p in acc.weak.items()}
    assert by[holder["Welcome1"]].attempts == 1  # accepted in round 1, not tried again
    assert by[holder["Summer2026!"]].attempts == 2
    assert all(by[a].outcome is Outcome.NOT_ACCEPTED and by[a].attempts == 2 for a in acc.strong)
    assert result.attempts == 7 and result.accounts_tried == 4 and result.lockout_guard_hits == 0
    assert result.mode is Mode.SPRAY and result.endpoint == dovecot.key and not result.error
    assert seen[-1] == (8, 8) and [d for d, _ in seen] == list(range(1, 9))
    assert any(ACCEPTED_TEXT in o.describe() for o in result.outcomes)
    stored = load_results(tenant)
    assert [r.id for r in stored] == [result.id] and stored[0].accepted == result.accepted
    rec = audit.query(store, activity="simulator.password_attack", limit=1)[0]
    assert rec.actor == SIM_ADMIN and rec.result == "ok" and rec.target == dovecot.key
    assert rec.details["accepted"] == 2 and rec.details["attempts"] == 7 and rec.details["candidates"] == 2


def test_dictionary_stops_on_an_account_once_it_signs_in(tenant, store, dovecot):
    acc = dovecot.accounts
    weak = next(a for a, p in acc.weak.items() if p == "Summer2026!")  # entry 3 of 5
    strong = next(iter(acc.strong))
    spy = Spy()
    result = dictionary_attack(tenant, store, SIM_ADMIN, [weak, strong], WEAK_LIST, endpoint=dovecot.key,
                               limits=FAST, attempt=spy)
    by = {o.account: o for o in result.outcomes}
    assert result.accepted == (weak,)
    assert by[weak].outcome is Outcome.ACCEPTED and by[weak].attempts == 3 and by[weak].failures == 2
    assert by[strong].outcome is Outcome.NOT_ACCEPTED and by[strong].attempts == 5
    assert len(spy.starts) == result.attempts == 8


def test_attempts_are_paced(tenant, store, dovecot):
    spy = Spy()
    t0 = time.monotonic()
    result = dictionary_attack(tenant, store, SIM_ADMIN, [next(iter(dovecot.accounts.strong))], WEAK_LIST[:3],
                               endpoint=dovecot.key, limits=AttackLimits(min_interval=0.8, round_delay=0), attempt=spy)
    assert result.attempts == 3
    gaps = [b - a for a, b in zip(spy.starts, spy.starts[1:])]
    assert all(g >= 0.8 - 0.01 for g in gaps), gaps
    assert time.monotonic() - t0 >= 1.6 and result.duration >= 1.6


def test_the_lockout_guard_stops_below_the_threshold(tenant, store, dovecot):
    pc.save(tenant, pc.PasswordAttackConfig(own_endpoints=(pc.OwnEndpoint("127.0.0.1", dovecot.port, "plain"),),
                                            lockout_threshold=4))
    strong = next(iter(dovecot.accounts.strong))
    spy = Spy()
    result = dictionary_attack(tenant, store, SIM_ADMIN, [strong], WEAK_LIST, endpoint=dovecot.key,
                               limits=AttackLimits(min_interval=0, max_failures=2, round_delay=0), attempt=spy)
    (outcome,) = result.outcomes
    assert outcome.outcome is Outcome.LOCKOUT_GUARD and outcome.attempts == outcome.failures == 2
    assert result.lockout_guard_hits == 1 and len(spy.starts) == 2
    # the default guard stays two below the threshold; a limit at the threshold is refused
    default = dictionary_attack(tenant, store, SIM_ADMIN, [strong], WEAK_LIST, endpoint=dovecot.key, limits=FAST)
    assert default.attempts == 2 and default.lockout_guard_hits == 1
    with pytest.raises(InputError, match="would lock accounts out"):
        dictionary_attack(tenant, store, SIM_ADMIN, [strong], WEAK_LIST, endpoint=dovecot.key,
                          limits=AttackLimits(max_failures=4))


def test_an_endpoint_not_configured_as_own_is_refused_before_any_connection(tenant, store, dovecot):
    spy = Spy()
    weak = next(iter(dovecot.accounts.weak))
    with pytest.raises(InputError, match="not configured as the organisation's own endpoint"):
        password_spray(tenant, store, SIM_ADMIN, [weak], ["Welcome1"], endpoint=f"imap://127.0.0.1:{free_port()}",
                       attempt=spy)
    with pytest.raises(InputError, match="not configured as the organisation's own endpoint"):
        password_spray(tenant, store, SIM_ADMIN, [weak], ["Welcome1"], endpoint="imap://mail.example.com:993",
                       attempt=spy)
    pc.save(tenant, pc.PasswordAttackConfig())
    with pytest.raises(InputError, match="no own endpoint is configured"):
        password_spray(tenant, store, SIM_ADMIN, [weak], ["Welcome1"], attempt=spy)
    with pytest.raises(InputError, match="only allowed on a loopback address"):
        pc.OwnEndpoint("mail.example.com", 143, "plain")
    with pytest.raises(InputError, match="ldap is not supported"):
        pc.OwnEndpoint.from_dict({"protocol": "ldap", "host": "dc1.example.com"})
    assert spy.starts == [] and not results_dir(tenant).exists()
    refused = audit.query(store, activity="simulator.password_attack", result="failed")
    assert len(refused) == 3 and all("refused" in r.details for r in refused)


def test_accounts_outside_the_organisation_are_refused(tenant, store, dovecot):
    spy = Spy()
    weak = next(iter(dovecot.accounts.weak))
    stranger = f"nobody-{secrets.token_hex(3)}@{weak.rpartition('@')[2]}"  # the org's domain, not in the directory
    for outsider, why in (("victim@gmail.com", "not in the organisation's domains"),
                          (stranger, "not an enabled directory user")):
        with pytest.raises(InputError, match=why):
            password_spray(tenant, store, SIM_ADMIN, [weak, outsider], ["Welcome1"], endpoint=dovecot.key,
                           attempt=spy)
    assert spy.starts == []


def test_only_simulation_administrators_may_run_one(tenant, store, dovecot):
    spy = Spy()
    with pytest.raises(PermissionDenied):
        simulate(tenant, store, READER, mode="spray", accounts=list(dovecot.accounts.weak), passwords=["Welcome1"],
                 endpoint=dovecot.key, attempt=spy)
    assert spy.starts == []
    (rec,) = audit.query(store, activity="simulator.password_attack", user=READER)
    assert rec.result == "denied" and rec.target == dovecot.key
    with pytest.raises(PermissionDenied):
        pc.configure(tenant, store, READER, pc.PasswordAttackConfig())


def test_an_unreachable_endpoint_stops_the_run(tenant, store, dovecot):
    port = free_port()  # nothing listens there
    pc.save(tenant, pc.PasswordAttackConfig(own_endpoints=(pc.OwnEndpoint("127.0.0.1", port, "plain"),)))
    result = password_spray(tenant, store, SIM_ADMIN, list(dovecot.accounts.weak), ["Welcome1"], limits=FAST)
    assert result.error.startswith(f"cannot reach imap://127.0.0.1:{port}") and result.attempts == 0
    assert all(o.outcome is Outcome.NOT_TRIED for o in result.outcomes)
    assert audit.query(store, activity="simulator.password_attack", limit=1)[0].result == "failed"


def test_no_password_is_stored_logged_audited_or_shown(tenant, store, dovecot, caplog):
    caplog.set_level(logging.DEBUG)
    acc = dovecot.accounts
    results = [
        password_spray(tenant, store, SIM_ADMIN, [*acc.weak, *acc.strong, acc.absent], ["Welcome1", "Summer2026!"],
                       endpoint=dovecot.key, limits=FAST),
        dictionary_attack(tenant, store, SIM_ADMIN, [next(iter(acc.weak)), next(iter(acc.strong))], WEAK_LIST,
                          endpoint=dovecot.key, limits=FAST),
    ]
    assert all(r.accepted for r in results)
    assert "attempt 1 on" in caplog.text and "accepted a weak password" in caplog.text  # the log did see the run
    store.dispose()
    files = [p for p in Path(tenant.root).rglob("*") if p.is_file() and (
        p.name.startswith("workbench.sqlite") or p.parent == results_dir(tenant) or p.name == pc.CONFIG_FILE)]
    assert any(p.name == "workbench.sqlite" for p in files) and any(p.parent == results_dir(tenant) for p in files)
    blobs = {str(p): p.read_bytes() for p in files}
    records = audit.query(store, limit=None)
    texts = {"log": caplog.text, "audit": repr(records), "results": repr(results),
             "dicts": repr([r.to_dict() for r in results]), "described": repr([o.describe() for r in results
                                                                               for o in r.outcomes])}
    for secret in acc.secrets:
        for name, blob in blobs.items():
            assert secret.encode() not in blob, f"a password leaked into {name}"
        for name, text in texts.items():
            assert secret not in text, f"a password leaked into the {name}"


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_endpoints_verify_the_certificate(tenant, store, dovecot, security):
    acc = dovecot.accounts
    port = dovecot.tls_port if security == "tls" else dovecot.port
    key = f"imap://127.0.0.1:{port}"
    trusted = pc.OwnEndpoint("127.0.0.1", port, security, ca_file=str(dovecot.ca_file))
    pc.save(tenant, pc.PasswordAttackConfig(own_endpoints=(trusted,)))
    result = password_spray(tenant, store, SIM_ADMIN, [*acc.weak, *acc.strong], ["Welcome1", "Summer2026!"],
                            endpoint=key, limits=FAST)
    assert set(result.accepted) == set(acc.weak) and not result.error
    # without the organisation's CA the certificate is refused before any password is sent
    pc.save(tenant, pc.PasswordAttackConfig(own_endpoints=(pc.OwnEndpoint("127.0.0.1", port, security),)))
    result = password_spray(tenant, store, SIM_ADMIN, list(acc.weak), ["Welcome1"], endpoint=key, limits=FAST)
    assert result.attempts == 0 and "CERTIFICATE_VERIFY_FAILED" in result.error


@pytest.mark.parametrize("module", ["password_attacks", "password_config"])
def test_doctests(module: str) -> None:
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module(f"workbench.simulator.{module}")).failed == 0


def test_the_command_line(tenant, store, dovecot, tmp_path):
    from click.testing import CliRunner

    from workbench.cli import main

    acc = dovecot.accounts
    words = tmp_path / "words.txt"
    words.write_text("\n".join(["Welcome1", "Summer2026!"]) + "\n")
    where = ["--home", str(tenant.root.parent.parent), "--tenant", "pw"]

    def cli(user: str, *args: str):
        return CliRunner().invoke(main, ["simulator", *args, *where], env={"WORKBENCH_USER": user})

    saved = cli(SIM_ADMIN, "password-endpoint", "--imap", f"127.0.0.1:{dovecot.port}", "--security", "plain",
                "--lockout-threshold", "10")
    assert saved.exit_code == 0 and f"imap://127.0.0.1:{dovecot.port}" in saved.stdout, saved.stderr
    args = ["password-attack", "spray", *[x for a in [*acc.weak, *acc.strong] for x in ("--account", a)],
            "--passwords-file", str(words), "--interval", "0", "--round-delay", "0"]
    done = cli(SIM_ADMIN, *args)
    assert done.exit_code == 0, done.stderr
    assert "2 accepted a weak password" in done.stdout and done.stdout.count("accepted a weak password from") == 2
    assert not any(s in done.stdout + done.stderr for s in acc.secrets)
    refused = cli(READER, *args)
    assert refused.exit_code == 5 and refused.stderr.count("\n") == 1 and "simulation management" in refused.stderr
    other = cli(SIM_ADMIN, *args, "--endpoint", "imap://mail.elsewhere.example:993")
    assert other.exit_code == 2 and "own_endpoints" in other.stderr
