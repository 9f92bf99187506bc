"""SIEM transports and at-least-once delivery against real receivers on loopback: Debian's rsyslogd
(RFC 5424 over UDP and octet-counted TCP, written to a file) and a stdlib HTTP server that checks
the Splunk HEC token / the webhook HMAC and records event ids.

The rsyslog tests skip when rsyslogd is missing (``apt-get install -y rsyslog``; ``make test``
installs it); under CI=true they fail instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import free_port

from workbench import audit
from workbench.errors import ConflictError, InputError, PermissionDenied
from workbench.rbac import Role, bootstrap, grant
from workbench.siem import delivery as dv
from workbench.siem import transports as tr
from workbench.simulator.smtp import Backoff
from workbench.store import open_store

RSYSLOG_MISSING = "rsyslogd not installed; run: apt-get install -y rsyslog"
FAST = Backoff(base_seconds=0.01, factor=1.0, max_seconds=0.01, max_attempts=3)
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TOKEN, SECRET = "hec-token-0123", "webhook-secret-4567"


@dataclass(frozen=True)
class Ev:
    source: str
    id: str
    time: datetime
    data: dict = field(default_factory=dict, hash=False)


def make_events(n: int, sources: tuple[str, ...] = ("mail", "air", "audit")) -> list[Ev]:
    """*n* events over *sources*, in (time, id) order per source (and overall)."""
    sev = ["high", "medium", "low", "informational"]
    return [Ev(sources[i % len(sources)], f"ev-{i:05d}", T0 + timedelta(seconds=i),
               {"Operation": "TIMailData", "n": i, "severity": sev[i % 4]}) for i in range(n)]


def fmt(ev: Ev) -> dict:
    return {"Id": ev.id, "CreationTime": ev.time.isoformat(), **ev.data}


@pytest.fixture
def store(tmp_path):
    s = open_store(url=f"sqlite:///{tmp_path / 'wb.sqlite'}")
    yield s
    s.dispose()


def run(store, dest, events, tmp_path, **kw) -> dv.DeliveryReport:
    kw.setdefault("backoff", FAST)
    kw.setdefault("formatter", fmt)
    return dv.deliver(store, dest, events, dead_letter_dir=tmp_path / "dead", **kw)


def last_of_each_source(events: list[Ev]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for ev in events:
        out[ev.source] = (tr.iso(ev.time), ev.id)
    return out


# ------------------------------------------------------------------ rsyslog


@dataclass
class Rsyslog:
    exe: str
    root: Path
    tcp_port: int
    udp_port: int
    proc: subprocess.Popen | None = None

    @property
    def out(self) -> Path:
        return self.root / "messages.log"

    def start(self) -> None:
        conf = self.root / "rsyslog.conf"
        conf.write_text(f"""
global(workDirectory="{self.root / 'work'}" maxMessageSize="64k")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" port="{self.tcp_port}" address="127.0.0.1" supportOctetCountedFraming="on")
input(type="imudp" port="{self.udp_port}" address="127.0.0.1")
template(name="fields" type="string"
         string="%pri%|%protocol-version%|%app-name%|%msgid%|%structured-data%|%msg%\\n")
