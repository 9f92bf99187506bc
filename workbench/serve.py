"""Serve the workbench apps with Voila: a home page, offline, tracebacks hidden, idle kernels culled.

Voila runs as a child process on the ``notebooks/`` folder. The tenant reaches the kernels
through the environment (``WORKBENCH_HOME`` / ``WORKBENCH_TENANT``). Readiness is checked with
a TCP connect, never an HTTP GET: every GET of a notebook starts a kernel.

What a visitor gets:

- **Home page** (``/``): Voila's classic tree page, replaced by the ``tree.html`` of the
  ``workbench-offline`` template (:func:`install_offline_template`). It lists the registered
  apps (:mod:`workbench.apps`) whose notebook exists, in registry order, with their titles and
  descriptions, and links ``voila/render/<notebook>``. The registry is written next to the
  template as ``workbench-apps.j2`` at install time; the page filters it against the folder
  Voila lists, so other notebooks are not shown. It is plain HTML (no script): visiting it
  starts no kernel.
- **Apps** use the same template: no page asks a CDN for anything (FontAwesome is local),
  tracebacks and sources are hidden, a URL cannot switch template or theme, and kernels idle
  for ``CULL_IDLE_TIMEOUT`` seconds are shut down (open tabs keep theirs).
- **A token in front** (jupyter_server's ``IdentityProvider`` token, Voila's ``Voila.token``):
  given with ``--token`` / ``WORKBENCH_TOKEN`` or generated; ``/?token=T`` sets a login cookie,
  so the links on the home page work without it; ``Authorization: token T`` works too. A
  request without it is redirected to ``/login``. The token reaches Voila in a ``voila.json``
  (mode 0600, in a private temporary folder), never on the command line where ``ps`` shows it.
  ``--no-token`` is refused unless Voila listens on a loopback address; then a ``Host`` header
  that is not local is refused (DNS rebinding), so a reverse proxy in front must send
  ``Host: 127.0.0.1`` or ``localhost`` (nginx's default ``$proxy_host`` does).
- **A trusted header** (``--trusted-header X-Forwarded-User``) is copied into each kernel's
  environment as ``HTTP_X_FORWARDED_USER`` (Voila's ``http_header_envs``). It is only
  trustworthy behind a reverse proxy that authenticates the user, sets that header and strips
  it from what clients send, and when Voila is reachable only through that proxy. The header
  names the acting user (workbench.identity), whose roles decide what they may do (docs/rbac.md).
- **A preheated kernel** for the apps marked ``preheat`` in the registry (the dashboard):
  ``--preheat N`` keeps N kernels that already ran the notebook (Voila's ``preheat_kernel``
  with ``VoilaKernelManager.kernel_pools_config = {"default": {"pool_size": 0},
  "Dashboard.ipynb": {"pool_size": N}}``; the key is the notebook's path relative to the served
  folder). Every other app gets a fresh kernel per visit. A preheated notebook runs before
  anyone asks for it, so it **must call** ``voila.utils.wait_for_request()`` **before it reads**
  ``QUERY_STRING``, ``HTTP_*`` request headers or anything that should be as fresh as the
  visit (until then they are absent); cells before that call run at server start or when the
  pool refills, about a second after the previous visit. Progressive rendering stays off
  (Voila refuses it with preheat).
"""

from __future__ import annotations

import atexit
import errno
import importlib.metadata
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import webbrowser
from pathlib import Path
from urllib.parse import quote

import workbench
from workbench.apps import APPS, available
from workbench.errors import ConflictError, InputError, NotFound, StorageError, WorkbenchError
from workbench.tenant import Tenant

TEMPLATE = "workbench-offline"
CULL_IDLE_TIMEOUT = 600
CULL_INTERVAL = 60
MAX_PREHEAT = 8  # each pooled kernel holds a full notebook run in memory (about 300 MB)
TOKEN_ENV = "WORKBENCH_TOKEN"
_TEMPLATE_SRC = Path(__file__).resolve().parent / "voila_template"
# installed name -> shipped name. page.html replaces voila's base page (tree, error and 404 pages);
# tree.html is the home page, installed as tree-lab.html too so ?classic-tree=false shows the same page.
_TEMPLATE_FILES = {
    "conf.json": "conf.json",
    "index.html.j2": "index.html.j2",
    "page.html": "page.html.j2",
    "tree.html": "tree.html.j2",
    "tree-lab.html": "tree.html.j2",
}
_REGISTRY_FILE = "workbench-apps.j2"  # generated from workbench.apps.APPS
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # an RFC 9110 field name


