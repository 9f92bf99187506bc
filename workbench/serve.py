"""Serve the workbench apps with Voila: offline, tracebacks hidden, idle kernels culled.

Voila runs as a child process. The tenant reaches the kernels through the environment
(``WORKBENCH_HOME`` / ``WORKBENCH_TENANT``). Pages use the ``workbench-offline`` template
(:func:`install_offline_template`), so no page asks a CDN for anything. Readiness is
checked with a TCP connect, never an HTTP GET: every GET of a notebook starts a kernel.
"""

from __future__ import annotations

import errno
import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import webbrowser
from pathlib import Path

import workbench
from workbench.errors import ConflictError, InputError, NotFound, StorageError, WorkbenchError
from workbench.tenant import Tenant

TEMPLATE = "workbench-offline"
CULL_IDLE_TIMEOUT = 600
CULL_INTERVAL = 60
_TEMPLATE_SRC = Path(__file__).resolve().parent / "voila_template"
# shipped name -> installed name (page.html replaces voila's base page, see the file)
_TEMPLATE_FILES = {"conf.json": "conf.json", "index.html.j2": "index.html.j2", "page.html.j2": "page.html"}


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


def _install_template(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for src_name, dest_name in _TEMPLATE_FILES.items():
        data = (_TEMPLATE_SRC / src_name).read_bytes()
        target = dest / dest_name
        if not target.is_file() or target.read_bytes() != data:
            tmp = target.with_name(f".{dest_name}.{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, target)
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


def voila_command(tenant: Tenant, *, port: int, host: str, notebook: Path | None = None) -> list[str]:
    """The full command (``env VAR=... python -m voila ...``) serving *notebook* (file or folder)."""
    install_offline_template()
    target = Path(notebook) if notebook is not None else notebooks_dir()
    jupyter_path = os.pathsep.join(p for p in (str(jupyter_data_dir()), os.environ.get("JUPYTER_PATH")) if p)
    env = {**tenant_env(tenant), "JUPYTER_PATH": jupyter_path}
    return [
        shutil.which("env") or "/usr/bin/env",
        *(f"{k}={v}" for k, v in env.items()),
        sys.executable, "-m", "voila", str(target),
        "--no-browser",
        f"--port={port}",
        "--Voila.port_retries=0",
        f"--Voila.ip={host}",
        f"--template={TEMPLATE}",
        "--VoilaConfiguration.show_tracebacks=False",
        "--VoilaConfiguration.strip_sources=True",
        "--VoilaConfiguration.allow_template_override=NO",
        "--VoilaConfiguration.allow_theme_override=NO",
        f"--MappingKernelManager.cull_idle_timeout={CULL_IDLE_TIMEOUT}",
        f"--MappingKernelManager.cull_interval={CULL_INTERVAL}",
    ]


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


def serve(tenant: Tenant, *, port: int = 8866, host: str = "127.0.0.1", open_browser: bool = False) -> None:
    """Run Voila on the apps until Ctrl-C (or SIGTERM); print the URL once it listens."""
    if port_in_use(host, port):
        raise ConflictError(f"port {port} on {host} is already in use; pick another with --port")
    cmd = voila_command(tenant, port=port, host=host)
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
        shown = f"[{host}]" if ":" in host else host
        print(f"Workbench apps: http://{shown}:{port}/", flush=True)
        if open_browser:
            webbrowser.open(f"http://{shown}:{port}/")
        code = proc.wait()
        if code not in (0, -signal.SIGTERM):
            raise WorkbenchError(f"Voila stopped with exit code {code}; see its log above")
    except KeyboardInterrupt:
        print("stopping Voila ...", flush=True)
    finally:
        stop_process(proc)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