action(type="omfile" file="{self.out}" template="fields")
""")
        (self.root / "work").mkdir(exist_ok=True)
        log = (self.root / "rsyslogd.log").open("ab")
        self.proc = subprocess.Popen([self.exe, "-n", "-f", str(conf), "-i", str(self.root / "rsyslogd.pid")],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"rsyslogd exited ({self.proc.returncode}): "
                            f"{(self.root / 'rsyslogd.log').read_text(errors='replace')[-2000:]}", pytrace=False)
            try:
                with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail("rsyslogd did not listen within 20 s", pytrace=False)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def lines(self) -> list[str]:
        return self.out.read_text(errors="replace").splitlines() if self.out.exists() else []

    def ids(self) -> list[str]:
        return [m.group(1) for line in self.lines() for m in [re.search(r' id="([^"]+)"', line)] if m]

    def wait_for(self, expected: set[str], timeout: float = 30) -> set[str]:
        deadline = time.monotonic() + timeout
        got: set[str] = set()
        while time.monotonic() < deadline:
            got = set(self.ids())
            if expected <= got:
                break
            time.sleep(0.1)
        return got


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def rsyslog() -> Iterator[Rsyslog]:
    exe = shutil.which("rsyslogd") or next((p for p in ("/usr/sbin/rsyslogd",) if os.access(p, os.X_OK)), None)
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(RSYSLOG_MISSING, pytrace=False)
        pytest.skip(RSYSLOG_MISSING)
    server = Rsyslog(exe, Path(tempfile.mkdtemp(prefix="wb-rsyslog-")), free_port(), free_udp_port())
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


# ------------------------------------------------------------------ HTTP collector


class Collector:
    """A loopback HEC + webhook collector: checks credentials, records ids, can reject poison ids."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.ids: list[str] = []
        self.batches = 0
        self.poison: set[str] = set()
        self.bodies: list[dict] = []
        self.server: ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/services/collector/event":
                    if self.headers.get("Authorization") != f"Splunk {TOKEN}":
                        return self.reply(403, {"text": "Invalid token", "code": 4})
                    events, pos, dec = [], 0, json.JSONDecoder()
                    text = body.decode()
                    while pos < len(text):
                        obj, pos = dec.raw_decode(text, pos)
                        events.append(obj)
                    for e in events:
                        assert {"time", "event", "sourcetype"} <= set(e)
                    ids = [e["fields"]["workbench_id"] for e in events]
                elif self.path == "/hook":
                    stamp = self.headers.get("X-Workbench-Timestamp", "")
                    mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
                    if not hmac.compare_digest(self.headers.get("X-Workbench-Signature", ""), f"sha256={mac}"):
                        return self.reply(401, {"error": "bad signature"})
                    if abs(time.time() - int(stamp)) > 300:
                        return self.reply(401, {"error": "stale"})
                    events = json.loads(body)["events"]
                    ids = [e["id"] for e in events]
                else:
                    return self.reply(404, {"error": "no such path"})
                if collector.poison & set(ids):
                    return self.reply(400, {"text": "Invalid data format", "code": 6})
                collector.ids.extend(ids)
                collector.bodies.extend(events)
                collector.batches += 1
                self.reply(200, {"text": "Success", "code": 0})

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def collector(monkeypatch) -> Iterator[Collector]:
    monkeypatch.setenv("WB_TEST_HEC_TOKEN", TOKEN)
    monkeypatch.setenv("WB_TEST_HOOK_SECRET", SECRET)
    c = Collector()
    yield c
    c.stop()


def hec(collector: Collector, name: str = "splunk") -> dv.Destination:
    return dv.Destination(name, "o365", "hec", {"url": collector.url, "token_env": "WB_TEST_HEC_TOKEN"})


def hook(collector: Collector, name: str = "hook") -> dv.Destination:
    return dv.Destination(name, "ocsf", "webhook", {"url": collector.url + "/hook", "secret_env": "WB_TEST_HOOK_SECRET"})


# ------------------------------------------------------------------ receiver restarts (the at-least-once proof)


def restart_test(store, dest, events, tmp_path, stop_receiver, start_receiver, received_ids) -> None:
    """Deliver, stop the receiver after 3 confirmed batches, check nothing advanced past the last
    confirmed batch, restart it, deliver again: every id arrives, the checkpoint reaches the end."""
    confirmed: list[dv.DeliveryReport] = []

    def progress(rep: dv.DeliveryReport) -> None:
        confirmed.append(rep)
        if len(confirmed) == 3:
            stop_receiver()

    first = run(store, dest, events, tmp_path, batch_size=20, progress=progress)
    assert first.delivered == 60 and first.batches == 3 and first.pending == len(events) - 60
    assert first.error and "refused" in first.error and "\n" not in first.error and not first.fatal
    assert first.retries == FAST.max_attempts - 1
    assert dv.checkpoint(store, dest.name) == {s: (datetime.fromisoformat(tm.replace("Z", "+00:00")), i)
                                               for s, (tm, i) in last_of_each_source(events[:60]).items()}
    assert set(events[i].id for i in range(60)) <= set(received_ids())  # what was confirmed was received

    start_receiver()
    second = run(store, dest, events, tmp_path, batch_size=20)
    assert second.complete and second.skipped == 60 and second.delivered == len(events) - 60
    assert dict(second.checkpoint) == last_of_each_source(events)
    assert not (tmp_path / "dead").exists()
    return None


