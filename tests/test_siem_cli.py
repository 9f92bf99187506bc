"""``workbench siem``: exports of the generated tenant in each format to a file, resumed from the
checkpoint; refused connections keep everything pending; bad addresses are one line; only those
allowed to configure SIEM add destinations."""

from __future__ import annotations

import json
import shutil
import socket

import pytest
from click.testing import CliRunner

from workbench import rbac
from workbench.cli import main
from workbench.rbac import Role
from workbench.store import open_store
from workbench.tenant import open_tenant


@pytest.fixture
def home(small_tenant, tmp_path, monkeypatch):
    for name in ("WORKBENCH_DB_URL", "JUPYTERHUB_USER", "WORKBENCH_TRUSTED_HEADER", "WORKBENCH_TENANT"):
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(small_tenant.root, tmp_path / "tenants" / "small", ignore=shutil.ignore_patterns("workbench.sqlite*"))
    store = open_store(open_tenant("small", base=tmp_path))
    rbac.bootstrap(store, "root")
    rbac.grant(store, "root", "bob", Role.SECURITY_READER)
    store.dispose()
    return tmp_path


def cli(home, user: str, *args: str):
    return CliRunner().invoke(main, ["siem", *args, "--home", str(home), "--tenant", "small"],
                              env={"WORKBENCH_USER": user})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("fmt", ["o365", "ocsf", "cef"])
def test_export_each_format_to_a_file_and_resume(home, tmp_path, fmt):
    out = tmp_path / f"events-{fmt}.jsonl"
    first = cli(home, "root", "export", "--format", fmt, "--to", f"file:{out}")
    assert first.exit_code == 0, first.stderr
    lines = out.read_text().splitlines()
    assert lines and f"{len(lines)} delivered" in first.stdout
    records = [json.loads(x)["record"] for x in lines]  # each line: the event id, source, time and record
    if fmt == "o365":
        assert {r["RecordType"] for r in records} >= {28, 47}
    elif fmt == "ocsf":
        assert {r["class_uid"] for r in records} >= {4009}
    else:
        assert all(isinstance(r, str) and r.startswith("CEF:0|") for r in records)
    again = cli(home, "root", "export", "--format", fmt, "--to", f"file:{out}")
    assert again.exit_code == 0 and " 0 delivered" in again.stdout  # resumed from the checkpoint
    assert len(out.read_text().splitlines()) == len(lines)


def test_refused_connection_keeps_everything_pending(home):
    target = f"syslog+tcp://127.0.0.1:{closed_port()}"
    done = cli(home, "root", "export", "--format", "cef", "--to", target, "--source", "alert", "--source", "email",
               "--batch-size", "50")
    assert done.exit_code == 1 and " 0 delivered" in done.stdout and "pending" in done.stdout
    assert "refused" in done.stdout
    listed = cli(home, "root", "list")
    assert "nothing yet" in listed.stdout  # the checkpoint did not move


def test_bad_addresses_and_permissions(home):
    def one_line(result, code, text):
        assert result.exit_code == code, (result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and text in result.stderr, result.stderr

    one_line(cli(home, "root", "add", "x", "--format", "cef", "--to", "ftp://host/x"), 2, "is not a destination")
    one_line(cli(home, "root", "add", "x", "--format", "cef", "--to", "syslog+tcp://:514"), 2, "names no host")
    one_line(cli(home, "root", "add", "x", "--format", "ocsf", "--to", "hec+https://splunk.example.org:8088"), 2,
             "--token-env")
    one_line(cli(home, "root", "add", "x", "--format", "ocsf", "--to", "https://hooks.example.org/x"), 2, "--secret-env")
    one_line(cli(home, "bob", "add", "x", "--format", "cef", "--to", "syslog+udp://127.0.0.1:514"), 5,
             "SIEM configuration")
    one_line(cli(home, "root", "export"), 2, "--destination")
    added = cli(home, "root", "add", "siem-1", "--format", "ocsf", "--to", "syslog+udp://127.0.0.1:514")
    assert added.exit_code == 0 and "siem-1: ocsf over syslog-udp" in added.stdout
    assert "siem-1" in cli(home, "bob", "list").stdout
    one_line(cli(home, "bob", "remove", "siem-1"), 5, "SIEM configuration")
    assert cli(home, "root", "remove", "siem-1").exit_code == 0
