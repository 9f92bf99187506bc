"""Account policies: mail forwarded outside the organisation by an inbox rule or a mailbox
setting, and a risky sign-in soon after a malicious click."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import polars as pl

from workbench.detect.policies import evaluator
from workbench.detect.policies.base import Run, email_entities, lower, registrable
from workbench.detect.policies.clicks import CLICK_LOOKBACK, click_copies, malicious_clicks
from workbench.incidents.model import AlertDraft, Entity, EntityKind, Verdict

# --------------------------------------------------------------------------- forwarding

RULE_ACTIONS = ("New-InboxRule", "Set-InboxRule", "Set-Mailbox", "UpdateInboxRules")
FORWARD_PARAMETERS = ("forwardto", "forwardasattachmentto", "redirectto", "forwardingsmtpaddress", "forwardingaddress")
_ADDRESS = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
HIDING_FOLDERS = re.compile(r"rss|archive|deleted|conversation history|junk|notes", re.IGNORECASE)
RISKY_IP_CATEGORIES = ("Hosting", "Anonymous proxy", "Tor")


def rule_parameters(raw: dict) -> dict[str, str]:
    """An Exchange cmdlet record's Parameters list as a dict, names lower-cased."""
    params = raw.get("Parameters") or []
    out = {}
    for p in params if isinstance(params, list) else []:
        if isinstance(p, dict) and p.get("Name"):
            out[str(p["Name"]).lower()] = "" if p.get("Value") is None else str(p["Value"])
    return out


def forwarding_targets(raw: dict) -> list[str]:
    """Addresses an inbox rule or mailbox change forwards or redirects to (lower case)."""
    params = rule_parameters(raw)
    found = [a.lower() for name in FORWARD_PARAMETERS for a in _ADDRESS.findall(params.get(name, ""))]
    return list(dict.fromkeys(found))


@evaluator("suspicious_forwarding_rule")
def forwarding_rules(run: Run) -> list[AlertDraft]:
    events = run.saw(
        run.scan("CloudAppEvents", run.back(), ["Timestamp", "ActionType", "AccountObjectId", "ObjectId", "IPAddress",
                                                "IsAnonymousProxy", "CountryCode", "IPCategory", "UncommonForUser",
                                                "RawEventData", "ReportId"])
        .filter(pl.col("ActionType").is_in(RULE_ACTIONS)).collect())
    drafts = []
    for e in events.filter(run.is_new()).iter_rows(named=True):
        try:
            raw = json.loads(e["RawEventData"] or "{}")
        except ValueError:
            raw = {}
        if not isinstance(raw, dict):
            continue
        outside = [a for a in forwarding_targets(raw) if not run.is_org(a.rsplit("@", 1)[-1])]
        if not outside:
            continue
        params = rule_parameters(raw)
        actor = run.user_of(e["AccountObjectId"], raw.get("UserId")) or e["AccountObjectId"] or "unknown user"
        mailbox = (params.get("identity") or (e["ObjectId"] or "").split("\\", 1)[0] or actor).lower()
        mailbox = run.user_of(upn=mailbox) or mailbox
        uncommon = e["UncommonForUser"] or ""
        risky_ip = e["IPAddress"] and (e["IsAnonymousProxy"] or e["IPCategory"] in RISKY_IP_CATEGORIES or "IPAddress" in uncommon)
        entities = [Entity.of(EntityKind.USER, actor, "actor"), Entity.of(EntityKind.MAILBOX, mailbox, "forwarding")]
        if "@" in mailbox and mailbox != actor:
            entities.append(Entity.of(EntityKind.USER, mailbox, "forwarding"))
        for address in outside:
            entities.append(Entity.of(EntityKind.MAILBOX, address, "destination"))
            domain = address.rsplit("@", 1)[-1]
            if run.attacker_domain(domain):
                entities.append(Entity.of(EntityKind.DOMAIN, registrable(domain), "destination"))
        if risky_ip:
            entities.append(Entity.of(EntityKind.IP, e["IPAddress"], "attacker"))
        signs = []
        name = params.get("name", "")
        if not name.strip(" .-_") and e["ActionType"] != "Set-Mailbox":
            signs.append(f"the rule's name {name!r} hides it in the rule list")
        if params.get("markasread", "").lower() == "true":
            signs.append("it marks the mail as read")
        if params.get("deletemessage", "").lower() == "true" or HIDING_FOLDERS.search(params.get("movetofolder", "")):
            signs.append(f"it hides the mail ({params.get('movetofolder') or 'deleted'})")
        if risky_ip:
            signs.append(f"made from {e['IPAddress']} ({e['IPCategory'] or e['CountryCode'] or 'uncommon for the user'})")
        detail = (f"{e['ActionType']} by {actor} at {e['Timestamp']:%Y-%m-%d %H:%M} UTC forwards {mailbox}'s mail to "
                  f"{', '.join(outside)}" + (f"; {'; '.join(signs)}." if signs else "."))
        drafts.append(run.draft(
            f"event:{e['ReportId']}", {"user": mailbox, "destination": ", ".join(outside), "operation": e["ActionType"]},
            e["Timestamp"], e["Timestamp"], entities, detail=detail))
    return drafts