def test_syslog_tcp_receiver_restart_loses_nothing(store, tmp_path, rsyslog):
    events = make_events(300)
    dest = dv.Destination("rsyslog-tcp", "cef", "syslog-tcp", {"host": "127.0.0.1", "port": rsyslog.tcp_port})
    restart_test(store, dest, events, tmp_path, rsyslog.stop, rsyslog.start, rsyslog.ids)
    got = rsyslog.wait_for({e.id for e in events})
    assert got == {e.id for e in events}  # every id at least once (duplicates allowed)
    # rsyslog parsed our RFC 5424 header: PRI (local0 + severity), version 1, app-name, msgid = source
    first = next(line for line in rsyslog.lines() if 'id="ev-00000"' in line)
    pri, version, app, msgid, sd, msg = first.split("|", 5)
    assert (pri, version, app, msgid) == (str(16 * 8 + 3), "1", "workbench", "mail")  # high -> error (3)
    assert sd == '[workbench@32473 id="ev-00000" source="mail"]'
    assert json.loads(msg)["Id"] == "ev-00000"


@pytest.mark.parametrize("kind", ["hec", "webhook"])
def test_http_receiver_restart_loses_nothing(store, tmp_path, collector, kind):
    events = make_events(300)
    dest = hec(collector) if kind == "hec" else hook(collector)
    restart_test(store, dest, events, tmp_path, collector.stop, collector.start, lambda: collector.ids)
    assert set(collector.ids) == {e.id for e in events}


# ------------------------------------------------------------------ syslog details


def test_syslog_udp_delivers_and_truncates_below_64k(store, tmp_path, rsyslog):
    events = make_events(40) + [Ev("mail", "ev-big", T0 + timedelta(hours=1), {"blob": "é" * 60_000})]
    dest = dv.Destination("rsyslog-udp", "o365", "syslog-udp",
                          {"host": "127.0.0.1", "port": rsyslog.udp_port, "facility": "local4"})
    rep = run(store, dest, events, tmp_path, batch_size=10)
    assert rep.complete and rep.delivered == 41
    assert rsyslog.wait_for({e.id for e in events}) == {e.id for e in events}
    big = next(line for line in rsyslog.lines() if 'id="ev-big"' in line)
    assert big.split("|")[0] == str(20 * 8 + 6)
    assert len(big.encode()) <= tr.UDP_MAX


def test_syslog_framing_and_truncation_units():
    p = tr.Payload('a"]\\b', "mail", T0, "CEF:0|x|y|1|2|n|5|msg=line1\nline2", tr.Severity.WARNING)
    msg = tr.syslog_message(p, facility=1, hostname="host name", procid="9")
    assert msg == ('<12>1 2026-11-20T08:00:00Z hostname workbench 9 mail '
                   '[workbench@32473 id="a\\"\\]\\\\b" source="mail"] CEF:0|x|y|1|2|n|5|msg=line1 line2')
    data = "ü".encode() * 10
    assert tr.truncate_utf8(data, 5) == "ü".encode() * 2 and tr.truncate_utf8(data, 100) == data
    frame = tr.octet_frame("é".encode())
    assert frame == b"2 \xc3\xa9"


# ------------------------------------------------------------------ errors and dead letters


def test_refused_connection_is_a_clear_temporary_failure():
    port = free_port()  # nothing listens there
    with pytest.raises(tr.TemporaryFailure) as exc:
        tr.SyslogTcp("127.0.0.1", port, timeout=2).send([tr.Payload("1", "s", T0, {})])
    assert str(exc.value) == (f"syslog-tcp 127.0.0.1:{port} refused the connection; start the receiver or "
                              "fix host/port (will retry)")
    with pytest.raises(tr.TemporaryFailure, match=f"^hec http://127.0.0.1:{port}/services/collector/event refused"):
        tr.HttpHec(f"http://127.0.0.1:{port}", token_env="HOME").send([tr.Payload("1", "s", T0, {})])


