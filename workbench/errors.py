"""The workbench's exception tree, in one place.

Every error a user can cause is a :class:`WorkbenchError` whose message is one line naming
the problem and the fix. The CLI prints that line (no traceback) and exits with
:attr:`WorkbenchError.exit_code`.

    WorkbenchError
    ├── InputError          bad parameter, bad file, bad value
    │   └── SchemaError     a frame does not match a canonical table
    ├── NotFound            unknown tenant, table, id
    ├── ConflictError       something already exists (use --force) or is busy
    ├── PermissionDenied    the acting user lacks a permission
    └── StorageError        a folder cannot be written, a disk is full
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class: a one-line, user-facing message that says what to do."""

    exit_code = 1


class InputError(WorkbenchError):
    """A parameter or input value is invalid."""

    exit_code = 2


class SchemaError(InputError):
    """A frame does not match its canonical table schema."""


class NotFound(WorkbenchError):
    """A named thing (tenant, table, message, alert...) does not exist."""

    exit_code = 3


class ConflictError(WorkbenchError):
    """The target already exists or is locked by another process."""

    exit_code = 4


class PermissionDenied(WorkbenchError):
    """The acting user is not allowed to do this."""

    exit_code = 5


class StorageError(WorkbenchError):
    """The file system refused a read or write."""

    exit_code = 6


__all__ = [
    "WorkbenchError",
    "InputError",
    "SchemaError",
    "NotFound",
    "ConflictError",
    "PermissionDenied",
    "StorageError",
]
