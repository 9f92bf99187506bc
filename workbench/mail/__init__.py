"""Mail stores that remediation acts on, addressed by NetworkMessageId and mailbox."""

from workbench.mail.base import HARD_DELETE_FOLDER, SOFT_DELETE_FOLDER, CopyRef, CopyResult, MailStore, Outcome
from workbench.mail.embedded import EmbeddedMailStore
from workbench.mail.maildir import MaildirMailStore

__all__ = [
    "EmbeddedMailStore", "MaildirMailStore", "MailStore", "CopyRef", "CopyResult", "Outcome",
    "SOFT_DELETE_FOLDER", "HARD_DELETE_FOLDER",
]
