"""Who is acting: the name written into activity logs and checked against roles (docs/rbac.md).

The acting user comes from the process environment, first found wins:

1. a trusted request header passed in by Voila: ``workbench serve --trusted-header X-Forwarded-User``
   sets Voila's ``http_header_envs`` (the kernel gets ``HTTP_X_FORWARDED_USER``) and names the
   header in ``WORKBENCH_TRUSTED_HEADER``; only that named header is read, never any ``HTTP_*``;
2. the JupyterHub user (``JUPYTERHUB_USER``, set by the hub's spawner);
3. ``WORKBENCH_USER``;
4. the OS user.

>>> import os; os.environ["WORKBENCH_USER"] = "ana"; os.environ.pop("JUPYTERHUB_USER", None) and None
>>> acting_user()
'ana'
"""

from __future__ import annotations

import getpass
import os

TRUSTED_HEADER_ENV = "WORKBENCH_TRUSTED_HEADER"


def header_env(header: str) -> str:
    """The environment variable Voila's ``http_header_envs`` puts *header* in (``X-Forwarded-User`` →
    ``HTTP_X_FORWARDED_USER``)."""
    return "HTTP_" + header.strip().upper().replace("-", "_")


def acting_user() -> str:
    """The trusted header, else the JupyterHub user, else WORKBENCH_USER, else the OS user."""
    header = os.environ.get(TRUSTED_HEADER_ENV, "").strip()
    from_header = os.environ.get(header_env(header), "").strip() if header else ""
    return (from_header or os.environ.get("JUPYTERHUB_USER", "").strip()
            or os.environ.get("WORKBENCH_USER", "").strip() or getpass.getuser())


__all__ = ["TRUSTED_HEADER_ENV", "acting_user", "header_env"]
