"""The audit log: append-only, hash-chained records of content access, actions, approvals, role and
policy changes, exports and denied attempts (see :mod:`workbench.audit.log`)."""

from workbench.audit.export import export, require_reader
from workbench.audit.log import (
    GENESIS,
    AuditRecord,
    AuditResult,
    VerifyResult,
    append,
    compute_hash,
    current_request_id,
    new_request_id,
    query,
    record,
    request_scope,
    verify,
)

__all__ = ["GENESIS", "AuditRecord", "AuditResult", "VerifyResult", "append", "compute_hash", "current_request_id",
           "export", "new_request_id", "query", "record", "request_scope", "require_reader", "verify"]
