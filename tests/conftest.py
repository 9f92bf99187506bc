"""Shared fixtures: Debian Chromium for Playwright, a real Voila server, a network log, a small tenant,
a throwaway PostgreSQL server and ``db_url`` (a fresh database on SQLite and on PostgreSQL)."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
CHROMIUM_MISSING = "Chromium not installed; run: apt-get install -y chromium chromium-driver"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def require_chromium() -> None:
    """Skip when Debian's Chromium is missing; under CI=true fail instead (never skip in CI)."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    pytest.skip(CHROMIUM_MISSING)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("browser"):
        require_chromium()  # before any slow fixture (servers, tenants) runs


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)  # fixtures read it to print logs on failure
    return report


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    require_chromium()
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def voila_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """Factory: ``voila_server(tenant, notebook=None, trusted_header=None) -> base URL`` of a real
    Voila on loopback (*trusted_header*: the request header that names the acting user).

    Servers are stopped by PID (SIGTERM, then kill) at teardown; their logs are printed
    when the test failed.
    """
    from workbench.serve import stop_process, voila_command, wait_for_port

    started: list[tuple[subprocess.Popen, Path]] = []

    def start(tenant, notebook: Path | None = None, trusted_header: str | None = None) -> str:
        port = free_port()
        log = tmp_path / f"voila-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                voila_command(tenant, port=port, host="127.0.0.1", notebook=notebook, trusted_header=trusted_header),
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        started.append((proc, log))
        wait_for_port("127.0.0.1", port, proc, timeout=90)
        return f"http://127.0.0.1:{port}/"

    yield start
    failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))
    for proc, log in started:
        stop_process(proc, timeout=20)
        if failed:
            print(f"----- {log.name} (exit {proc.returncode}) -----\n{log.read_text(errors='replace')[-20000:]}")


def assert_only_loopback(requests: list[str]) -> None:
    """Fail listing every request that left the machine (data:/blob:/about: are ignored)."""
    outside = [
        url for url in requests
        if urlsplit(url).scheme not in ("data", "blob", "about") and urlsplit(url).hostname not in LOOPBACK
    ]
    assert not outside, "non-loopback requests:\n  " + "\n  ".join(outside)


class NetworkLog(list):
    """Every request (and websocket) URL the page's context made, in order."""

    def assert_only_loopback(self) -> None:
        assert_only_loopback(list(self))


@pytest.fixture
def network_log(page) -> NetworkLog:
    log = NetworkLog()
    page.context.on("request", lambda req: log.append(req.url))
    page.on("websocket", lambda ws: log.append(ws.url))
    return log


@pytest.fixture(scope="session")
def small_tenant(tmp_path_factory: pytest.TempPathFactory):
    """A small generated tenant (40 users, 3 days, fixed seed and end date) in a session temp home."""
    from workbench.ingest.demo import generate
    from workbench.tenant import open_tenant

    base = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("WORKBENCH_HOME", str(base))
    generate("small", users=40, days=3, seed=11, end=date(2026, 11, 20), base=base, progress=False)
    yield open_tenant("small", base=base)
    mp.undo()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive of *members* (name -> content), for tests that build attachments."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


# ----- PostgreSQL: a throwaway server per test session, a fresh database per test -----

PG_URL_ENV = "WORKBENCH_TEST_PG_URL"
PG_MISSING = (f"PostgreSQL server not installed; run: apt-get install -y postgresql "
              f"(or set {PG_URL_ENV}=postgresql://user:pw@host:port/db, a role that may CREATE DATABASE)")
PG_USER = "postgres"  # the superuser initdb creates (trust auth, loopback only)
PG_SETTINGS = {  # throwaway cluster: loopback TCP only, no durability (fast)
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "'32MB'",
}


