"""Mail stores that remediation acts on, addressed by NetworkMessageId and mailbox.

:func:`open_mail_store` opens the store a tenant is configured to use (:mod:`workbench.mail.config`).
"""

from workbench.mail.base import HARD_DELETE_FOLDER, SOFT_DELETE_FOLDER, CopyRef, CopyResult, MailStore, Outcome
from workbench.mail.config import MailConfig, configure_embedded, configure_maildir, open_mail_store
from workbench.mail.embedded import EmbeddedMailStore
from workbench.mail.maildir import MaildirMailStore

__all__ = [
    "EmbeddedMailStore", "MaildirMailStore", "MailStore", "CopyRef", "CopyResult", "Outcome",
    "SOFT_DELETE_FOLDER", "HARD_DELETE_FOLDER",
    "MailConfig", "open_mail_store", "configure_maildir", "configure_embedded",
]
