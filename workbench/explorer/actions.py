"""Actions on selected messages (mdo-reference §1.8) as typed requests.

The panel builds an :class:`ActionRequest` from exactly the selected rows and hands it to
whoever handles that kind of action (remediation, investigations and incidents arrive with
their issues). A request never reaches beyond its selection, and above
:data:`CONFIRM_ABOVE` messages it needs an explicit confirmation.

>>> sel = [MessageRef("nmid-1", "ann@contoso.com")]
>>> build_request(ActionKind.SOFT_DELETE, sel, requested_by="bob").targets == tuple(sel)
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from workbench.errors import InputError

CONFIRM_ABOVE = 100  # Explorer's multi-action limit: larger selections need a confirmation
MAX_SELECTION = 200_000  # Explorer's largest remediation


class ActionKind(StrEnum):
    MOVE_TO_JUNK = "Move to Junk"
    MOVE_TO_INBOX = "Move to Inbox"
    MOVE_TO_DELETED_ITEMS = "Move to Deleted Items"
    SOFT_DELETE = "Soft delete"
    HARD_DELETE = "Hard delete"
    PROPOSE_REMEDIATION = "Propose remediation"
    START_INVESTIGATION = "Start automated investigation"
    ADD_TO_INCIDENT = "Add to incident"
    CREATE_INCIDENT = "Create incident"


# Who carries each kind out once its service exists.
HANDLER = {
    ActionKind.MOVE_TO_JUNK: "remediation", ActionKind.MOVE_TO_INBOX: "remediation",
    ActionKind.MOVE_TO_DELETED_ITEMS: "remediation", ActionKind.SOFT_DELETE: "remediation",
    ActionKind.HARD_DELETE: "remediation", ActionKind.PROPOSE_REMEDIATION: "action center",
    ActionKind.START_INVESTIGATION: "investigations", ActionKind.ADD_TO_INCIDENT: "incidents",
    ActionKind.CREATE_INCIDENT: "incidents",
}


# The RBAC permissions (any of) each kind needs once the tenant uses roles (docs/rbac.md): moving
# or deleting needs remediation; proposing needs a role that acts (readers may not).
REQUIRES: dict[ActionKind, tuple[str, ...]] = {
    **{k: ("remediation",) for k, h in HANDLER.items() if h == "remediation"},
    ActionKind.PROPOSE_REMEDIATION: ("start investigation", "remediation"),
    ActionKind.START_INVESTIGATION: ("start investigation",),
    ActionKind.ADD_TO_INCIDENT: ("incident management",), ActionKind.CREATE_INCIDENT: ("incident management",),
}


def allowed_kinds(store: object, user: str) -> tuple[ActionKind, ...]:
    """The kinds *user* may request in the tenant whose store is *store* (all while it has no roles;
    the services check again)."""
    from workbench import rbac

    return tuple(k for k in ActionKind if rbac.has(store, user, *map(rbac.Permission, REQUIRES[k])))


@dataclass(frozen=True, order=True)
class MessageRef:
    """One recipient's copy of a message: the grid's stable row key."""

    network_message_id: str
    recipient: str


@dataclass(frozen=True)
class ActionRequest:
    kind: ActionKind
    targets: tuple[MessageRef, ...]
    requested_by: str
    requested_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    comment: str = ""
    incident_id: str | None = None
    query: dict | None = None  # the Explorer query the selection came from (JSON), for the record

    @property
    def handler(self) -> str:
        return HANDLER[self.kind]

    def to_json(self) -> dict:
        return {"kind": self.kind.value, "handler": self.handler, "requested_by": self.requested_by,
                "requested_at": self.requested_at.isoformat(), "comment": self.comment,
                "incident_id": self.incident_id, "query": self.query,
                "targets": [{"NetworkMessageId": t.network_message_id, "RecipientEmailAddress": t.recipient}
                            for t in self.targets]}


def build_request(kind: ActionKind | str, selection: Iterable[MessageRef], *, requested_by: str,
                  confirmed: bool = False, comment: str = "", incident_id: str | None = None,
                  query: dict | None = None) -> ActionRequest:
    """A request for exactly *selection* (duplicates removed, order kept)."""
    kind = ActionKind(kind)
    targets = tuple(dict.fromkeys(selection))
    if not targets:
        raise InputError(f"{kind.value}: no message selected; select rows in the grid first")
    if len(targets) > MAX_SELECTION:
        raise InputError(f"{kind.value}: {len(targets):,} messages selected, the limit is {MAX_SELECTION:,}; narrow the query")
    if len(targets) > CONFIRM_ABOVE and not confirmed:
        raise InputError(f"{kind.value} on {len(targets):,} messages needs confirmation (more than {CONFIRM_ABOVE})")
    if kind is ActionKind.ADD_TO_INCIDENT and not incident_id:
        raise InputError("Add to incident: give the incident id")
    if not requested_by:
        raise InputError(f"{kind.value}: unknown requester; set WORKBENCH_USER or sign in")
    return ActionRequest(kind, targets, requested_by, comment=comment, incident_id=incident_id, query=query)


__all__ = ["ActionKind", "ActionRequest", "MessageRef", "build_request", "allowed_kinds", "CONFIRM_ABOVE",
           "MAX_SELECTION", "HANDLER", "REQUIRES"]
