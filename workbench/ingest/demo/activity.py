"""Everything people do besides receiving mail: sign-ins, file and mailbox activity,
link clicks, device inventory, and the directory itself.

Row builders (:func:`signin`, :func:`cloud_event`, :func:`click`) fill every column with a
plausible default so attack stories only state what matters to them; the ``day_*``
functions draw a day of ordinary activity for the whole organisation, vectorised.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl

from workbench import schema
from workbench.enums import ClickAction, ClickWorkload, CloudAppActionType, DeliveryAction, EmailDirection
from workbench.ingest.demo import vocab
from workbench.ingest.demo.org import Organisation, User

APPS = {
    "Office 365 Exchange Online": "00000002-0000-0ff1-ce00-000000000000",
    "Microsoft Teams": "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
    "Office 365 SharePoint Online": "00000003-0000-0ff1-ce00-000000000000",
    "Microsoft Office": "d3590ed6-52b3-4102-aeff-aad2292ab01c",
    "OfficeHome": "4765445b-32c6-49b0-83e6-1d93765276ca",
}
CLOUD_APPS = {"Microsoft Exchange Online": 20893, "Microsoft SharePoint Online": 20892,
              "Microsoft OneDrive for Business": 15600, "Microsoft Teams": 28375}
BROWSERS = {
    "Windows11": ("Edge 131.0.0", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"),
    "macOS": ("Safari 18.1", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"),
}


def user_ip(user: User) -> str:
    return f"{user.office.ip_prefix}.{10 + user.index % 200}.{20 + user.index % 37}"


def signin(user: User, ts: datetime, report_id: str, correlation: str, **over) -> dict:
    """One AADSignInEventsBeta row for *user* from their office, overridable."""
    browser, agent = BROWSERS[user.os_platform]
    row = dict(
        Timestamp=ts, Application="Office 365 Exchange Online", ApplicationId=APPS["Office 365 Exchange Online"],
        LogonType='["interactiveUser"]', ErrorCode=0, CorrelationId=correlation, SessionId=correlation,
        AccountDisplayName=user.display_name, AccountObjectId=user.object_id, AccountUpn=user.upn, IsExternalUser=0,
        IsGuestUser=False, DeviceName=user.device_name, AadDeviceId=user.device_id[:36], OSPlatform=user.os_platform,
        DeviceTrustType="AzureAd", IsManaged=1, IsCompliant=1, AuthenticationRequirement="multiFactorAuthentication",
        TokenIssuerType=0, RiskLevelAggregated=0, RiskDetails=0, RiskState=0, UserAgent=agent,
        ClientAppUsed="Browser", Browser=browser, ConditionalAccessStatus=0, IPAddress=user_ip(user),
        Country=user.office.country, City=user.office.city, Latitude=user.office.latitude,
        Longitude=user.office.longitude, ReportId=report_id, EndpointCall="Login:login",
    )
    row.update(over)
    return row


def cloud_event(user: User, ts: datetime, action: str, report_id: str, *, application: str = "Microsoft Exchange Online",
                object_name: str | None = None, object_id: str | None = None, raw: dict | None = None, **over) -> dict:
    """One CloudAppEvents row performed by *user*."""
    row = dict(
        Timestamp=ts, ActionType=action, Application=application, ApplicationId=CLOUD_APPS.get(application, 0),
        AppInstanceId=0, AccountObjectId=user.object_id, AccountId=user.object_id,
        AccountDisplayName=user.display_name, IsAdminOperation=False, DeviceType="Desktop",
        OSPlatform=user.os_platform, IPAddress=user_ip(user), IsAnonymousProxy=False, CountryCode=user.office.country,
        City=user.office.city, Isp=f"{user.office.city} Business Fiber", UserAgent=BROWSERS[user.os_platform][1],
        ActivityType="Basic", ObjectName=object_name, ObjectType="File" if "File" in action else None,
        ObjectId=object_id, ReportId=report_id, AccountType="Regular", IsExternalUser=False, IsImpersonated=False,
        RawEventData=json.dumps(raw or {"Operation": action, "UserId": user.upn}, sort_keys=True),
        AuditSource="Defender for Cloud Apps access control",
    )
    row.update(over)
    return row


def click(upn: str, ts: datetime, url: str, report_id: str, *, nmid: str | None, ip: str,
          action: ClickAction = ClickAction.ALLOWED, through: bool = False, threat: str | None = None,
          methods: str | None = None, workload: ClickWorkload = ClickWorkload.EMAIL) -> dict:
    return dict(Timestamp=ts, Url=url, ActionType=action.value, AccountUpn=upn, Workload=workload.value,
                NetworkMessageId=nmid, ThreatTypes=threat, DetectionMethods=methods, IPAddress=ip,
                IsClickedThrough=through, UrlChain=json.dumps([url]), ReportId=report_id)


# ---------------------------------------------------------------------------- directory

def identity_info(org: Organisation, ts: datetime) -> pl.DataFrame:
    rows = [
        dict(Timestamp=ts, AccountObjectId=u.object_id, AccountUpn=u.upn, AccountDisplayName=u.display_name,
             GivenName=u.given_name, Surname=u.surname, EmailAddress=u.upn, Department=u.department, JobTitle=u.title,
             CompanyName=org.name, City=u.office.city, Country=u.office.country, TimeZone=u.office.time_zone,
             Manager=u.manager, Tags=json.dumps(list(u.tags)),
             AssignedRoles=json.dumps(["Global Administrator"] if u.index == 0 else
                                      ["Security Administrator"] if "Admin" in u.tags else []),
             IsAccountEnabled=True, CreatedDateTime=datetime.fromisoformat(u.created).replace(tzinfo=timezone.utc),
             ReportId=f"id-{u.object_id}")
        for u in org.users
    ]
    return schema.IdentityInfo.from_rows(rows)


def device_info(org: Organisation, day: date) -> pl.DataFrame:
    ts = datetime(day.year, day.month, day.day, 0, 30, tzinfo=timezone.utc)
    return pl.DataFrame(
        {
            "Timestamp": [ts] * len(org.users),
            "DeviceId": [u.device_id for u in org.users],
            "DeviceName": [u.device_name for u in org.users],
            "OSPlatform": [u.os_platform for u in org.users],
            "OSVersion": ["10.0.26100" if u.os_platform == "Windows11" else "14.6" for u in org.users],
            "PublicIP": [f"{u.office.ip_prefix}.1.1" for u in org.users],
            "LoggedOnUsers": [json.dumps([{"UserName": u.upn.split("@")[0], "DomainName": org.name.upper()[:15]}]) for u in org.users],
            "MachineGroup": [u.department for u in org.users],
            "IsAzureADJoined": [True] * len(org.users),
            "ReportId": [f"dev-{u.device_id[:12]}-{day:%Y%m%d}" for u in org.users],
        },
        schema=schema.DeviceInfo.schema,
    )


# ---------------------------------------------------------------------------- daily activity

def _local_times(rng, day: date, offsets: np.ndarray, weights: np.ndarray) -> pl.Series:
    hours = rng.choice(24, size=len(offsets), p=weights)
    base = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()) * 1_000_000
    micros = base + ((hours - offsets) * 3600 + rng.integers(0, 3600, len(offsets))).astype(np.int64) * 1_000_000
    return pl.Series("Timestamp", micros).cast(pl.Datetime("us", "UTC"))


def day_signins(rng, org: Organisation, day: date, uuids, hours: np.ndarray, prefix: str) -> pl.DataFrame:
    users = org.users
    rate = 0.5 if day.weekday() >= 5 else 3.5
    counts = rng.poisson(rate, len(users))
    idx = np.repeat(np.arange(len(users)), counts)
    n = len(idx)
    if n == 0:
        return schema.AADSignInEventsBeta.empty()
    offsets = np.array([users[i].office.utc_offset for i in idx])
    apps = list(APPS)
    app = rng.integers(len(apps), size=n)
    roll = rng.random(n)
    error = np.where(roll < 0.02, 50126, np.where(roll < 0.03, 50074, 0))
    home = rng.random(n) < 0.15
    corr = uuids(n)
    rows = {
        "Timestamp": _local_times(rng, day, offsets, hours),
        "Application": [apps[a] for a in app],
        "ApplicationId": [APPS[apps[a]] for a in app],
        "ErrorCode": error.astype(np.int32),
        "CorrelationId": corr,
        "SessionId": corr,
        "AccountDisplayName": [users[i].display_name for i in idx],
        "AccountObjectId": [users[i].object_id for i in idx],
        "AccountUpn": [users[i].upn for i in idx],
        "DeviceName": [users[i].device_name for i in idx],
        "OSPlatform": [users[i].os_platform for i in idx],
        "UserAgent": [BROWSERS[users[i].os_platform][1] for i in idx],
        "Browser": [BROWSERS[users[i].os_platform][0] for i in idx],
        "IPAddress": [f"{users[i].office.ip_prefix}.{10 + i % 200}.{20 + i % 37}" if not h else
                      f"{users[i].office.ip_prefix[:3]}.{60 + i % 90}.{i % 250}.{7 + i % 13}" for i, h in zip(idx, home)],
        "Country": [users[i].office.country for i in idx],
        "City": [users[i].office.city for i in idx],
        "Latitude": [users[i].office.latitude for i in idx],
        "Longitude": [users[i].office.longitude for i in idx],
    }
    df = pl.DataFrame(rows).with_columns(
        LogonType=pl.lit('["interactiveUser"]'), IsExternalUser=pl.lit(0, pl.Int32), IsGuestUser=pl.lit(False),
        DeviceTrustType=pl.lit("AzureAd"), IsManaged=pl.lit(1, pl.Int32), IsCompliant=pl.lit(1, pl.Int32),
        AuthenticationRequirement=pl.lit("multiFactorAuthentication"), TokenIssuerType=pl.lit(0, pl.Int32),
        RiskLevelAggregated=pl.lit(0, pl.Int32), RiskDetails=pl.lit(0, pl.Int32), RiskState=pl.lit(0, pl.Int32),
        ClientAppUsed=pl.lit("Browser"), ConditionalAccessStatus=pl.lit(0, pl.Int32), EndpointCall=pl.lit("Login:login"),
        ReportId=pl.lit(prefix) + pl.int_range(pl.len()).cast(pl.String).str.zfill(7),
    )
    return schema.AADSignInEventsBeta.conform(df)


def day_cloud_events(rng, org: Organisation, day: date, hours: np.ndarray, prefix: str) -> pl.DataFrame:
    users = org.users
    weekend = day.weekday() >= 5
    counts = rng.poisson(0.3 if weekend else 2.5, len(users))
    idx = np.repeat(np.arange(len(users)), counts)
    rows = []
    actions = [CloudAppActionType.FILE_ACCESSED, CloudAppActionType.FILE_MODIFIED,
               CloudAppActionType.FILE_UPLOADED, CloudAppActionType.FILE_DOWNLOADED]
    apps = ["Microsoft SharePoint Online", "Microsoft OneDrive for Business", "Microsoft Teams"]
    offsets = np.array([users[i].office.utc_offset for i in idx])
    times = _local_times(rng, day, offsets, hours).to_list() if len(idx) else []
    act = rng.integers(len(actions), size=len(idx))
    app = rng.integers(len(apps), size=len(idx))
    doc = rng.integers(1000, 9999, size=len(idx))
    stem = org.primary_domain.split(".")[0]
    for k, (i, ts) in enumerate(zip(idx, times)):
        u = users[i]
        site = f"https://{stem}.sharepoint.com/sites/{vocab.PROJECTS[doc[k] % len(vocab.PROJECTS)]}" if app[k] != 1 else \
            f"https://{stem}-my.sharepoint.com/personal/{u.upn.replace('@', '_').replace('.', '_')}"
        name = f"{site}/Shared Documents/{vocab.PROJECTS[doc[k] % 8].title()}_{doc[k]}.docx"
        rows.append(cloud_event(u, ts, actions[act[k]].value, f"{prefix}{k:07d}", application=apps[app[k]],
                                object_name=name, object_id=name,
                                raw={"Operation": actions[act[k]].value, "UserId": u.upn, "ObjectId": name, "SiteUrl": site}))
    # Ordinary inbox rules: people file newsletters and notifications away.
    for k, i in enumerate(np.flatnonzero(rng.random(len(users)) < (0.0 if weekend else 0.004))):
        u = users[i]
        name = vocab.BENIGN_RULE_NAMES[int(rng.integers(len(vocab.BENIGN_RULE_NAMES)))]
        params = [{"Name": "Name", "Value": name}, {"Name": "MoveToFolder", "Value": name},
                  {"Name": "FromAddressContainsWords", "Value": "newsletter;noreply"}, {"Name": "StopProcessingRules", "Value": "True"}]
        ts = datetime(day.year, day.month, day.day, 10, tzinfo=timezone.utc) + timedelta(minutes=int(rng.integers(0, 480)))
        rows.append(cloud_event(u, ts, CloudAppActionType.NEW_INBOX_RULE.value, f"{prefix}R{k:06d}", object_name=name,
                                object_id=f"{u.upn}\\{name}", ActivityType="Create",
                                raw={"Operation": "New-InboxRule", "UserId": u.upn, "Parameters": params, "ClientIP": user_ip(u)}))
    return schema.CloudAppEvents.from_rows(rows)


def day_clicks(rng, email_events: pl.DataFrame, email_urls: pl.DataFrame, users_by_upn: dict[str, User],
               prefix: str, first_id: int = 0) -> pl.DataFrame:
    """Ordinary clicks: some recipients open some links in clean delivered mail (ids numbered
    from *first_id*, so a day generated in parts keeps them unique)."""
    delivered = email_events.filter(
        (pl.col("DeliveryAction") == DeliveryAction.DELIVERED.value)
        & pl.col("ThreatTypes").is_null()
        & pl.col("RecipientObjectId").is_not_null()
        & (pl.col("EmailDirection") != EmailDirection.OUTBOUND.value)
    ).select("NetworkMessageId", "RecipientEmailAddress", "Timestamp")
    candidates = delivered.join(email_urls.select("NetworkMessageId", "Url"), on="NetworkMessageId", how="inner")
    candidates = candidates.unique(["NetworkMessageId", "RecipientEmailAddress"], keep="first", maintain_order=True)
    if candidates.is_empty():
        return schema.UrlClickEvents.empty()
    picked = candidates.filter(pl.Series(rng.random(len(candidates)) < 0.08))
    delay = (rng.exponential(40 * 60, len(picked)) + 5).astype(np.int64) * 1_000_000
    ips = [_ip(users_by_upn, upn) for upn in picked["RecipientEmailAddress"].to_list()]
    df = picked.select(
        (pl.col("Timestamp") + pl.Series(delay).cast(pl.Duration("us"))).alias("Timestamp"),
        "Url",
        pl.lit(ClickAction.ALLOWED.value).alias("ActionType"),
        pl.col("RecipientEmailAddress").alias("AccountUpn"),
        pl.lit(ClickWorkload.EMAIL.value).alias("Workload"),
        "NetworkMessageId",
        pl.Series("IPAddress", ips, dtype=pl.String),
        pl.lit(False).alias("IsClickedThrough"),
        pl.format('["{}"]', pl.col("Url")).alias("UrlChain"),
        (pl.lit(prefix) + (pl.int_range(pl.len()) + first_id).cast(pl.String).str.zfill(7)).alias("ReportId"),
    )
    return schema.UrlClickEvents.conform(df)


def _ip(users_by_upn: dict[str, User], upn: str) -> str:
    user = users_by_upn.get(upn.lower())
    return user_ip(user) if user else "0.0.0.0"
