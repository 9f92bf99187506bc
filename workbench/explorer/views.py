"""Explorer views (mdo-reference §1.2): what each lists, its pivots (§1.6), columns and tabs (§1.7).

>>> view("Phish").pivots[0], view("phish").table
('delivery_action', 'EmailEvents')
>>> [v.label for v in VIEWS.values()][:3]
['All email', 'Malware', 'Phish']
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.errors import InputError
from workbench.explorer.properties import BY_TABLE
from workbench.explorer.query import Cond, Node, Op, Or

EMAIL_COLUMNS = ("Timestamp", "Subject", "RecipientEmailAddress", "SenderFromAddress", "SenderFromDomain",
                 "DeliveryAction", "DeliveryLocation", "LatestDeliveryLocation", "ThreatTypes", "DetectionMethods",
                 "NetworkMessageId")
EMAIL_KEY = ("NetworkMessageId", "RecipientEmailAddress")


@dataclass(frozen=True)
class View:
    key: str
    label: str
    table: str
    base: Node | None  # the condition that makes the view (None: every row of the table)
    pivots: tuple[str, ...]  # property keys, the default first
    columns: tuple[str, ...]  # default grid columns
    row_key: tuple[str, ...]  # stable row identity for selection
    tabs: tuple[str, ...]
    description: str

    @property
    def properties(self):  # noqa: ANN201 - tuple[Property, ...]
        return BY_TABLE[self.table]


VIEWS: dict[str, View] = {v.key: v for v in (
    View("all_email", "All email", "EmailEvents", None,
         ("delivery_action", "sender_domain", "sender_ip", "detection_technology", "threat_classification",
          "url", "url_domain"),
         EMAIL_COLUMNS, EMAIL_KEY,
         ("Email", "URL clicks", "Top URLs", "Top clicks", "Top targeted users", "Email origin", "Campaign"),
         "Inbound, outbound and intra-org mail: malicious, clean, spam and bulk."),
    View("malware", "Malware", "EmailEvents", Cond("threat_type", Op.ANY, ("Malware",)),
         ("malware_family", "sender_domain", "sender_ip", "delivery_action", "threat_classification",
          "detection_technology"),
         EMAIL_COLUMNS, EMAIL_KEY,
         ("Email", "Top malware families", "Top targeted users", "Email origin", "Campaign"),
         "Mail with malware."),
    View("phish", "Phish", "EmailEvents", Cond("threat_type", Op.ANY, ("Phish",)),
         ("delivery_action", "sender_domain", "sender_ip", "detection_technology", "threat_classification",
          "url", "url_domain"),
         EMAIL_COLUMNS, EMAIL_KEY,
         ("Email", "URL clicks", "Top URLs", "Top clicks", "Top targeted users", "Email origin", "Campaign"),
         "Mail with phishing."),
    View("campaigns", "Campaigns", "EmailEvents",
         Or(Cond("threat_type", Op.ANY, ("Phish",)), Cond("threat_type", Op.ANY, ("Malware",))),
         ("cluster_id", "sender_domain", "delivery_action", "threat_type"),
         EMAIL_COLUMNS + ("EmailClusterId",), EMAIL_KEY,
         ("Campaign", "Email", "Top targeted users"),
         "Phish and malware grouped into campaigns by content cluster."),
    View("content_malware", "Content malware", "FileMaliciousContentInfo", None,
         ("malware_family", "detection_technology", "workload"),
         ("Timestamp", "FileName", "Workload", "ThreatTypes", "DetectionMethods", "LastModifiedBy", "FileOwner",
          "FileSize", "SiteUrl", "SHA256", "ThreatNames", "LatestFileAction"),
         ("ReportId",), ("Documents",),
         "Files in SharePoint, OneDrive and Teams flagged as malicious."),
    View("url_clicks", "URL clicks", "UrlClickEvents", None,
         ("url_domain", "workload", "detection_technology", "threat_type"),
         ("Timestamp", "AccountUpn", "ActionType", "Url", "NetworkMessageId", "ReportId", "IPAddress",
          "UrlChain", "ThreatTypes", "DetectionMethods", "IsClickedThrough"),
         ("ReportId", "IsClickedThrough"), ("Results", "Top clicks", "Top targeted users"),
         "Safe Links clicks from email, Teams and Office files."),
    View("user_reported", "User-reported", "EmailEvents",
         Cond("report_type", Op.ANY, ("Phish", "Junk", "Not junk")),
         ("report_type", "sender_domain", "delivery_action", "threat_type"),
         EMAIL_COLUMNS, EMAIL_KEY, ("Email", "Top targeted users"),
         "Mail that users reported as phishing, junk or not junk."),
)}


def view(name: str) -> View:
    """A view by key or label (case-insensitive)."""
    wanted = name.strip().lower().replace("-", "_").replace(" ", "_")
    for v in VIEWS.values():
        if wanted in (v.key, v.label.lower().replace("-", "_").replace(" ", "_")):
            return v
    raise InputError(f"unknown view {name!r}; choose one of: {', '.join(v.label for v in VIEWS.values())}")


__all__ = ["View", "VIEWS", "view", "EMAIL_COLUMNS", "EMAIL_KEY"]
