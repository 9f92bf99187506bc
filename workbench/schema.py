"""Canonical tables: polars schemas with the Advanced Hunting names (mdo-reference §9).

A table is a frozen :class:`Table`: its name, its columns in order, the column that
partitions it by day (``Timestamp``) and the columns that identify a row (``ReportId``
for the email tables). ``dynamic`` columns of Advanced Hunting are JSON text here.

>>> EmailEvents.name, EmailEvents.key
('EmailEvents', ('ReportId',))
>>> EmailEvents.schema["Timestamp"]
Datetime(time_unit='us', time_zone='UTC')
>>> sorted(TABLES)[:3]
['AADSignInEventsBeta', 'AlertEvidence', 'AlertInfo']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from workbench import enums
from workbench.errors import NotFound, SchemaError
from workbench.enums import *  # noqa: F403  (the closed value sets travel with the schema)

# Advanced Hunting types → polars.
DATETIME = pl.Datetime("us", "UTC")
STRING = pl.String()
INT = pl.Int32()
LONG = pl.Int64()
BOOL = pl.Boolean()
DYNAMIC = pl.String()  # JSON text
FLOAT = pl.Float64()


@dataclass(frozen=True)
class Table:
    """One canonical table."""

    name: str
    columns: tuple[tuple[str, pl.DataType], ...]
    description: str
    key: tuple[str, ...] = ("ReportId",)
    time_column: str = "Timestamp"
    required: tuple[str, ...] = ()  # columns a record of this table cannot lack (beyond key and time)
    schema: pl.Schema = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [name for name, _ in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate column names")
        missing = [c for c in (*self.key, self.time_column, *self.required) if c not in names]
        if missing:
            raise ValueError(f"{self.name}: key/time columns {missing} are not columns")
        object.__setattr__(self, "schema", pl.Schema(dict(self.columns)))

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def lowercase_columns(self) -> tuple[str, ...]:
        """Domain columns: DNS names are case-insensitive, so the lake stores them lower-cased
        (and queries compare them without lower-casing every row)."""
        return tuple(name for name, dtype in self.columns if name.endswith("Domain") and dtype == STRING)

    def empty(self) -> pl.DataFrame:
        """An empty frame with this table's schema."""
        return pl.DataFrame(schema=self.schema)

    def from_rows(self, rows: list[dict]) -> pl.DataFrame:
        """A frame of this table from dicts (missing keys are null, extra keys ignored)."""
        if not rows:
            return self.empty()
        names = self.column_names
        return pl.DataFrame([{c: r.get(c) for c in names} for r in rows], schema=self.schema)

    def validate(self, frame: pl.DataFrame | pl.LazyFrame) -> None:
        """Raise :class:`SchemaError` naming the first missing, extra or mistyped column."""
        actual = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
        for name, expected in self.schema.items():
            if name not in actual:
                raise SchemaError(
                    f"{self.name}: column {name!r} is missing (expected {expected}); "
                    f"add it, or use {self.name}.conform(frame) to add nulls"
                )
            if actual[name] != expected:
                raise SchemaError(
                    f"{self.name}: column {name!r} has type {actual[name]}, expected {expected}; "
                    f"cast it with pl.col({name!r}).cast({expected!r})"
                )
        extra = [name for name in actual if name not in self.schema]
        if extra:
            raise SchemaError(
                f"{self.name}: unknown column {extra[0]!r} (type {actual[extra[0]]}); "
                f"drop it or rename it to one of the table's columns"
            )

    def conform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Add missing columns as nulls, cast to the canonical types and order columns.

        Extra columns are an error; casting failures raise polars' error with the column.
        """
        extra = [name for name in frame.columns if name not in self.schema]
        if extra:
            raise SchemaError(f"{self.name}: unknown column {extra[0]!r}; drop or rename it")
        return frame.select(
            [
                (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
                for name, dtype in self.columns
            ]
        )


def _table(name: str, description: str, cols: str, key: tuple[str, ...] = ("ReportId",),
           required: tuple[str, ...] = ()) -> Table:
    """Build a table from 'Name type' lines (types: datetime string int long bool dynamic float)."""
    types = {
        "datetime": DATETIME,
        "string": STRING,
        "int": INT,
        "long": LONG,
        "bool": BOOL,
        "dynamic": DYNAMIC,
        "float": FLOAT,
    }
    columns = []
    for line in cols.strip().splitlines():
        col_name, col_type = line.split()
        columns.append((col_name, types[col_type]))
    return Table(name=name, columns=tuple(columns), description=description, key=key, required=required)


EmailEvents = _table(
    "EmailEvents",
    "One row per message and recipient: delivery, verdicts, authentication (§9.1).",
    """
    Timestamp datetime
    NetworkMessageId string
    InternetMessageId string
    SenderMailFromAddress string
    SenderFromAddress string
    SenderDisplayName string
    SenderObjectId string
    SenderMailFromDomain string
    SenderFromDomain string
    SenderIPv4 string
    SenderIPv6 string
    RecipientEmailAddress string
    RecipientObjectId string
    RecipientDomain string
    Subject string
    EmailClusterId long
    EmailDirection string
    DeliveryAction string
    DeliveryLocation string
    ThreatTypes string
    ThreatNames string
    DetectionMethods string
    ThreatClassification string
    ConfidenceLevel string
    BulkComplaintLevel int
    EmailAction string
    EmailActionPolicy string
    EmailActionPolicyGuid string
    AuthenticationDetails string
    AttachmentCount int
    UrlCount int
    EmailLanguage string
    EmailSize long
    Connectors string
    ExchangeTransportRule string
    DistributionList string
    Context string
    OrgLevelAction string
    OrgLevelPolicy string
    UserLevelAction string
    UserLevelPolicy string
    IsFirstContact bool
    LatestDeliveryLocation string
    LatestDeliveryAction string
    AdditionalFields dynamic
    ReportId string
    """,
    required=("NetworkMessageId",),
)

EmailAttachmentInfo = _table(
    "EmailAttachmentInfo",
    "One row per attachment and recipient (§9.2).",
    """
    Timestamp datetime
    NetworkMessageId string
    SenderFromAddress string
    SenderDisplayName string
    SenderObjectId string
    RecipientEmailAddress string
    RecipientObjectId string
    FileName string
    FileType string
    SHA256 string
    FileSize long
    ThreatTypes string
    ThreatNames string
    DetectionMethods string
    ReportId string
    """,
    required=("NetworkMessageId",),
)

EmailUrlInfo = _table(
    "EmailUrlInfo",
    "One row per URL per message, with where in the message it was found (§9.3).",
    """
    Timestamp datetime
    NetworkMessageId string
    Url string
    UrlDomain string
    UrlLocation string
    ReportId string
    """,
    required=("NetworkMessageId", "Url"),
)

EmailPostDeliveryEvents = _table(
    "EmailPostDeliveryEvents",
    "Actions on delivered mail: ZAP, manual and automated remediation, redelivery (§9.4).",
    """
    Timestamp datetime
    NetworkMessageId string
    InternetMessageId string
    Action string
    ActionType string
    ActionTrigger string
    ActionResult string
    RecipientEmailAddress string
    SenderFromAddress string
    EmailDirection string
    DeliveryLocation string
    ThreatTypes string
    DetectionMethods string
    ReportId string
    """,
    required=("NetworkMessageId",),
)

# A click-through writes two rows with the same ReportId (the block page, then the click
# through it), so the click-through flag is part of the key.
UrlClickEvents = _table(
    "UrlClickEvents",
    "Safe Links clicks from email, Office and Teams (§9.5).",
    """
    Timestamp datetime
    Url string
    ActionType string
    AccountUpn string
    Workload string
    NetworkMessageId string
    ThreatTypes string
    DetectionMethods string
    IPAddress string
    IsClickedThrough bool
    UrlChain string
    ReportId string
    """,
    key=("ReportId", "IsClickedThrough"),
    required=("Url",),
)

AADSignInEventsBeta = _table(
    "AADSignInEventsBeta",
    "Entra ID interactive and non-interactive sign-ins (§9.7).",
    """
    Timestamp datetime
    Application string
    ApplicationId string
    LogonType string
    ErrorCode int
    CorrelationId string
    SessionId string
    AccountDisplayName string
    AccountObjectId string
    AccountUpn string
    IsExternalUser int
    IsGuestUser bool
    AlternateSignInName string
    LastPasswordChangeTimestamp datetime
    ResourceDisplayName string
    ResourceId string
    ResourceTenantId string
    DeviceName string
    AadDeviceId string
    OSPlatform string
    DeviceTrustType string
    IsManaged int
    IsCompliant int
    AuthenticationProcessingDetails string
    AuthenticationRequirement string
    TokenIssuerType int
    RiskLevelAggregated int
    RiskDetails int
    RiskState int
    UserAgent string
    ClientAppUsed string
    Browser string
    ConditionalAccessPolicies string
    ConditionalAccessStatus int
    IPAddress string
    Country string
    State string
    City string
    Latitude string
    Longitude string
    NetworkLocationDetails string
    RequestId string
    ReportId string
    EndpointCall string
    """,
)

CloudAppEvents = _table(
    "CloudAppEvents",
    "Office 365 audit activity: mailbox rules, forwarding, delegation, file activity (§9.8).",
    """
    Timestamp datetime
    ActionType string
    Application string
    ApplicationId int
    AppInstanceId int
    AccountObjectId string
    AccountId string
    AccountDisplayName string
    IsAdminOperation bool
    DeviceType string
    OSPlatform string
    IPAddress string
    IsAnonymousProxy bool
    CountryCode string
    City string
    Isp string
    UserAgent string
    ActivityType string
    ActivityObjects dynamic
    ObjectName string
    ObjectType string
    ObjectId string
    ReportId string
    AccountType string
    IsExternalUser bool
    IsImpersonated bool
    IPTags dynamic
    IPCategory string
    UserAgentTags dynamic
    RawEventData dynamic
    AdditionalFields dynamic
    LastSeenForUser dynamic
    UncommonForUser dynamic
    AuditSource string
    SessionData dynamic
    OAuthAppId string
    """,
)

FileMaliciousContentInfo = _table(
    "FileMaliciousContentInfo",
    "Malicious files detected in SharePoint, OneDrive and Teams (content malware, §1.4); LatestFileAction "
    "(Blocked / Released, set by the action center) is the workbench's own column.",
    """
    Timestamp datetime
    Workload string
    FileName string
    FolderPath string
    SiteUrl string
    DocumentId string
    SHA256 string
    FileSize long
    ThreatTypes string
    ThreatNames string
    DetectionMethods string
    FileOwner string
    LastModifiedBy string
    LastModifiedTime datetime
    ReportId string
    LatestFileAction string
    """,
)

DeviceInfo = _table(
    "DeviceInfo",
    "Endpoint inventory snapshots (Defender for Endpoint subset).",
    """
    Timestamp datetime
    DeviceId string
    DeviceName string
    OSPlatform string
    OSVersion string
    PublicIP string
    LoggedOnUsers dynamic
    MachineGroup string
    IsAzureADJoined bool
    ReportId string
    """,
)

AlertInfo = _table(
    "AlertInfo",
    "Alerts raised by the security products (subset of the Defender XDR table).",
    """
    Timestamp datetime
    AlertId string
    Title string
    Category string
    Severity string
    ServiceSource string
    DetectionSource string
    AttackTechniques string
    """,
    key=("AlertId",),
)

AlertEvidence = _table(
    "AlertEvidence",
    "Entities attached to alerts (subset); ReportId is ours, one per evidence row.",
    """
    Timestamp datetime
    AlertId string
    Title string
    Categories string
    AttackTechniques string
    ServiceSource string
    DetectionSource string
    EntityType string
    EvidenceRole string
    EvidenceDirection string
    FileName string
    FolderPath string
    SHA256 string
    RemoteIP string
    RemoteUrl string
    AccountName string
    AccountDomain string
    AccountObjectId string
    AccountUpn string
    DeviceId string
    DeviceName string
    LocalIP string
    NetworkMessageId string
    EmailSubject string
    ProcessCommandLine string
    Severity string
    AdditionalFields dynamic
    ReportId string
    """,
    required=("AlertId", "EntityType"),
)

IdentityInfo = _table(
    "IdentityInfo",
    "The directory: one row per account per snapshot, with department, manager and tags.",
    """
    Timestamp datetime
    AccountObjectId string
    AccountUpn string
    AccountDisplayName string
    GivenName string
    Surname string
    EmailAddress string
    Department string
    JobTitle string
    CompanyName string
    City string
    Country string
    TimeZone string
    Manager string
    Tags dynamic
    AssignedRoles dynamic
    IsAccountEnabled bool
    CreatedDateTime datetime
    ReportId string
    """,
)

# Device* tables repeat ReportId per device (a counter): an event is ReportId + DeviceName +
# Timestamp (the Advanced Hunting docs' advice).
DeviceEvents = _table(
    "DeviceEvents",
    "Endpoint events of many kinds (Defender for Endpoint): security controls, LDAP searches, "
    "registry, process and network events not in the other Device* tables.",
    """
    Timestamp datetime
    DeviceId string
    DeviceName string
    ActionType string
    FileName string
    FolderPath string
    SHA1 string
    SHA256 string
    MD5 string
    FileSize long
    AccountDomain string
    AccountName string
    AccountSid string
    RemoteUrl string
    RemoteDeviceName string
    ProcessId long
    ProcessCommandLine string
    ProcessCreationTime datetime
    ProcessTokenElevation string
    LogonId long
    RegistryKey string
    RegistryValueName string
    RegistryValueData string
    RemoteIP string
    RemotePort int
    LocalIP string
    LocalPort int
    FileOriginUrl string
    FileOriginIP string
    InitiatingProcessSHA1 string
    InitiatingProcessSHA256 string
    InitiatingProcessMD5 string
    InitiatingProcessFileName string
    InitiatingProcessFileSize long
    InitiatingProcessFolderPath string
    InitiatingProcessId long
    InitiatingProcessCommandLine string
    InitiatingProcessCreationTime datetime
    InitiatingProcessAccountDomain string
    InitiatingProcessAccountName string
    InitiatingProcessAccountSid string
    InitiatingProcessAccountUpn string
    InitiatingProcessAccountObjectId string
    InitiatingProcessVersionInfoCompanyName string
    InitiatingProcessVersionInfoProductName string
    InitiatingProcessVersionInfoProductVersion string
    InitiatingProcessVersionInfoInternalFileName string
    InitiatingProcessVersionInfoOriginalFileName string
    InitiatingProcessVersionInfoFileDescription string
    InitiatingProcessParentId long
    InitiatingProcessParentFileName string
    InitiatingProcessParentCreationTime datetime
    InitiatingProcessLogonId long
    ReportId string
    AppGuardContainerId string
    AdditionalFields dynamic
    """,
    key=("ReportId", "DeviceName", "Timestamp"),
    required=("DeviceId", "ActionType"),
)

#: The directory table under its everyday name.
Directory = IdentityInfo

TABLES: Mapping[str, Table] = {
    t.name: t
    for t in (
        EmailEvents,
        EmailAttachmentInfo,
        EmailUrlInfo,
        EmailPostDeliveryEvents,
        UrlClickEvents,
        AADSignInEventsBeta,
        CloudAppEvents,
        FileMaliciousContentInfo,
        DeviceInfo,
        AlertInfo,
        AlertEvidence,
        IdentityInfo,
        DeviceEvents,
    )
}


def table(name: str | Table) -> Table:
    """Look a table up by name; unknown names raise :class:`NotFound` listing the known ones."""
    if isinstance(name, Table):
        return name
    try:
        return TABLES[name]
    except KeyError:
        raise NotFound(f"unknown table {name!r}; known tables: {', '.join(sorted(TABLES))}") from None


__all__ = ["Table", "TABLES", "table", "Directory", *TABLES, *enums.__all__]
