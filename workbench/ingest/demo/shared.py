"""Ordinary shared files of the demo organisation (SharePoint sites, OneDrive drives, Teams), so
the file store holds more than the planted malware. Derived from the organisation alone (no
random draws), so adding them changes no other generated row."""

from __future__ import annotations

from collections.abc import Iterator

from workbench.enums import FileWorkload
from workbench.files.store import FileRef
from workbench.ingest.demo.content import attachment_for
from workbench.ingest.demo.org import Organisation

_SITE_FILES = (
    ("Finance", "Shared Documents/Policies/Expense policy.docx", "docx", "Expense policy: claims within 30 days."),
    ("Finance", "Shared Documents/AP/Supplier list.xlsx", "xlsx", "Approved suppliers and payment terms."),
    ("HR", "Shared Documents/Handbook/Employee handbook.pdf", "pdf", "Employee handbook: leave, benefits, conduct."),
    ("Marketing", "Shared Documents/Brand/Brand guidelines.pptx", "pptx", "Logo use, colours and tone of voice."),
)
_TEAM_FILES = (
    ("SalesTeam", "Shared Documents/General/Pipeline review.xlsx", "xlsx", "Quarterly pipeline by region."),
    ("SalesTeam", "Shared Documents/General/Customer deck.pptx", "pptx", "Customer presentation template."),
)


def drive_of(upn: str) -> str:
    """A user's OneDrive folder name as it appears in their drive's SiteUrl."""
    return upn.replace("@", "_").replace(".", "_")


def benign_files(org: Organisation, per_workload: int = 2) -> Iterator[tuple[FileRef, bytes]]:
    """Harmless documents: a few per SharePoint site and team, and a couple of OneDrive drives."""
    for site, path, kind, text in _SITE_FILES:
        yield FileRef.of(FileWorkload.SHAREPOINT, site, path), attachment_for(path.rsplit("/", 1)[-1], kind, text).content
    for team, path, kind, text in _TEAM_FILES:
        yield FileRef.of(FileWorkload.TEAMS, team, path), attachment_for(path.rsplit("/", 1)[-1], kind, text).content
    for user in org.users[:per_workload]:
        name = f"Notes {user.given_name}.docx"
        yield (FileRef.of(FileWorkload.ONEDRIVE, drive_of(user.upn), f"Documents/{name}"),
               attachment_for(name, "docx", f"Meeting notes of {user.display_name}.").content)


__all__ = ["benign_files", "drive_of"]
