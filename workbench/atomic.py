"""Files that appear complete or not at all: written to a temporary file in the same folder,
flushed to disk, then renamed over the target. A failure leaves nothing behind and is one
:class:`~workbench.errors.StorageError` line naming the file.

>>> import tempfile, pathlib, json
>>> p = pathlib.Path(tempfile.mkdtemp()) / "settings.json"
>>> write_json(p, {"a": 1}).read_text()
'{\\n  "a": 1\\n}\\n'
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from workbench.errors import StorageError


@contextmanager
def atomic_open(path: Path | str, mode: str = "w", *, newline: str | None = None,
                permissions: int = 0o644) -> Iterator[IO[Any]]:
    """Open a temporary file next to *path* for writing (text as UTF-8, or binary with ``"wb"``);
    it replaces *path* when the block ends without an error."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}; choose a writable folder") from None
    try:
        os.fchmod(fd, permissions)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": newline})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}; choose a writable folder") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path | str, text: str, **options: Any) -> Path:
    """Write *text* to *path* atomically; returns the path."""
    with atomic_open(path, "w", **options) as fh:
        fh.write(text)
    return Path(path)


def write_json(path: Path | str, data: Any) -> Path:
    """Write *data* as indented JSON (with a final newline) atomically; returns the path."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


__all__ = ["atomic_open", "write_text", "write_json"]