# --------------------------------------------------------------------------- sign-in after click

SIGNIN_COLUMNS = ["Timestamp", "AccountUpn", "ErrorCode", "IPAddress", "Country", "City", "RiskLevelAggregated",
                  "RiskState", "Application", "ReportId"]
RISK_STATES = (4, 5)  # at risk, confirmed compromised


@evaluator("risky_signin_after_click")
def signin_after_click(run: Run) -> list[AlertDraft]:
    hours = run.threshold("hours_after_click")
    min_risk = run.threshold("min_risk_level")
    after = timedelta(hours=hours)
    start = run.back(max(run.policy.lookback, after + CLICK_LOOKBACK))
    clicks = malicious_clicks(run, start)
    if not clicks.height:
        return []
    users = clicks["user"].unique().implode()
    home = run.directory().select(pl.col("upn").alias("user"), pl.col("Country").alias("home"))
    signins = run.saw(run.scan("AADSignInEventsBeta", start, SIGNIN_COLUMNS)
                      .with_columns(lower("AccountUpn").alias("user"))
                      .filter(pl.col("user").is_in(users)).collect())
    risky = (signins.join(home, on="user", how="left")
             .with_columns(((pl.col("Country").is_not_null() & pl.col("home").is_not_null() & (pl.col("Country") != pl.col("home")))
                            ).alias("abroad"))
             .filter((pl.col("RiskLevelAggregated").fill_null(0) >= min_risk) | pl.col("RiskState").is_in(RISK_STATES)
                     | pl.col("abroad")))
    pairs = (risky.join(clicks.select("user", pl.col("ReportId").alias("click"), pl.col("Timestamp").alias("click_at"),
                                      "known_at", "Url", "NetworkMessageId", "why"), on="user", how="inner")
             .filter((pl.col("Timestamp") >= pl.col("click_at")) & (pl.col("Timestamp") <= pl.col("click_at") + after))
             .sort("click_at").group_by("ReportId", maintain_order=True).last()  # the latest click before each sign-in
             .with_columns(pl.max_horizontal("Timestamp", "known_at").alias("finding_at")))
    drafts = []
    for (user, click_id), group in pairs.sort("Timestamp").group_by("user", "click", maintain_order=True):
        if not group.filter(run.is_new("finding_at")).height:
            continue
        click = clicks.filter(pl.col("ReportId") == click_id)
        copies = click_copies(run, click)
        ok = group.filter(pl.col("ErrorCode") == 0)
        first = group.row(0, named=True)
        where = ", ".join(dict.fromkeys(f"{c or '?'} {ip}" for c, ip in group.select("Country", "IPAddress").iter_rows()))
        entities = [Entity.of(EntityKind.USER, user, "compromised"), Entity.of(EntityKind.MAILBOX, user, "compromised")]
        entities += [Entity.of(EntityKind.IP, ip, "attacker")
                     for ip in group.filter("abroad")["IPAddress"].drop_nulls().unique(maintain_order=True)]
        entities += [Entity.of(EntityKind.URL, first["Url"], "clicked")] + run.url_entities([first["Url"]], "clicked")
        entities += email_entities(copies, "clicked") + run.sender_entities(copies)
        verdicts = [(Entity.of(EntityKind.URL, first["Url"]), Verdict.MALICIOUS)]
        verdicts += [(Entity.of(EntityKind.IP, ip), Verdict.SUSPICIOUS)
                     for ip in group.filter("abroad")["IPAddress"].drop_nulls().unique(maintain_order=True)]
        gap = (first["Timestamp"] - first["click_at"]).total_seconds() / 3600
        detail = (f"{group.height} risky sign-in(s) ({ok.height} succeeded) from {where}, risk up to "
                  f"{group['RiskLevelAggregated'].max()}; the click at {first['click_at']:%Y-%m-%d %H:%M} UTC was on a URL "
                  f"known malicious ({first['why']}).")
        drafts.append(run.draft(
            f"{user}|click:{click_id}", {"user": user, "where": where, "hours": f"{gap:.1f}", "url": first["Url"]},
            first["click_at"], group["finding_at"].max(), entities, copies=copies, verdicts=verdicts, detail=detail))
    return drafts


__all__ = ["forwarding_targets"]
