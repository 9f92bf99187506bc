"""The properties an Explorer condition can test, with the Advanced Hunting columns behind them.

A :class:`Property` names what the analyst sees ("Sender domain", mdo-reference §1.3–1.5),
where the value lives (a column of the view's table, or of a table joined on the message
and recipient) and how to read it: a plain column, a comma-separated list (``ThreatTypes``),
the values of a JSON object of lists (``DetectionMethods``), one field of a JSON object
(``AuthenticationDetails`` → SPF) or the first non-null of several columns (sender IP).

>>> p = prop("Sender domain")
>>> p.key, p.table, p.column, p.kind
('sender_domain', 'EmailEvents', 'SenderFromDomain', <Kind.TEXT: 'text'>)
>>> prop("spf").values[:3]
('pass', 'fail', 'softfail')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from workbench import enums, schema
from workbench.errors import InputError
from workbench.explorer.query import Op


class Kind(StrEnum):
    TEXT = "text"
    ENUM = "enum"
    INT = "int"
    BOOL = "bool"


# The operators that apply to each kind of property (the compiler rejects the others).
OPERATORS_BY_KIND: dict[Kind, tuple[Op, ...]] = {
    Kind.TEXT: (Op.ANY, Op.NONE, Op.CONTAINS, Op.WILDCARD, Op.REGEX, Op.LOOKALIKE),
    Kind.ENUM: (Op.ANY, Op.NONE, Op.CONTAINS, Op.REGEX),
    Kind.INT: (Op.ANY, Op.NONE, Op.GT, Op.LT),
    Kind.BOOL: (Op.ANY, Op.NONE),
}


class Shape(StrEnum):
    """How a column holds its value(s)."""

    PLAIN = "plain"  # one value
    COMMA_LIST = "comma_list"  # "Phish, Malware"
    JSON_LISTS = "json_lists"  # {"Phish":["URL detonation","Spoof DMARC"]}: the listed values
    JSON_FIELD = "json_field"  # {"SPF":"pass",...}: the value of one field
    JSON_ARRAY = "json_array"  # ["Priority account"]
    COALESCE = "coalesce"  # the first non-null of several columns (``column`` is comma-separated)
    URL_HOST = "url_host"  # the lower-cased host of a URL


@dataclass(frozen=True)
class Property:
    """One filterable (and, when single-valued, pivotable) property."""

    key: str
    label: str
    table: str
    column: str
    kind: Kind = Kind.TEXT
    group: str = "Basic"
    values: tuple[str, ...] = ()  # the choices of an enum property, for pickers and validation
    shape: Shape = Shape.PLAIN
    field: str = ""  # the JSON field of a JSON_FIELD property
    case_insensitive: bool = True  # addresses, domains, names: compare lower-cased
    mapping: tuple[tuple[str, str], ...] = ()  # stored value → shown value (e.g. "Phish ZAP" → "ZAP")

    @property
    def stored_lower(self) -> bool:
        """The lake stores this column lower-cased (domains): compare without lower-casing rows."""
        return self.shape is Shape.PLAIN and self.column in schema.table(self.table).lowercase_columns

    @property
    def operators(self) -> tuple[str, ...]:
        """The operators that apply to this property (the compiler rejects the others)."""
        return OPERATORS_BY_KIND[self.kind]

    @property
    def multi(self) -> bool:
        """True when one row can hold several values (the pivot explodes them)."""
        return self.shape in (Shape.COMMA_LIST, Shape.JSON_LISTS, Shape.JSON_ARRAY)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.column.split(",")) if self.shape is Shape.COALESCE else (self.column,)

    def value(self) -> pl.Expr:
        """The property's value per row: a string (or int/bool), or a list of strings when multi."""
        col = pl.col(self.column)
        if self.mapping:
            return col.replace_strict(dict(self.mapping), default=None, return_dtype=pl.String)
        if self.shape is Shape.PLAIN:
            return col
        if self.shape is Shape.COALESCE:
            return pl.coalesce([pl.col(c) for c in self.columns])
        if self.shape is Shape.URL_HOST:
            return host_expr(self.column)
        if self.shape is Shape.COMMA_LIST:
            return col.str.split(",").list.eval(pl.element().str.strip_chars()).list.drop_nulls()
        if self.shape is Shape.JSON_FIELD:
            return col.str.json_path_match(f"$.{self.field}")
        if self.shape is Shape.JSON_ARRAY:
            return col.str.extract_all(r'"((?:[^"\\]|\\.)*)"').list.eval(pl.element().str.strip_chars('"'))
        # JSON_LISTS: every quoted string followed by "," or "]" is a list member; keys are followed by ":".
        return col.str.extract_all(r'"(?:[^"\\]|\\.)*"\s*[,\]]').list.eval(
            pl.element().str.strip_chars_end(" ,]").str.strip_chars('"'))

    def canonical(self, value: str) -> str:
        """An enum value in its stored spelling (case-insensitive lookup), else *value* unchanged."""
        if self.values:
            for v in self.values:
                if v.lower() == value.lower():
                    return v
        return value


