"""Shared files of SharePoint, OneDrive and Teams: a folder tree per workload and site, with a
quarantine that blocking and releasing move files into and out of (see store.py)."""

from workbench.files.store import (
    QUARANTINE, FileBlocked, FileRef, FileResult, FileStore, StoredFile, UnsafePath, check_sha256, ref_for_row, site_of,
)

__all__ = ["FileStore", "FileRef", "StoredFile", "FileResult", "FileBlocked", "UnsafePath", "QUARANTINE",
           "check_sha256", "site_of", "ref_for_row"]
