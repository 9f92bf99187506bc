"""The action center's values (mdo-reference §4.5–4.7): what an action does, where it is in its
lifecycle, and what happened to each message copy it touched.

Lifecycle::

    proposed ─► pending ─► approved ─► (queued) ─► running ─► completed / partiallyCompleted / failed
                   │  └──► rejected                                   └──► undone (by a restore action)
                   └─────► expired (7 days without a decision)
    approved (block URL / sender, user actions) ─► requested (handed to an adapter; see adapters.py)

>>> ActionKind.SOFT_DELETE.destination
<Folder.RECOVERABLE_DELETIONS: 'Recoverable Items/Deletions'>
>>> ActionKind.BLOCK_URL.moves_mail, ActionKind.HARD_DELETE.undoable
(False, False)
>>> ActionKind.BLOCK_FILE.moves_files, ActionKind.BLOCK_FILE.undoable, ActionKind.BLOCK_FILE.destination
(True, True, <Folder.QUARANTINE: 'Quarantine'>)
>>> Totals(targets=3, success=2, not_found=1).status
<ActionStatus.PARTIALLY_COMPLETED: 'partiallyCompleted'>
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from workbench.enums import DeliveryLocation, Folder, LatestDeliveryAction, PostDeliveryAction
from workbench.mail.base import HARD_DELETE_FOLDER, SOFT_DELETE_FOLDER, Outcome

EXPIRY = timedelta(days=7)  # pending actions expire after one week (§4.7)


class ActionStatus(StrEnum):
    PROPOSED = "proposed"  # recorded as a draft, not yet submitted for approval
    PENDING = "pending"  # waiting for an approver
    APPROVED = "approved"
    REJECTED = "rejected"
    QUEUED = "queued"  # approved and picked up by a batch of runs, waiting for its turn
    RUNNING = "running"
    COMPLETED = "completed"
    PARTIALLY_COMPLETED = "partiallyCompleted"
    FAILED = "failed"
    EXPIRED = "expired"
    REQUESTED = "requested"  # not a mail move: handed to an adapter, which records it (nothing enforced here)
    UNDONE = "undone"  # a restore action moved its copies back

    @property
    def open(self) -> bool:
        """Still to be decided or carried out (identical proposals join it instead of duplicating it)."""
        return self in (ActionStatus.PROPOSED, ActionStatus.PENDING, ActionStatus.APPROVED, ActionStatus.QUEUED,
                        ActionStatus.RUNNING)

    @property
    def decidable(self) -> bool:
        return self in (ActionStatus.PROPOSED, ActionStatus.PENDING)


class ActionSource(StrEnum):
    AIR = "air"  # an automated investigation's proposal
    EXPLORER = "explorer"  # "Move or delete" / "Propose remediation"
    INCIDENT = "incident"  # an incident page
    CLI = "cli"  # `workbench actions ...`, or code


class ActionKind(StrEnum):
    """What an action does. The mail kinds move copies in the mail store, the file kinds move
    shared files into and out of the file store's quarantine; the others are requests to an
    adapter (a tenant blocklist, the directory)."""

    SOFT_DELETE = "softDelete"
    HARD_DELETE = "hardDelete"
    MOVE_TO_INBOX = "moveToInbox"
    MOVE_TO_JUNK = "moveToJunk"
    MOVE_TO_DELETED_ITEMS = "moveToDeletedItems"
    RESTORE = "restore"  # the undo of a move: each copy back to the folder it came from
    BLOCK_URL = "blockUrl"
    BLOCK_SENDER = "blockSender"
    BLOCK_DOMAIN = "blockDomain"
    REMOVE_FORWARDING_RULE = "removeForwardingRule"
    REMOVE_INBOX_RULE = "removeInboxRule"
    REMOVE_DELEGATION = "removeDelegation"
    RESET_PASSWORD = "resetPassword"
    DISABLE_USER = "disableUser"
    BLOCK_FILE = "blockFile"  # quarantine files in SharePoint, OneDrive and Teams (cannot be opened or downloaded)
    RELEASE_FILE = "releaseFile"  # put blocked files back at their places (also the undo of a block)

    @property
    def moves_mail(self) -> bool:
        return self in _DESTINATION or self is ActionKind.RESTORE

    @property
    def moves_files(self) -> bool:
        """Acts on the file store: one target per file place (SHA256 and ``Workload/site/path``)."""
        return self in (ActionKind.BLOCK_FILE, ActionKind.RELEASE_FILE)

    @property
    def destination(self) -> Folder | None:
        """Where every copy goes (None for a restore or a release: each goes back to its own place)."""
        return Folder.QUARANTINE if self is ActionKind.BLOCK_FILE else _DESTINATION.get(self)

    @property
    def undoable(self) -> bool:
        """Moves, soft deletes and file blocks can be undone; a hard delete is final."""
        return (self.moves_mail and self not in (ActionKind.HARD_DELETE, ActionKind.RESTORE)) or self is ActionKind.BLOCK_FILE

    @property
    def label(self) -> str:
        return _LABELS.get(self, self.value)


_DESTINATION = {
    ActionKind.SOFT_DELETE: SOFT_DELETE_FOLDER,
    ActionKind.HARD_DELETE: HARD_DELETE_FOLDER,
    ActionKind.MOVE_TO_INBOX: Folder.INBOX,
    ActionKind.MOVE_TO_JUNK: Folder.JUNK,
    ActionKind.MOVE_TO_DELETED_ITEMS: Folder.DELETED_ITEMS,
}

_LABELS = {
    ActionKind.SOFT_DELETE: "Soft delete", ActionKind.HARD_DELETE: "Hard delete",
    ActionKind.MOVE_TO_INBOX: "Move to Inbox", ActionKind.MOVE_TO_JUNK: "Move to Junk",
    ActionKind.MOVE_TO_DELETED_ITEMS: "Move to Deleted Items", ActionKind.RESTORE: "Restore (undo)",
    ActionKind.BLOCK_URL: "Block URL", ActionKind.BLOCK_SENDER: "Block sender", ActionKind.BLOCK_DOMAIN: "Block domain",
    ActionKind.REMOVE_FORWARDING_RULE: "Remove forwarding rule", ActionKind.REMOVE_INBOX_RULE: "Remove inbox rule",
    ActionKind.REMOVE_DELEGATION: "Remove delegation", ActionKind.RESET_PASSWORD: "Reset password",
    ActionKind.DISABLE_USER: "Disable user", ActionKind.BLOCK_FILE: "Block file", ActionKind.RELEASE_FILE: "Release file",
}


@dataclass(frozen=True)
class Landing:
    """What a copy arriving in a folder means in EmailPostDeliveryEvents and EmailEvents."""

    action: PostDeliveryAction
    location: DeliveryLocation
    latest_action: LatestDeliveryAction


def landing(kind: ActionKind, folder: Folder) -> Landing:
    """The post-delivery Action, DeliveryLocation and LatestDeliveryAction of a copy moved to *folder*."""
    if kind is ActionKind.HARD_DELETE:
        folder = Folder.RECOVERABLE_PURGES
    elif kind is ActionKind.SOFT_DELETE:
        folder = Folder.RECOVERABLE_DELETIONS
    return _LANDING.get(folder, _LANDING[Folder.DELETED_ITEMS])


_P, _L, _D = PostDeliveryAction, LatestDeliveryAction, DeliveryLocation
_LANDING = {
    Folder.INBOX: Landing(_P.MOVE_TO_INBOX, _D.INBOX, _L.MOVED_TO_INBOX),
    Folder.SENT_ITEMS: Landing(_P.MOVE_TO_INBOX, _D.INBOX, _L.MOVED_TO_INBOX),
    Folder.JUNK: Landing(_P.MOVE_TO_JUNK, _D.JUNK, _L.MOVED_TO_JUNK),
    Folder.QUARANTINE: Landing(_P.MOVE_TO_QUARANTINE, _D.QUARANTINE, _L.MOVED_TO_QUARANTINE),
    Folder.DELETED_ITEMS: Landing(_P.MOVE_TO_DELETED_ITEMS, _D.DELETED_ITEMS, _L.MOVED_TO_DELETED_ITEMS),
    Folder.RECOVERABLE_DELETIONS: Landing(_P.SOFT_DELETE, _D.DELETED_ITEMS, _L.SOFT_DELETED),
    Folder.RECOVERABLE_PURGES: Landing(_P.HARD_DELETE, _D.DELETED_ITEMS, _L.HARD_DELETED),
}


@dataclass(frozen=True)
class Totals:
    """Per-message results of an action, counted."""

    targets: int = 0
    success: int = 0
    failure: int = 0
    already: int = 0  # already in the destination
    not_found: int = 0

    @property
    def done(self) -> int:
        return self.success + self.failure + self.already + self.not_found

    @property
    def status(self) -> ActionStatus:
        """The final status these results give: completed when every copy is where it should
        be, failed when none is, partially completed otherwise."""
        good, bad = self.success + self.already, self.failure + self.not_found
        if not bad:
            return ActionStatus.COMPLETED
        return ActionStatus.FAILED if not good else ActionStatus.PARTIALLY_COMPLETED

    def render(self) -> str:
        return (f"{self.targets:,} copies: {self.success:,} moved, {self.already:,} already there, "
                f"{self.not_found:,} not found, {self.failure:,} failed")


@dataclass(frozen=True)
class Action:
    id: int
    kind: ActionKind
    status: ActionStatus
    source: ActionSource
    source_ref: str  # e.g. "investigation 12 / proposal 40"
    name: str
    target_kind: str  # "email" for mail actions, else the entity kind (url, domain, mailbox, user...)
    target: str  # the entity (or a description of the copies)
    reason: str
    proposed_by: str
    created: datetime
    expires: datetime
    decided_by: str = ""
    decided: datetime | None = None
    comment: str = ""
    started: datetime | None = None
    finished: datetime | None = None
    runner: str = ""
    heartbeat: datetime | None = None
    undo_of: int | None = None
    investigation_id: int | None = None
    totals: Totals = Totals()

    @property
    def approved_by(self) -> str:
        return self.decided_by if self.status not in (ActionStatus.REJECTED, ActionStatus.EXPIRED) else ""


@dataclass(frozen=True)
class MessageResult:
    """One copy in an action: where it was, where it went, and what happened."""

    seq: int
    network_message_id: str
    mailbox: str
    destination: Folder | None
    state: str  # pending, moving (intent recorded, result not yet), done
    outcome: Outcome | None = None
    source_folder: Folder | None = None
    reason: str = ""
    attempted: datetime | None = None
    attempts: int = 0


@dataclass(frozen=True)
class ActionEvent:
    """A line of an action's history."""

    at: datetime
    actor: str
    event: str
    comment: str = ""


@dataclass(frozen=True)
class DryRunRow:
    """What a run would do to one copy, from its folder right now."""

    network_message_id: str
    mailbox: str
    current: Folder | None
    destination: Folder | None  # None: back to its own place (a file release)
    would: Outcome  # SUCCESS (would move), ALREADY_IN_DESTINATION, NOT_FOUND


__all__ = ["EXPIRY", "ActionStatus", "ActionSource", "ActionKind", "Landing", "landing", "Totals", "Action",
           "MessageResult", "ActionEvent", "DryRunRow"]
