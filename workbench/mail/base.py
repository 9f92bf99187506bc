"""What remediation asks of a mail store, whatever holds the mail (mdo-reference §4.6, §1.8).

A *copy* is one recipient's copy of a message, addressed like Defender addresses it: the
NetworkMessageId and the mailbox (recipient address, compared case-insensitively). Every
store — the embedded one of the demo tenant, a Maildir tree of a Dovecot/Postfix server, and
later IMAP or Microsoft Graph adapters — implements :class:`MailStore`.

Moves are **idempotent**: moving a copy that is already in the destination changes nothing
and answers ``AlreadyInDestination``; a copy that is not there answers ``NotFound``. So an
action killed half-way can simply be run again. Each result carries the folder the copy
was in (``source``), which is what an undo moves it back to. A copy found already in the
destination reports that folder as its source, so a caller that must undo across a crash
records :meth:`MailStore.folder` before moving (the action center writes that intent first).

Implementations: :class:`~workbench.mail.embedded.EmbeddedMailStore` (the demo tenant's SQLite
store) and :class:`~workbench.mail.maildir.MaildirMailStore` (Dovecot/Postfix Maildir trees). An
IMAP adapter maps folders to mailbox names and moves with ``UID MOVE`` (idempotent by looking the
copy up first); a Microsoft Graph adapter sends ``analyzedEmails/remediate`` with
``{networkMessageId, recipientEmailAddress}`` pairs (mdo-reference §8.2) and reports the per-copy
results it gets back. A store may also offer ``audit_path`` (where content searches of it are
audited, see :mod:`workbench.mail.search`).

>>> CopyRef.of("<id-1>", "Ann@Contoso.test").mailbox
'ann@contoso.test'
>>> CopyResult(CopyRef.of("id-1", "ann@contoso.test"), Outcome.SUCCESS, Folder.INBOX, Folder.RECOVERABLE_DELETIONS).moved
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from workbench.enums import Folder

#: Where a soft delete puts a copy (the user can still recover it) and where a hard delete
#: does (only an administrator can; the workbench never brings it back).
SOFT_DELETE_FOLDER = Folder.RECOVERABLE_DELETIONS
HARD_DELETE_FOLDER = Folder.RECOVERABLE_PURGES


class Outcome(StrEnum):
    """A copy's result in an action (the per-message results of §4.6)."""

    SUCCESS = "Success"
    FAILURE = "Failure"
    ALREADY_IN_DESTINATION = "AlreadyInDestination"
    NOT_FOUND = "NotFound"


@dataclass(frozen=True)
class CopyRef:
    """One recipient's copy of a message."""

    network_message_id: str
    mailbox: str

    @classmethod
    def of(cls, network_message_id: str, mailbox: str) -> CopyRef:
        """Normalised: the id without angle brackets or spaces, the mailbox lower-cased."""
        return cls(network_message_id.strip().strip("<>").strip(), mailbox.strip().lower())


@dataclass(frozen=True)
class CopyResult:
    """What happened to one copy: where it was (``source``), where it is now, and why not if not."""

    ref: CopyRef
    outcome: Outcome
    source: Folder | None = None
    destination: Folder | None = None
    reason: str = ""

    @property
    def moved(self) -> bool:
        return self.outcome is Outcome.SUCCESS


@runtime_checkable
class MailStore(Protocol):
    """A store of mailboxes remediation can act on."""

    def mailboxes(self) -> list[str]:
        """Every mailbox (lower-cased address) holding at least one copy."""
        ...

    def folder_counts(self, mailbox: str) -> dict[Folder, int]:
        """Copies per folder of *mailbox* (folders with none are left out)."""
        ...

    def messages_in(self, mailbox: str, folder: Folder | str) -> list[str]:
        """NetworkMessageIds of the copies in one folder of *mailbox*."""
        ...

    def folder(self, network_message_id: str, mailbox: str) -> Folder | None:
        """The folder holding that copy, or None when the mailbox has no such copy."""
        ...

    def raw(self, network_message_id: str) -> bytes:
        """The message as RFC 5322 bytes (raises NotFound)."""
        ...

    def move(self, refs: Sequence[CopyRef], destination: Folder) -> list[CopyResult]:
        """Move each copy to *destination*; one result per ref, in order. Idempotent: a copy
        already there is ``AlreadyInDestination``, a missing one ``NotFound``; a copy is never
        duplicated or lost, even if the process dies in the middle (each move is atomic)."""
        ...