def test_a_receiver_dropping_the_connection_mid_batch_is_not_a_confirmation():
    """TCP syslog counts a batch as delivered only when the receiver read it to the end and closed."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def drop() -> None:
            conn, _ = server.accept()
            conn.recv(100)
            conn.close()  # unread data left: the kernel resets the connection

        thread = threading.Thread(target=drop, daemon=True)
        thread.start()
        batch = [tr.Payload(f"e{i}", "mail", T0, {"pad": "x" * 1000}) for i in range(2000)]
        with pytest.raises(tr.TemporaryFailure, match=f"^syslog-tcp 127.0.0.1:{port} dropped the connection before confirming"):
            tr.SyslogTcp("127.0.0.1", port, timeout=5).send(batch)
        thread.join(5)


@pytest.mark.parametrize(("transport", "settings", "message"), [
    ("hec", {"url": "ftp://splunk:8088", "token_env": "T"}, "must start with http:// or https://"),
    ("hec", {"url": "https://", "token_env": "T"}, "has no host"),
    ("hec", {"url": "splunk:8088", "token_env": "T"}, "must start with http"),
    ("hec", {"url": "https://splunk:99999", "token_env": "T"}, "bad port"),
    ("hec", {"url": "https://splunk:8088"}, "settings need token_env"),
    ("hec", {"url": "https://splunk:8088", "token": "abc"}, "never hold secrets"),
    ("hec", {"url": "https://splunk:8088", "token_env": "my token"}, "not an environment variable name"),
    ("webhook", {"url": "https://h/x", "secret_env": "S", "colour": 1}, "unknown webhook setting"),
    ("syslog-tcp", {"port": 514}, "settings need host"),
    ("syslog-tcp", {"host": "127.0.0.1", "port": 70000}, "out of range"),
    ("syslog-udp", {"host": "127.0.0.1", "facility": "local9"}, "unknown syslog facility"),
    ("carrier-pigeon", {}, "unknown transport"),
])
def test_malformed_configuration_is_one_clear_line(transport, settings, message):
    with pytest.raises(InputError, match=message) as exc:
        dv.Destination("bad", "o365", transport, settings)
    assert "\n" not in str(exc.value) and ("; " in str(exc.value) or "use " in str(exc.value))


def test_bad_format_and_name():
    with pytest.raises(InputError, match="unknown format 'leef'; use one of o365, ocsf, cef"):
        dv.Destination("x", "leef", "file", {"path": "/tmp/x"})
    with pytest.raises(InputError, match="destination name"):
        dv.Destination("no spaces", "cef", "file", {"path": "/tmp/x"})


def test_missing_secret_fails_before_anything_is_sent(store, tmp_path, collector, monkeypatch):
    monkeypatch.delenv("WB_TEST_HEC_TOKEN")
    with pytest.raises(InputError, match="environment variable WB_TEST_HEC_TOKEN .* is not set"):
        run(store, hec(collector), make_events(5), tmp_path)
    assert collector.ids == [] and dv.checkpoint(store, "splunk") == {}


def test_permanent_400_dead_letters_only_the_poison_event(store, tmp_path, collector):
    events = make_events(100)
    collector.poison = {"ev-00042"}
    rep = run(store, hec(collector), events, tmp_path, batch_size=20)
    assert rep.complete and rep.dead_lettered == 1 and rep.delivered == 99
    assert set(collector.ids) == {e.id for e in events} - {"ev-00042"}
    lines = [json.loads(x) for x in (tmp_path / "dead" / "splunk.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["ev-00042"]
    assert "rejected the batch (400)" in lines[0]["reason"] and lines[0]["record"]["Id"] == "ev-00042"
    assert dict(rep.checkpoint) == last_of_each_source(events)


def test_unformattable_event_is_dead_lettered_and_skipped_events_advance(store, tmp_path, collector):
    events = make_events(30)

    def picky(ev: Ev):
        if ev.id == "ev-00007":
            raise ValueError("no CreationTime")
        return None if ev.source == "audit" else fmt(ev)

    rep = run(store, hook(collector), events, tmp_path, batch_size=8, formatter=picky)
    assert rep.complete and rep.dead_lettered == 1 and rep.skipped == 10
    assert rep.delivered == 19 and len(set(collector.ids)) == 19
    line = json.loads((tmp_path / "dead" / "hook.jsonl").read_text())
    assert line["id"] == "ev-00007" and "ValueError: no CreationTime" in line["reason"]
    assert dict(rep.checkpoint) == last_of_each_source(events)


def test_wrong_credentials_stop_without_dead_lettering(store, tmp_path, collector, monkeypatch):
    monkeypatch.setenv("WB_TEST_HEC_TOKEN", "wrong")
    rep = run(store, hec(collector), make_events(50), tmp_path, batch_size=20)
    assert rep.fatal and rep.pending == 50 and rep.delivered == 0 and "refused the credentials (403)" in rep.error
    assert dv.checkpoint(store, "splunk") == {} and not (tmp_path / "dead").exists()


# ------------------------------------------------------------------ never past undelivered events


class Flaky:
    """A transport that fails at random (temporarily); records what it accepted."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.got: list[str] = []

    def check(self) -> None:
        pass

    def send(self, batch) -> None:
        if self.rng.random() < 0.4:
            raise tr.TemporaryFailure("flaky; try again")
        self.got.extend(p.id for p in batch)


