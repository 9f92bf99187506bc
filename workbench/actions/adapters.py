"""Where non-mail actions go once approved: blocking a URL or sender, removing a rule or a
delegation, resetting a password, disabling an account.

The workbench enforces none of these itself. An approved one is handed to a
:class:`RequestAdapter`; the default, :class:`RecordedRequests`, writes the request to the
tenant's ``action_requests`` table, where a mail server, proxy or directory integration (or a
person) picks it up. The action's status then says exactly that: ``requested``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import sqlalchemy as sa

from workbench.actions.model import Action
from workbench.store import insert_ignore
from workbench.store import tables as t


class RequestAdapter(Protocol):
    """Receives approved non-mail actions, inside the transaction that marks them requested."""

    name: str

    def submit(self, conn: sa.Connection, action: Action, requested_by: str, at: datetime) -> str:
        """Record or carry out *action*; return a one-line result for its history."""
        ...


class RecordedRequests:
    """The default adapter: one row per action in ``action_requests`` (idempotent)."""

    name = "recorded"

    def submit(self, conn: sa.Connection, action: Action, requested_by: str, at: datetime) -> str:
        insert_ignore(conn, t.action_requests, [dict(
            action_id=action.id, adapter=self.name, kind=action.kind.value, target_kind=action.target_kind,
            target=action.target, status="requested", requested_by=requested_by, requested=at)], "action_id")
        return (f"{action.kind.label} {action.target} recorded in action_requests for an integration to carry "
                "out (the workbench does not enforce it)")


__all__ = ["RequestAdapter", "RecordedRequests"]