def _enum(e: type[StrEnum]) -> tuple[str, ...]:
    return tuple(v.value for v in e)


E, A, U, P, C, F, I, S = ("EmailEvents", "EmailAttachmentInfo", "EmailUrlInfo", "EmailPostDeliveryEvents",
                          "UrlClickEvents", "FileMaliciousContentInfo", "IdentityInfo", "CloudAppEvents")

# "Additional action" (§1.3): what happened after delivery, from EmailPostDeliveryEvents.ActionType.
ADDITIONAL_ACTIONS = {
    enums.PostDeliveryActionType.PHISH_ZAP.value: "ZAP",
    enums.PostDeliveryActionType.MALWARE_ZAP.value: "ZAP",
    enums.PostDeliveryActionType.SPAM_ZAP.value: "ZAP",
    enums.PostDeliveryActionType.MANUAL_REMEDIATION.value: "Manual remediation",
    enums.PostDeliveryActionType.AUTOMATED_REMEDIATION.value: "Automated remediation",
    enums.PostDeliveryActionType.REDELIVERY.value: "Reprocessed",
}

_EMAIL: tuple[Property, ...] = (
    # Basic
    Property("sender_address", "Sender address", E, "SenderFromAddress"),
    Property("recipients", "Recipients", E, "RecipientEmailAddress"),
    Property("sender_domain", "Sender domain", E, "SenderFromDomain"),
    Property("recipient_domain", "Recipient domain", E, "RecipientDomain"),
    Property("subject", "Subject", E, "Subject"),
    Property("sender_display_name", "Sender display name", E, "SenderDisplayName"),
    Property("sender_mail_from_address", "Sender mail from address", E, "SenderMailFromAddress"),
    Property("sender_mail_from_domain", "Sender mail from domain", E, "SenderMailFromDomain"),
    Property("malware_family", "Malware family", E, "ThreatNames", shape=Shape.COMMA_LIST),
    Property("delivery_action", "Delivery action", E, "DeliveryAction", Kind.ENUM, values=_enum(enums.DeliveryAction)),
    Property("directionality", "Directionality", E, "EmailDirection", Kind.ENUM, values=_enum(enums.EmailDirection)),
    Property("detection_technology", "Detection technology", E, "DetectionMethods", Kind.ENUM,
             values=_enum(enums.DetectionTechnology), shape=Shape.JSON_LISTS),
    Property("threat_classification", "Threat classification", E, "ThreatClassification", Kind.ENUM,
             values=_enum(enums.ThreatClassification)),
    Property("original_delivery_location", "Original delivery location", E, "DeliveryLocation", Kind.ENUM,
             values=_enum(enums.DeliveryLocation)),
    Property("latest_delivery_location", "Latest delivery location", E, "LatestDeliveryLocation", Kind.ENUM,
             values=_enum(enums.DeliveryLocation)),
    Property("latest_delivery_action", "Latest delivery action", E, "LatestDeliveryAction", Kind.ENUM,
             values=_enum(enums.LatestDeliveryAction)),
    Property("phish_confidence_level", "Phish confidence level", E, "ConfidenceLevel", Kind.ENUM,
             values=("High", "Normal"), shape=Shape.JSON_FIELD, field="Phish"),
    Property("policy_type", "Policy type", E, "EmailActionPolicy", Kind.ENUM, values=_enum(enums.EmailActionPolicy)),
    Property("policy_action", "Policy action", E, "EmailAction", Kind.ENUM, values=_enum(enums.EmailAction)),
    Property("threat_type", "Threat type", E, "ThreatTypes", Kind.ENUM, values=_enum(enums.ThreatType),
             shape=Shape.COMMA_LIST),
    Property("context", "Context", E, "Context"),
    Property("exchange_transport_rule", "Exchange transport rule", E, "ExchangeTransportRule"),
    Property("connector", "Connector", E, "Connectors"),
    Property("distribution_list", "Distribution list", E, "DistributionList"),
    Property("email_size", "Email size", E, "EmailSize", Kind.INT),
    Property("bulk_complaint_level", "Bulk complaint level", E, "BulkComplaintLevel", Kind.INT),
    Property("first_contact", "First contact", E, "IsFirstContact", Kind.BOOL),
    Property("language", "Mail language", E, "EmailLanguage"),
    Property("additional_action", "Additional action", P, "ActionType", Kind.ENUM,
             values=tuple(dict.fromkeys(ADDITIONAL_ACTIONS.values())), mapping=tuple(ADDITIONAL_ACTIONS.items())),
    Property("post_delivery_action", "Post-delivery action type", P, "ActionType", Kind.ENUM, group="Advanced",
             values=_enum(enums.PostDeliveryActionType)),
    Property("post_delivery_result", "Post-delivery action result", P, "ActionResult", Kind.ENUM, group="Advanced",
             values=_enum(enums.ActionResult)),
    Property("tags", "Tags", I, "Tags", shape=Shape.JSON_ARRAY),
    Property("report_type", "User report type", S, "RawEventData", Kind.ENUM, values=_enum(enums.ReportType),
             shape=Shape.JSON_FIELD, field="ReportType"),
    Property("org_level_action", "Org-level override", E, "OrgLevelAction"),
    Property("org_level_policy", "Org-level override policy", E, "OrgLevelPolicy"),
    Property("user_level_action", "User-level override", E, "UserLevelAction"),
    # Advanced
    Property("alert_id", "Alert ID", "AlertEvidence", "AlertId", group="Advanced", case_insensitive=False),
    Property("internet_message_id", "Internet message ID", E, "InternetMessageId", group="Advanced",
             case_insensitive=False),
    Property("network_message_id", "Network message ID", E, "NetworkMessageId", group="Advanced"),
    Property("sender_ip", "Sender IP", E, "SenderIPv4,SenderIPv6", group="Advanced", shape=Shape.COALESCE),
    Property("cluster_id", "Cluster ID", E, "EmailClusterId", Kind.INT, group="Advanced"),
    Property("attachment_sha256", "Attachment SHA256", A, "SHA256", group="Advanced"),
    # Urls
    Property("url_count", "URL count", E, "UrlCount", Kind.INT, group="Urls"),
    Property("url", "URL", U, "Url", group="Urls", case_insensitive=False),
    Property("url_domain", "URL domain", U, "UrlDomain", group="Urls"),
    Property("url_source", "URL source", U, "UrlLocation", Kind.ENUM, group="Urls", values=_enum(enums.UrlLocation)),
    Property("click_verdict", "Click verdict", C, "ActionType", Kind.ENUM, group="Urls", values=_enum(enums.ClickAction)),
    # File
    Property("attachment_count", "Attachment count", E, "AttachmentCount", Kind.INT, group="File"),
    Property("attachment_filename", "Attachment filename", A, "FileName", group="File"),
    Property("file_type", "File type", A, "FileType", group="File"),
    Property("file_size", "File size", A, "FileSize", Kind.INT, group="File"),
    # Authentication
    Property("spf", "SPF", E, "AuthenticationDetails", Kind.ENUM, "Authentication", _enum(enums.SpfResult),
             Shape.JSON_FIELD, "SPF"),
    Property("dkim", "DKIM", E, "AuthenticationDetails", Kind.ENUM, "Authentication", _enum(enums.DkimResult),
             Shape.JSON_FIELD, "DKIM"),
    Property("dmarc", "DMARC", E, "AuthenticationDetails", Kind.ENUM, "Authentication", _enum(enums.DmarcResult),
             Shape.JSON_FIELD, "DMARC"),
    Property("composite_authentication", "Composite authentication", E, "AuthenticationDetails", Kind.ENUM,
             "Authentication", _enum(enums.CompAuthResult), Shape.JSON_FIELD, "CompAuth"),
)

