"""SIEM export (mdo-reference §8): the workbench's events as Office 365 Management Activity
records, OCSF or CEF, delivered at least once to files, syslog or HTTP collectors."""