def notebooks_dir() -> Path:
    """The project's ``notebooks/`` folder (the apps Voila serves)."""
    folder = Path(workbench.__file__).resolve().parent.parent / "notebooks"
    if not folder.is_dir():
        raise NotFound(
            f"notebooks folder not found at {folder}; run from a source checkout "
            "(pip install -e .) so the apps are next to the package"
        )
    return folder


def jupyter_data_dir() -> Path:
    return Path(sys.prefix) / "share" / "jupyter"


def _fontawesome_root() -> Path:
    rel = "fontawesome-free/static/fontawesome_free"
    try:
        root = Path(str(importlib.metadata.distribution("fontawesome-free").locate_file(rel)))
    except importlib.metadata.PackageNotFoundError:
        root = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages" / rel
    if not (root / "css" / "all.min.css").is_file():
        raise NotFound(f"FontAwesome files not found at {root}; install with: pip install fontawesome-free==5.15.4")
    return root


def registry_template() -> str:
    """``workbench-apps.j2``: the app registry as a Jinja list the home page imports.

    Values are JSON string literals (ASCII, backslash escapes), which Jinja reads as the same
    strings; the page escapes them when it prints them. Braces are escaped too, so no value can
    open a Jinja tag.
    """
    def literal(value: str) -> str:
        return json.dumps(value, ensure_ascii=True).replace("{", "\\u007b").replace("}", "\\u007d")

    rows = ",\n".join(
        "  {" + ", ".join(f"{literal(k)}: {literal(getattr(app, k))}" for k in ("key", "title", "notebook", "description"))
        + "}"
        for app in APPS
    )
    return (
        "{#- Generated by workbench.serve.install_offline_template() from workbench/apps.py: do not edit. -#}\n"
        "{%- set apps = [\n" + rows + "\n] -%}\n"
    )


def install_offline_template() -> Path:
    """Materialise the offline Voila template under ``<sys.prefix>/share/jupyter``; idempotent."""
    dest = jupyter_data_dir() / "voila" / "templates" / TEMPLATE
    try:
        return _install_template(dest)
    except OSError as exc:
        raise StorageError(
            f"cannot write the Voila template to {dest}: {exc.strerror or exc}; "
            "run `make env` as the owner of the virtualenv"
        ) from None


