"""The analyzers; importing this package registers every one of them in ``ANALYZERS``."""

from workbench.detect.analyzers import attachments, auth, content, intel, lookalike, people, urls, yara  # noqa: F401
