"""Mail stores that remediation acts on, addressed by NetworkMessageId and mailbox."""

from workbench.mail.embedded import EmbeddedMailStore

__all__ = ["EmbeddedMailStore"]
