"""Who is acting: the name written into activity logs (the roles issue adds a trusted header
and role checks on top of this).

>>> import os; os.environ["WORKBENCH_USER"] = "ana"; acting_user()
'ana'
"""

from __future__ import annotations

import getpass
import os


def acting_user() -> str:
    """WORKBENCH_USER, else the JupyterHub user, else the OS user."""
    return os.environ.get("WORKBENCH_USER") or os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
