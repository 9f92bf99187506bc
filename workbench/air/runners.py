"""How a playbook run is carried out for the dispatcher (:mod:`workbench.air.dispatch`):
:class:`PapermillRunner` executes the playbook notebook with papermill (the record of every
scheduled run), :class:`InProcessRunner` calls what the notebook calls, in this process.

**Shared kernels.** A kernel start and the playbook's imports cost more than the analyzers
(benchmarks/README.md). :class:`PapermillRunner` therefore keeps one kernel per worker
thread and executes each run's playbook notebook in it with papermill, one after another;
the user namespace is reset between notebooks (``%reset -f``) while imported modules stay
loaded. Each run still gets its own executed notebook, with its own injected parameters, in
``<tenant>/investigations/``, and its own record: executing that notebook again in a fresh
kernel (``workbench air run`` with the recorded parameters, or ``workbench air retry``)
reproduces it, since a playbook keeps no state between runs but its imported modules. A
timed-out or dead kernel is replaced, and a kernel is recycled after ``runs_per_kernel``
notebooks. The timeout applies to each cell; a playbook's work is one cell.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from workbench.air.playbook import PLAYBOOKS_DIR
from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.store import tables as t

DISPATCHER = "dispatcher"  # started_by of the investigations the dispatcher starts


@dataclass(frozen=True)
class Job:
    """One playbook run for a runner: the record it continues and the notebook's parameters
    (the runner adds tenant, database and notebook path)."""

    playbook: str
    parameters: dict[str, Any]
    investigation_id: int
    started_by: str = DISPATCHER
    group: Any = None  # the dispatch Group (alerts) it answers, when the dispatcher started it


Runner = Callable[[Job], int | None]  # runs the job; may return the investigation it recorded



class RunFailed(WorkbenchError):
    """A playbook run failed; *notebook* is the executed notebook, if one was written."""

    def __init__(self, message: str, notebook: str = "") -> None:
        super().__init__(message)
        self.notebook = notebook


class RunTimedOut(RunFailed):
    """A playbook run exceeded the per-run timeout (the run is ended terminatedBySystem)."""


@dataclass(frozen=True)
class RunTiming:
    """Where one notebook run's time went (for benchmarks and logs)."""

    playbook: str
    investigation_id: int
    kernel_start: float  # 0 when the kernel was already running
    reset: float  # clearing the previous notebook's names
    execute: float  # papermill, from reading the notebook to writing the executed one
    cells: tuple[float, ...] = field(default=())  # each code cell's duration (papermill metadata)


_ENGINE = "workbench_shared_kernel"


def _register_engine() -> None:
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class SharedKernelEngine(NBClientEngine):
        """papermill's nbclient engine on a kernel it does not own: started before, kept after."""

        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                     stdout_file: Any = None, stderr_file: Any = None, start_timeout: int = 60,
                                     execution_timeout: int | None = None, km: Any = None, **kwargs: Any) -> Any:
            client = PapermillNotebookClient(nb_man, km=km, timeout=execution_timeout, startup_timeout=start_timeout,
                                             kernel_name=kernel_name, log_output=log_output, stdout_file=stdout_file,
                                             stderr_file=stderr_file)
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()

    if _ENGINE not in papermill_engines._engines:
        papermill_engines.register(_ENGINE, SharedKernelEngine)


# The kernel's own log (its stderr, not the notebook's output) at errors only: ipykernel warns
# on every start that loopback TCP is unencrypted, which buried the dispatcher's progress.
QUIET_KERNEL = ("--IPKernelApp.log_level=ERROR",)


