"""Download a message's raw content (the email entity's "Download email"): content read, audited.

The file is written atomically (a temporary file, then a rename) with owner-only permissions and
the suffix ``.eml.txt``, so that no mail client or preview handler opens it by a double click.
Each download, allowed or refused, is in the audit log (``mail.download``).

>>> import tempfile, pathlib
>>> from workbench.mail.maildir import MaildirMailStore
>>> from workbench.store import open_store
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> mail = MaildirMailStore(folder)
>>> ref = mail.deliver("ann@contoso.test", b"Subject: hi\\r\\n\\r\\nhello\\r\\n")
>>> store = open_store(url=f"sqlite:///{folder / 'wb.sqlite'}")
>>> download(mail, ref.network_message_id, folder, roles=store, actor="ana").name.endswith(".eml.txt")
True
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from workbench.atomic import atomic_open
from workbench.errors import StorageError

SUFFIX = ".eml.txt"


def file_name(network_message_id: str) -> str:
    """A safe file name for a message id (anything but letters, digits, dot, dash, underscore → ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", network_message_id).strip("._")[:120] + SUFFIX


def download(mail_store: Any, network_message_id: str, folder: Path | str, *, roles: Any, actor: str) -> Path:
    """Write the raw message to *folder* and return its path. *actor* needs content read in *roles*
    (the tenant's store, which also receives the audit record); unknown ids raise NotFound."""
    from workbench import audit, rbac

    rbac.require(roles, actor, rbac.Permission.CONTENT_READ, activity="mail.download", target=network_message_id)
    raw = mail_store.raw(network_message_id)
    folder = Path(folder)
    if not folder.is_dir():
        raise StorageError(f"cannot write into {folder}: not a folder; create it or pass another --out")
    path = folder / file_name(network_message_id)
    with atomic_open(path, "wb", permissions=0o600) as fh:  # owner-only: it is mail content
        fh.write(raw)
    audit.record(roles, actor=actor, activity="mail.download", target=network_message_id,
                 details={"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), "file": path.name})
    return path


__all__ = ["download", "file_name", "SUFFIX"]