@dataclass(frozen=True)
class PgServer:
    """A PostgreSQL server for tests. ``url`` (SQLAlchemy, ``postgresql+psycopg://``) points at
    its maintenance database; ``url_for(name)`` at another database; ``managed`` is True when
    the fixture started it (False for ``WORKBENCH_TEST_PG_URL``)."""

    url: str
    managed: bool

    def url_for(self, database: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def admin_conninfo(self) -> str:
        """The maintenance database as a libpq URI (for psycopg.connect)."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_unavailable(reason: str = PG_MISSING) -> None:
    """Skip with *reason*; under CI=true fail instead (never skip in CI)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def pg_bindir() -> Path | None:
    """Debian's server binaries (``/usr/lib/postgresql/<ver>/bin``), the highest version with
    both ``initdb`` and ``pg_ctl``; None when there are none."""
    found = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        version = bindir.parent.name
        if version.isdigit() and all(os.access(bindir / exe, os.X_OK) for exe in ("initdb", "pg_ctl")):
            found.append((int(version), bindir))
    return max(found)[1] if found else None


def _pg_fail(message: str, log: Path | None = None) -> None:
    tail = ""
    if log is not None and log.exists():
        tail = "\n----- server log (tail) -----\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    pytest.fail(f"PostgreSQL test server: {message}{tail}", pytrace=False)


def _roomy_shm(need: int = 1 << 30) -> str | None:
    """``/dev/shm`` when it is writable and has *need* bytes free (Docker's default is 64 MB)."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) and st.f_bavail * st.f_frsize >= need else None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the session: ``WORKBENCH_TEST_PG_URL`` when set, else a throwaway
    cluster from Debian's binaries (initdb in a temp dir, 127.0.0.1 on a free port, socket in
    the temp dir, fsync off), stopped with ``pg_ctl stop -m immediate`` at session end. As root
    the cluster runs as the ``postgres`` system user (PostgreSQL refuses to run as root).
    Skips when no server can be had (fails under CI=true); fails with the log tail when one
    will not start."""
    if os.environ.get(PG_URL_ENV):
        url = os.environ[PG_URL_ENV]
        scheme, rest = url.split("://", 1) if "://" in url else ("", url)
        if scheme in ("postgresql", "postgres"):
            url = f"postgresql+psycopg://{rest}"  # the driver we ship
        yield PgServer(url=url, managed=False)
        return
    bindir = pg_bindir()
    if bindir is None:
        pg_unavailable()
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pg_unavailable(f"running as root and no 'postgres' user to run the server as; {PG_MISSING}")
        if not shutil.which("runuser"):
            pg_unavailable("running as root and runuser (util-linux) is missing; it runs the server as 'postgres'")
        as_user = ["runuser", "-u", "postgres", "--"]
    # RAM-backed /dev/shm when roomy (CREATE DATABASE is ~10x faster than on disk, even with fsync
    # off); else $TMPDIR, or /tmp as root ('postgres' may not reach root's $TMPDIR). A short
    # path: the socket path must fit in 107 bytes.
    base = Path(tempfile.mkdtemp(prefix="workbench-pg-", dir=_roomy_shm() or ("/tmp" if owner else None)))
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    data, log = base / "data", base / "server.log"

    def run(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *map(str, args)], cwd=base, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "LC_ALL": "C", "LANG": "C"})

    def pg_ctl(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess:
        return run(bindir / "pg_ctl", "-D", data, *args, timeout=timeout)

    started = False
    try:
        init = run(bindir / "initdb", "-D", data, "-U", PG_USER, "--auth=trust", "--encoding=UTF8",
                   "--locale=C", "--no-sync", "--no-instructions")
        if init.returncode != 0:
            _pg_fail(f"initdb failed (exit {init.returncode}):\n{init.stdout}{init.stderr}")
        conf = "".join(f"{key} = {value}\n" for key, value in PG_SETTINGS.items())
        with (data / "postgresql.conf").open("a") as fh:  # appending keeps the file's owner
            fh.write(f"\n# workbench test server\n{conf}unix_socket_directories = '{base}'\n")
        for _attempt in range(3):  # the free port may be taken between free_port() and bind
            port = free_port()
            log.unlink(missing_ok=True)
            start = pg_ctl("-l", log, "-w", "-t", "30", "-o", f"-p {port}", "start")
            if start.returncode == 0:
                started = True
                break
            if not (log.exists() and "could not bind" in log.read_text(errors="replace")):
                break
        if not started:
            _pg_fail(f"pg_ctl start failed (exit {start.returncode}): {start.stdout}{start.stderr}".strip(), log)
        yield PgServer(url=f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/postgres", managed=True)
    finally:
        if started:
            stop = pg_ctl("stop", "-m", "immediate", "-w", "-t", "30")
            if stop.returncode != 0:
                print(f"warning: pg_ctl stop failed: {stop.stdout}{stop.stderr}")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
                ids=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLAlchemy URL for a fresh, empty database: ``sqlite:///<tmp_path>/workbench.sqlite``,
    or a new uniquely named database on the session's PostgreSQL server (dropped, with any
    connections still open to it, at teardown)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'workbench.sqlite'}"
        return
    import psycopg
    from psycopg import sql

    server: PgServer = request.getfixturevalue("pg_server")
    test = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:30].strip("_")
    name = f"wb_{test}_{uuid.uuid4().hex[:8]}"  # <= 63 bytes
    with psycopg.connect(server.admin_conninfo(), autocommit=True) as conn:
        # FILE_COPY (PostgreSQL 15+; fsync is off): ~27 ms vs ~39 ms for 15's default WAL_LOG
        strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
        conn.execute(sql.SQL("CREATE DATABASE {}" + strategy).format(sql.Identifier(name)))
    yield server.url_for(name)
    with psycopg.connect(server.admin_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
