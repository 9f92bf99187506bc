"""What every ``workbench`` subcommand shares: the tenant options and the one-line errors."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable

import click

from workbench.errors import WorkbenchError

home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder holding tenants/ (default: $WORKBENCH_HOME or the project's data/).",
)
tenant_option = click.option(
    "--tenant",
    "tenant_name",
    envvar="WORKBENCH_TENANT",
    default="demo",
    show_default=True,
    help="Tenant name (a folder under <home>/tenants) or a path to a tenant folder.",
)


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn WorkbenchError into a one-line message and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except WorkbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: nothing was left half-written", err=True)
            sys.exit(130)

    return wrapper