class PapermillRunner:
    """Runs jobs' playbook notebooks with papermill, one kernel per worker thread when
    *share_kernels* (else a fresh kernel per run); use it as a context manager (or call
    :meth:`close`) so the kernels are shut down. *timeout* bounds each run (each cell)."""

    def __init__(self, tenant: Any, db_url: str | None, timeout: int = 600, *, share_kernels: bool = True,
                 runs_per_kernel: int = 50, progress_bar: bool = False) -> None:
        self.tenant, self.db_url, self.timeout, self.progress_bar = tenant, db_url, timeout, progress_bar
        self.share_kernels, self.runs_per_kernel = share_kernels, runs_per_kernel
        self.timings: list[RunTiming] = []
        self._local = threading.local()
        self._kernels: list[Any] = []
        self._lock = threading.Lock()
        self._declared: dict[str, set[str]] = {}
        self._store: Store | None = None
        if share_kernels:
            _register_engine()

    def __enter__(self) -> PapermillRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Shut down every kernel this runner started."""
        with self._lock:
            kernels, self._kernels = self._kernels, []
            store, self._store = self._store, None
        for km in kernels:
            self._shutdown(km)
        if store is not None:
            store.dispose()

    def _shutdown(self, km: Any) -> None:
        from jupyter_core.utils import run_sync

        try:
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)
        except Exception:  # an already dead kernel: nothing to shut down
            pass

    def _discard(self) -> None:
        km = getattr(self._local, "km", None)
        self._local.km, self._local.runs = None, 0
        if km is not None:
            with self._lock:
                if km in self._kernels:
                    self._kernels.remove(km)
            self._shutdown(km)

    def _kernel(self) -> tuple[Any, float, float]:
        """This worker's kernel (started, or recycled, if need be), with the seconds spent
        starting it and clearing the previous notebook's names."""
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        km = getattr(self._local, "km", None)
        if km is not None and (self._local.runs >= self.runs_per_kernel or not run_sync(km.is_alive)()):
            self._discard()
            km = None
        if km is None:
            clock = time.perf_counter()
            km = AsyncKernelManager(kernel_name="python3")
            run_sync(km.start_kernel)(cwd=str(self.tenant.root), extra_arguments=list(QUIET_KERNEL))
            self._local.km, self._local.runs = km, 0
            with self._lock:
                self._kernels.append(km)
            return km, time.perf_counter() - clock, 0.0
        clock = time.perf_counter()
        kc = km.client()
        kc.start_channels()
        try:  # on the shell channel only (nothing is lost there while the client connects)
            sent = kc.execute("get_ipython().run_line_magic('reset', '-f')", silent=True, store_history=False)
            reply = run_sync(kc.get_shell_msg)(timeout=60)
            while reply["parent_header"].get("msg_id") != sent:
                reply = run_sync(kc.get_shell_msg)(timeout=60)
            if reply["content"]["status"] != "ok":
                raise RunFailed("could not clear the shared kernel between notebooks")
        finally:
            kc.stop_channels()
        return km, 0.0, time.perf_counter() - clock

    def _parameters(self, job: Job, out: Path) -> dict[str, Any]:
        import papermill

        path = PLAYBOOKS_DIR / f"{job.playbook}.ipynb"
        if not path.is_file():
            raise RunFailed(f"no playbook notebook {path.name} in {PLAYBOOKS_DIR}")
        if job.playbook not in self._declared:
            self._declared[job.playbook] = set(papermill.inspect_notebook(str(path)))
        values = {**job.parameters, "tenant": str(self.tenant.root), "started_by": job.started_by,
                  "record_notebook": str(out), "db_url": self.db_url or ""}
        return {k: v for k, v in values.items() if k in self._declared[job.playbook]}

    def __call__(self, job: Job) -> int | None:
        import nbformat
        import papermill
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        out = Path(self.tenant.root) / "investigations" / (
            f"{job.playbook}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{job.investigation_id}.ipynb")
        out.parent.mkdir(parents=True, exist_ok=True)
        params = self._parameters(job, out)
        kernel_start = reset = 0.0
        extra: dict[str, Any] = {"extra_arguments": list(QUIET_KERNEL)}
        if self.share_kernels:
            km, kernel_start, reset = self._kernel()
            extra = {"engine_name": _ENGINE, "km": km}
        clock = time.perf_counter()
        try:
            papermill.execute_notebook(str(PLAYBOOKS_DIR / f"{job.playbook}.ipynb"), str(out), parameters=params,
                                       progress_bar=self.progress_bar, kernel_name="python3",
                                       execution_timeout=self.timeout,
                                       **extra)  # no cwd: papermill would chdir the whole process
        except papermill.PapermillExecutionError as exc:
            evalue = str(exc.evalue).splitlines()[0] if exc.evalue else ""
            raise RunFailed(f"playbook {job.playbook} failed in cell {exc.cell_index}: {exc.ename}: {evalue}",
                            str(out)) from None
        except (CellTimeoutError, TimeoutError) as exc:
            self._discard()  # the kernel is still busy with the cell
            raise RunTimedOut(f"playbook {job.playbook} timed out after {self.timeout} s",
                              str(out) if out.exists() else "") from exc
        except DeadKernelError as exc:
            self._discard()
            raise RunFailed(f"playbook {job.playbook}: the kernel died ({exc})",
                            str(out) if out.exists() else "") from exc
        finally:
            if self.share_kernels and getattr(self._local, "km", None) is not None:
                self._local.runs += 1
            seconds = time.perf_counter() - clock
            cells = tuple(float(c.metadata.get("papermill", {}).get("duration") or 0.0)
                          for c in nbformat.read(str(out), as_version=4).cells if c.cell_type == "code") \
                if out.exists() else ()
            with self._lock:
                self.timings.append(RunTiming(job.playbook, job.investigation_id, kernel_start, reset, seconds, cells))
        return self._recorded(out)

    def _recorded(self, notebook: Path) -> int | None:
        """The investigation the executed *notebook* recorded (its id), if any."""
        from workbench.store import open_store

        with self._lock:
            if self._store is None:
                self._store = open_store(self.tenant, self.db_url or None)
            store = self._store
        with store.read() as conn:
            return conn.execute(sa.select(t.investigations.c.id).where(t.investigations.c.notebook == str(notebook))
                                .order_by(t.investigations.c.id.desc())).scalar()


class InProcessRunner:
    """Runs jobs' playbooks in this process, no kernel and no notebook (what a playbook
    notebook calls, :func:`workbench.air.playbook.run_playbook`): for tests and for measuring
    what the analyzers cost; scheduled runs use :class:`PapermillRunner`."""

    def __init__(self, tenant: Any, db_url: str | None) -> None:
        self.tenant, self.db_url = tenant, db_url

    def __call__(self, job: Job) -> int | None:
        from workbench.air.parameters import PlaybookParameters
        from workbench.air.playbook import run_playbook

        values = {k: v for k, v in job.parameters.items() if k in PlaybookParameters.fields()}
        params = PlaybookParameters(**{**values, "tenant": str(self.tenant.root), "started_by": job.started_by,
                                       "db_url": self.db_url or ""})
        return run_playbook(job.playbook, params).investigation.id


def papermill_runner(tenant: Any, db_url: str | None, timeout: int, *, share_kernels: bool = False) -> PapermillRunner:
    """A :class:`PapermillRunner` (a fresh kernel per run unless *share_kernels*)."""
    return PapermillRunner(tenant, db_url, timeout, share_kernels=share_kernels)