_CONTENT_MALWARE: tuple[Property, ...] = (
    Property("file_name", "File name", F, "FileName"),
    Property("workload", "Workload", F, "Workload", Kind.ENUM, values=_enum(enums.FileWorkload)),
    Property("site", "Site", F, "SiteUrl", case_insensitive=False),
    Property("file_owner", "File owner", F, "FileOwner"),
    Property("last_modified_by", "Last modified by", F, "LastModifiedBy"),
    Property("sha256", "SHA256", F, "SHA256"),
    Property("malware_family", "Malware family", F, "ThreatNames", shape=Shape.COMMA_LIST),
    Property("detection_technology", "Detection technology", F, "DetectionMethods", Kind.ENUM,
             values=_enum(enums.DetectionTechnology), shape=Shape.JSON_LISTS),
    Property("threat_type", "Threat type", F, "ThreatTypes", Kind.ENUM, values=_enum(enums.ThreatType),
             shape=Shape.COMMA_LIST),
    Property("file_size", "File size", F, "FileSize", Kind.INT),
    Property("file_action", "Latest action", F, "LatestFileAction", Kind.ENUM, values=_enum(enums.FileAction)),
)

_URL_CLICKS: tuple[Property, ...] = (
    Property("recipients", "Recipients", C, "AccountUpn"),
    Property("network_message_id", "Network message ID", C, "NetworkMessageId"),
    Property("url", "URL", C, "Url", case_insensitive=False),
    Property("url_domain", "URL domain", C, "Url", shape=Shape.URL_HOST),
    Property("click_action", "Click action", C, "ActionType", Kind.ENUM, values=_enum(enums.ClickAction)),
    Property("workload", "Workload", C, "Workload", Kind.ENUM, values=_enum(enums.ClickWorkload)),
    Property("threat_type", "Threat type", C, "ThreatTypes", Kind.ENUM, values=_enum(enums.ThreatType),
             shape=Shape.COMMA_LIST),
    Property("detection_technology", "Detection technology", C, "DetectionMethods", Kind.ENUM,
             values=_enum(enums.DetectionTechnology), shape=Shape.JSON_LISTS),
    Property("click_id", "Click ID", C, "ReportId", case_insensitive=False),
    Property("client_ip", "Client IP", C, "IPAddress"),
    Property("clicked_through", "Clicked through", C, "IsClickedThrough", Kind.BOOL),
    Property("tags", "Tags", I, "Tags", shape=Shape.JSON_ARRAY),
)