def test_checkpoint_never_passes_an_undelivered_event(store, tmp_path):
    events = make_events(200)
    flaky = Flaky(7)
    dest = dv.Destination("flaky", "o365", "file", {"path": str(tmp_path / "unused.jsonl")})
    order = {e.id: n for n, e in enumerate(events)}

    def check(rep: dv.DeliveryReport) -> None:
        for source, (_, last) in rep.checkpoint.items():
            upto = [e.id for e in events[:order[last] + 1] if e.source == source]
            assert set(upto) <= set(flaky.got)

    rounds = 0
    while True:
        rounds += 1
        rep = run(store, dest, events, tmp_path, batch_size=7, transport=flaky, progress=check,
                  backoff=Backoff(base_seconds=0, factor=1, max_seconds=0, max_attempts=2))
        if rep.complete:
            break
        assert rep.pending > 0 and rounds < 100
    assert rounds > 1 and set(flaky.got) == {e.id for e in events}


def test_file_transport_appends_json_lines(store, tmp_path):
    dest = dv.Destination("file", "o365", "file", {"path": str(tmp_path / "out.jsonl")})
    events = make_events(25)
    assert run(store, dest, events, tmp_path, batch_size=10).delivered == 25
    assert run(store, dest, events, tmp_path).skipped == 25  # nothing sent twice after a confirmed run
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [e.id for e in events] and lines[0]["record"]["Id"] == "ev-00000"


def test_stream_follows_new_events(store, tmp_path):
    dest = dv.Destination("file", "cef", "file", {"path": str(tmp_path / "out.jsonl")})
    lake = make_events(10)
    stop = threading.Event()
    rounds: list[dv.DeliveryReport] = []

    def source(since):
        return [e for e in lake if since.get(e.source) is None or (e.time, e.id) > since[e.source]]

    def on_round(rep: dv.DeliveryReport) -> None:
        rounds.append(rep)
        if len(rounds) == 1:
            lake.extend(make_events(15)[10:])
        elif len(rounds) == 3:
            stop.set()

    total = dv.stream(store, dest, source, poll_seconds=0.01, stop=stop, on_round=on_round, formatter=fmt,
                      dead_letter_dir=tmp_path / "dead")
    assert [r.delivered for r in rounds] == [10, 5, 0] and total.delivered == 15
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 15


# ------------------------------------------------------------------ configuration and RBAC


def test_configure_list_remove_and_rbac(store, collector):
    bootstrap(store, "admin")
    grant(store, "admin", "reader", Role.SECURITY_READER)
    dest = hec(collector)
    with pytest.raises(PermissionDenied):
        dv.configure(store, "reader", dest)
    denied = audit.query(store, activity="siem.configure", result="denied")
    assert [(r.actor, r.target) for r in denied] == [("reader", "splunk")]
    assert dv.list_destinations(store) == []

    dv.configure(store, "admin", dest)
    assert dv.list_destinations(store) == [dest] and dv.get(store, "splunk") == dest
    ok = audit.query(store, activity="siem.configure", result="ok")
    assert ok[0].actor == "admin" and ok[0].details["transport"] == "hec"
    assert TOKEN not in json.dumps(ok[0].details)  # the secret is only named
    with pytest.raises(ConflictError):
        dv.configure(store, "admin", dest)
    with pytest.raises(PermissionDenied):
        dv.remove(store, "reader", "splunk")
    dv.remove(store, "admin", "splunk")
    assert dv.list_destinations(store) == []


def test_workbench_events_as_cef_over_syslog_tcp(store, tmp_path, rsyslog):
    """The real event type and CEF formatter (workbench.siem.events/formats) through the whole path."""
    from workbench.siem.events import SourceEvent, event_id

    events = [SourceEvent("alert", event_id("alert", f"a{i}"), T0 + timedelta(minutes=i),
                          {"alert_id": f"a{i}", "severity": "high", "title": "Phish delivered", "status": "new"})
              for i in range(5)]
    dest = dv.Destination("cef-tcp", "cef", "syslog-tcp", {"host": "127.0.0.1", "port": rsyslog.tcp_port})
    rep = dv.deliver(store, dest, events, backoff=FAST, dead_letter_dir=tmp_path / "dead")
    assert rep.complete and rep.delivered == 5
    assert dv.checkpoint(store, "cef-tcp") == {"alert": (events[-1].time, events[-1].id)}
    assert rsyslog.wait_for({e.id for e in events}) == {e.id for e in events}
    lines = [line for line in rsyslog.lines() if "source=\"alert\"" in line]
    assert all(line.split("|", 5)[5].startswith("CEF:0|") for line in lines)
    assert all(line.split("|")[0] == str(16 * 8 + 3) for line in lines)