def _write_if_changed(target: Path, data: bytes) -> None:
    if target.is_file() and target.read_bytes() == data:
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def _install_template(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for dest_name, src_name in _TEMPLATE_FILES.items():
        _write_if_changed(dest / dest_name, (_TEMPLATE_SRC / src_name).read_bytes())
    _write_if_changed(dest / _REGISTRY_FILE, registry_template().encode("ascii"))
    fa = dest / "static" / "fontawesome"
    version = importlib.metadata.version("fontawesome-free")
    stamp = fa / "VERSION"
    if not (stamp.is_file() and stamp.read_text().strip() == version):
        src = _fontawesome_root()
        tmp = fa.with_name(f".fontawesome-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        for sub in ("css", "webfonts"):
            shutil.copytree(src / sub, tmp / sub)
        shutil.copy2(src / "LICENSE.txt", tmp / "LICENSE.txt")
        (tmp / "VERSION").write_text(version + "\n")
        shutil.rmtree(fa, ignore_errors=True)
        os.replace(tmp, fa)
    return dest


def tenant_env(tenant: Tenant) -> dict[str, str]:
    """Environment that makes ``open_tenant()`` in a kernel open *tenant*."""
    root = tenant.root.resolve()
    named = root.parent.name == "tenants"
    return {
        "WORKBENCH_HOME": str(root.parent.parent),
        "WORKBENCH_TENANT": tenant.name if named else str(root),
    }


# --------------------------------------------------------------------------- access


def is_loopback(host: str) -> bool:
    """Whether *host* is a loopback address (``""``, ``0.0.0.0`` and ``::`` are every interface)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def resolve_token(host: str, token: str | None, *, no_token: bool = False) -> str | None:
    """The token Voila requires: *token*, or a new random one; ``None`` with *no_token* on loopback."""
    if no_token:
        if token is not None:
            raise InputError(f"--no-token contradicts --token (or ${TOKEN_ENV}); drop one of them")
        if not is_loopback(host):
            raise InputError(
                f"--no-token is only allowed on a loopback address, not --host {host or '(all interfaces)'}; "
                "use --host 127.0.0.1 (with an authenticating proxy in front) or keep a token"
            )
        return None
    if token is None:
        return secrets.token_urlsafe(24)
    if not token or token != token.strip() or any(c.isspace() or not c.isprintable() for c in token):
        raise InputError(
            f"the token from --token (or ${TOKEN_ENV}) is empty or holds spaces or control characters; "
            "pick a printable value, e.g. python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    return token


def check_header_name(name: str) -> str:
    """*name* if it is a valid HTTP header name (for ``--trusted-header``)."""
    if not _HEADER_NAME.match(name):
        raise InputError(f"--trusted-header {name!r} is not an HTTP header name; use e.g. X-Forwarded-User")
    return name


def check_preheat(preheat: int) -> int:
    if not 0 <= preheat <= MAX_PREHEAT:
        raise InputError(f"--preheat must be between 0 and {MAX_PREHEAT} (got {preheat}); 0 disables preheated kernels")
    return preheat


def kernel_pools(folder: Path, preheat: int) -> dict[str, dict[str, int]]:
    """Voila's ``kernel_pools_config``: *preheat* kernels for each preheated app in *folder*, none for the rest.

    Keys are notebook paths relative to the served folder (what Voila's pool and handler use).
    Empty when nothing is to be preheated (then preheat mode stays off).
    """
    if preheat <= 0 or not folder.is_dir():
        return {}
    pools = {app.notebook: {"pool_size": preheat} for app in available(folder) if app.preheat}
    return {"default": {"pool_size": 0}, **pools} if pools else {}


def _ws_host(host: str) -> str:
    """Where a kernel reaches Voila's request-info socket (``VOILA_APP_IP``)."""
    target = _connect_host(host)
    return f"[{target}]" if ":" in target else target


def _write_private_config(config_dir: Path, config: dict) -> Path:
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = config_dir / "voila.json"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(config, out)
    return target


def _private_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="workbench-voila-"))  # mode 0700
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def voila_command(
    tenant: Tenant,
    *,
    port: int,
    host: str,
    notebook: Path | None = None,
    token: str | None = None,
    preheat: int = 0,
    trusted_header: str | None = None,
    config_dir: Path | None = None,
) -> list[str]:
    """The full command (``env VAR=... python -m voila ...``) serving *notebook* (file or folder).

    *token*: required on every request (``?token=`` once, then a cookie); without one the
    ``Host`` header must be local. *preheat*: pool size for the preheated apps of a served
    folder (0: none). *trusted_header*: a request header copied into kernels. The token and
    the structured settings go to ``voila.json`` in *config_dir* (default: a private temporary
    folder removed when this process exits), which must outlive Voila's start.
    """
    install_offline_template()
    target = Path(notebook) if notebook is not None else notebooks_dir()
    jupyter_path = os.pathsep.join(p for p in (str(jupyter_data_dir()), os.environ.get("JUPYTER_PATH")) if p)
    env = {**tenant_env(tenant), "JUPYTER_PATH": jupyter_path}
    pools = kernel_pools(target, check_preheat(preheat))
    config: dict[str, dict] = {"Voila": {}, "VoilaConfiguration": {}}
    if token is not None:
        config["Voila"]["token"] = token
    else:
        config["Voila"]["tornado_settings"] = {"allow_remote_access": False}  # Host must be local
    if pools:
        env["VOILA_APP_IP"] = _ws_host(host)  # where wait_for_request() in a kernel reaches Voila
        config["VoilaConfiguration"].update(preheat_kernel=True, progressive_rendering=False)
        config["VoilaKernelManager"] = {"kernel_pools_config": pools}
    if trusted_header is not None:
        config["VoilaConfiguration"]["http_header_envs"] = [check_header_name(trusted_header)]
        env["WORKBENCH_TRUSTED_HEADER"] = trusted_header  # workbench.identity reads only this header
    folder = Path(config_dir) if config_dir is not None else _private_dir()
    _write_private_config(folder, config)

    from jupyter_core.paths import jupyter_config_path

    # voila.json search path, first wins: ours, then Voila's defaults (working folder, Jupyter config paths)
    config_paths = [str(folder), os.getcwd(), *jupyter_config_path()]
    return [
        shutil.which("env") or "/usr/bin/env",
        *(f"{k}={v}" for k, v in env.items()),
        sys.executable, "-m", "voila", str(target),
        "--no-browser",
        f"--port={port}",
        "--Voila.port_retries=0",
        f"--Voila.ip={host}",
        *(f"--Voila.config_file_paths={p}" for p in config_paths),
        f"--template={TEMPLATE}",
        "--VoilaConfiguration.classic_tree=True",
        "--VoilaConfiguration.show_tracebacks=False",
        "--VoilaConfiguration.strip_sources=True",
        "--VoilaConfiguration.allow_template_override=NO",
        "--VoilaConfiguration.allow_theme_override=NO",
        f"--MappingKernelManager.cull_idle_timeout={CULL_IDLE_TIMEOUT}",
        f"--MappingKernelManager.cull_interval={CULL_INTERVAL}",
    ]


# --------------------------------------------------------------------------- process


def _connect_host(host: str) -> str:
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}.get(host, host)


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in _connect_host(host) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as tornado does
        try:
            sock.bind((host or "0.0.0.0", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); check --host and --port") from None
    return False


def wait_for_port(host: str, port: int, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Wait until *proc* accepts TCP connections on *port* (no HTTP request is made)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WorkbenchError(f"Voila exited with code {proc.returncode} before listening on port {port}; see its log")
        try:
            with socket.create_connection((_connect_host(host), port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise WorkbenchError(f"Voila did not listen on port {port} within {timeout:.0f} s; see its log")


def stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM *proc* (Voila then shuts its kernels down); kill its process group after *timeout*."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: Voila and its kernels
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait()


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def home_url(host: str, port: int, token: str | None = None) -> str:
    """The home page URL; with *token*, the one that logs a browser in."""
    shown = f"[{host}]" if ":" in host else (host or "0.0.0.0")
    url = f"http://{shown}:{port}/"
    return f"{url}?token={quote(token, safe='')}" if token else url


def serve(
    tenant: Tenant,
    *,
    port: int = 8866,
    host: str = "127.0.0.1",
    open_browser: bool = False,
    token: str | None = None,
    no_token: bool = False,
    preheat: int = 1,
    trusted_header: str | None = None,
) -> None:
    """Run Voila on the apps until Ctrl-C (or SIGTERM); print the URL (and the login link) once it listens.

    *token* ``None`` generates one (printed in full, as Jupyter does); a given token is not
    printed. *no_token* is allowed on loopback only.
    """
    effective = resolve_token(host, token, no_token=no_token)
    check_preheat(preheat)
    if trusted_header is not None:
        check_header_name(trusted_header)
    if port_in_use(host, port):
        raise ConflictError(f"port {port} on {host} is already in use; pick another with --port")
    with tempfile.TemporaryDirectory(prefix="workbench-voila-") as private:
        cmd = voila_command(tenant, port=port, host=host, token=effective, preheat=preheat,
                            trusted_header=trusted_header, config_dir=Path(private))
        _run(cmd, host, port, effective, generated=token is None, open_browser=open_browser)


def _run(cmd: list[str], host: str, port: int, token: str | None, *, generated: bool, open_browser: bool) -> None:
    # own session: Ctrl-C reaches only us, and we stop Voila with SIGTERM (no y/n prompt)
    proc = subprocess.Popen(cmd, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if threading.current_thread() is threading.main_thread() else None
    try:
        try:
            wait_for_port(host, port, proc)
        except WorkbenchError:
            if proc.poll() is not None and port_in_use(host, port):
                raise ConflictError(f"port {port} on {host} is already in use; pick another with --port") from None
            raise
        print(f"Workbench apps: {home_url(host, port)}", flush=True)
        if token and generated:
            print(f"  open this link to log in: {home_url(host, port, token)}", flush=True)
        elif token:  # the operator's own token is not echoed into logs
            print(f"  log in with: {home_url(host, port)}?token=<the --token or ${TOKEN_ENV} value>", flush=True)
        if open_browser:
            webbrowser.open(home_url(host, port, token))
        code = proc.wait()
        if code not in (0, -signal.SIGTERM):
            raise WorkbenchError(f"Voila stopped with exit code {code}; see its log above")
    except KeyboardInterrupt:
        print("stopping Voila ...", flush=True)
    finally:
        stop_process(proc)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