# Property sets by the table a view lists.
BY_TABLE: dict[str, tuple[Property, ...]] = {E: _EMAIL, F: _CONTENT_MALWARE, C: _URL_CLICKS}

_HOST = r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^/@?#]*@)?\[?([^/:?#\]]+)"


def host_expr(column: str) -> pl.Expr:
    """The lower-cased host of a URL column."""
    return pl.col(column).str.extract(_HOST, 1).str.to_lowercase()


def properties(table: str = E) -> tuple[Property, ...]:
    """The properties of the views listing *table*."""
    try:
        return BY_TABLE[table]
    except KeyError:
        raise InputError(f"no Explorer properties for table {table!r}; use one of {', '.join(BY_TABLE)}") from None


def _norm(text: str) -> str:
    return re.sub(r"[\s_-]+", " ", text.strip().lower())


def prop(name: str, table: str = E) -> Property:
    """A property of *table*'s views by key or label, case- and spacing-insensitive."""
    wanted = _norm(name)
    for p in properties(table):
        if wanted in (_norm(p.key), _norm(p.label)):
            return p
    labels = ", ".join(p.label for p in properties(table))
    raise InputError(f"unknown property {name!r} for {table}; choose one of: {labels}")


__all__ = ["Kind", "Shape", "OPERATORS_BY_KIND", "Property", "properties", "prop", "host_expr", "ADDITIONAL_ACTIONS", "BY_TABLE"]
