"""Mail policies: user-reported messages, mail removed after delivery (ZAP, four policies by
what was found), and delivered mail impersonating a protected user.

ZAP rows (EmailPostDeliveryEvents, ``Phish ZAP`` / ``Malware ZAP``) are split by what the
detection technologies of the post-delivery verdict name, so each removed copy belongs to
exactly one policy:

=====================  ==========================================================
``zap_malicious_file``  Malware found by file detonation or file reputation
``zap_malicious_url``   Malware found by URL detonation or URL reputation
``zap_malware``         Malware found otherwise (anti-malware engine, ...)
``zap_phish_url``       Phish
=====================  ==========================================================

A ZAP wave becomes one alert per cluster (the file, the link's domain, or sender and subject)
per day of the ZAP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

import polars as pl

from workbench.detect.policies import evaluator
from workbench.detect.policies.base import (
    DAY, MESSAGE_HORIZON, ZAP_TYPES, Run, day_key, email_entities, has_threat, lower, normalise_subject,
)
from workbench.incidents.model import AlertDraft, Entity, EntityKind, Severity, Verdict

SIMULATION_POLICY = re.compile(r"simulation", re.IGNORECASE)
REPORT_TYPES = ("Phish", "Malware")


def _simulation(rows: pl.DataFrame) -> bool:
    """Mail an org-level override delivered as an authorised phishing simulation."""
    return any(SIMULATION_POLICY.search(p or "") for p in rows["OrgLevelPolicy"].to_list())


def _files_and_urls(run: Run, copies: pl.DataFrame, start) -> tuple[pl.DataFrame, dict[str, list[str]]]:
    keys = copies.select("NetworkMessageId", "rcpt").unique()
    return run.message_files(keys, start), run.message_urls(copies["NetworkMessageId"], start)


def _content_entities(run: Run, files: pl.DataFrame, urls: Iterable[str], role: str = "") -> list[Entity]:
    out = [Entity.of(EntityKind.FILE, sha, role or "attachment") for sha in dict.fromkeys(files["SHA256"])]
    out += [Entity.of(EntityKind.CLUSTER, "file:" + sha) for sha in dict.fromkeys(files["SHA256"])]
    return out + run.url_entities(urls, role)


# --------------------------------------------------------------------------- user reports


@evaluator("user_reported_message")
def user_reports(run: Run) -> list[AlertDraft]:
    raw = pl.col("RawEventData")
    reports = run.saw(
        run.scan("CloudAppEvents", run.back(), ["Timestamp", "ActionType", "ObjectId", "RawEventData", "ReportId"])
        .filter(pl.col("ActionType") == "UserSubmission")
        .with_columns(raw.str.json_path_match("$.ReportType").alias("report_type"),
                      pl.coalesce(raw.str.json_path_match("$.NetworkMessageId"), pl.col("ObjectId")).alias("NetworkMessageId"),
                      raw.str.json_path_match("$.UserId").str.to_lowercase().alias("rcpt"),
                      raw.str.json_path_match("$.Subject").alias("report_subject"),
                      raw.str.json_path_match("$.P2Sender").alias("report_sender"))
        .filter(pl.col("report_type").is_in(REPORT_TYPES) & pl.col("NetworkMessageId").is_not_null())
        .collect())
    fresh = reports.filter(run.is_new())["NetworkMessageId"].unique()
    reports = reports.filter(pl.col("NetworkMessageId").is_in(fresh.implode())).sort("Timestamp")
    if not reports.height:
        return []
    start = reports["Timestamp"].min() - MESSAGE_HORIZON
    copies = run.email_rows(reports.select("NetworkMessageId", "rcpt"), start)
    files, urls = _files_and_urls(run, copies, start)
    zapped = set(run.scan("EmailPostDeliveryEvents", start, ["NetworkMessageId", "ActionType"])
                 .filter(pl.col("ActionType").is_in(ZAP_TYPES) & pl.col("NetworkMessageId").is_in(fresh.implode()))
                 .select("NetworkMessageId").unique().collect()["NetworkMessageId"])
    drafts = []
    for nmid, group in reports.group_by("NetworkMessageId", maintain_order=True):
        nmid = nmid[0]
        reporters = list(dict.fromkeys(group["rcpt"].drop_nulls()))
        mine = copies.filter(pl.col("NetworkMessageId") == nmid)
        first = group["Timestamp"].min()
        subject = mine["Subject"][0] if mine.height else group["report_subject"].drop_nulls().first()
        sender = mine["SenderFromAddress"][0] if mine.height else group["report_sender"].drop_nulls().first()
        simulation = mine.height > 0 and _simulation(mine)
        malicious = nmid in zapped or (mine.height > 0 and mine.select(has_threat()).to_series().any())
        my_files = files.filter(pl.col("NetworkMessageId") == nmid)
        my_urls = urls.get(nmid, [])
        entities = [Entity.of(EntityKind.USER, r, "reporter") for r in reporters]
        entities += email_entities(mine, "reported") + run.sender_entities(mine)
        role = "simulation" if simulation else ""
        entities += _content_entities(run, my_files, my_urls, role)
        if mine.height:
            entities.append(Entity.of(EntityKind.CLUSTER, run.message_cluster(my_urls, list(my_files["SHA256"]),
                                                                              mine["SenderFromDomain"][0], subject)))
        verdicts = [(e, Verdict.MALICIOUS) for e in email_entities(mine) if malicious and e.kind is EntityKind.EMAIL]
        severity = min(run.severity, Severity.INFORMATIONAL) if simulation else run.severity
        state = ("an authorised phishing simulation" if simulation else
                 "known malicious (verdict or ZAP)" if malicious else "no threat known so far")
        detail = (f"Reported by {len(reporters)} user(s) from {first:%Y-%m-%d %H:%M} UTC; the message is {state}.")
        drafts.append(run.draft(
            f"message:{nmid}", {"reporters": ", ".join(reporters[:3]) + (f" and {len(reporters) - 3} more" if len(reporters) > 3 else ""),
                                "subject": subject or "(no subject)", "sender": sender or "(unknown sender)",
                                "count": len(reporters)},
            first, group["Timestamp"].max(), entities, copies=mine, severity=severity, verdicts=verdicts, detail=detail,
            expected_activity="a reported authorised phishing simulation" if simulation else ""))
    return drafts


# --------------------------------------------------------------------------- ZAP


def _methods(text: str | None) -> list[str]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return []
    return [m for values in data.values() if isinstance(values, list) for m in values if isinstance(m, str)]


def zap_kind(action_type: str, threats: str | None, methods: str | None) -> str:
    """Which ZAP policy a removed copy belongs to (see the module docstring)."""
    threats = threats or ""
    malware = "Malware" in threats or (action_type == "Malware ZAP" and "Phish" not in threats)
    if not malware:
        return "zap_phish_url"
    used = _methods(methods)
    if any(m.startswith("File ") for m in used):
        return "zap_malicious_file"
    if any(m.startswith("URL ") for m in used):
        return "zap_malicious_url"
    return "zap_malware"


def _zap(run: Run) -> list[AlertDraft]:
    pid = run.policy.id
    zaps = (run.scan("EmailPostDeliveryEvents", run.back(),
                     ["Timestamp", "NetworkMessageId", "RecipientEmailAddress", "ActionType", "ActionResult",
                      "ThreatTypes", "DetectionMethods"])
            .filter(pl.col("ActionType").is_in(ZAP_TYPES)).collect())
    kinds = [zap_kind(a, t, m) for a, t, m in zaps.select("ActionType", "ThreatTypes", "DetectionMethods").iter_rows()]
    zaps = run.saw(zaps.filter(pl.Series(kinds, dtype=pl.String) == pid) if zaps.height else zaps)
    zaps = zaps.with_columns(lower("RecipientEmailAddress").alias("rcpt"), pl.col("Timestamp").dt.date().alias("day"))
    if not zaps.filter(run.is_new()).height:
        return []
    start = zaps["Timestamp"].min() - MESSAGE_HORIZON
    copies = run.email_rows(zaps.select("NetworkMessageId", "rcpt"), start)
    files, urls = _files_and_urls(run, copies, start)
    first_copy = copies.sort("Timestamp").unique(["NetworkMessageId", "rcpt"], keep="first")
    facts = {(n, r): (d, s) for n, r, d, s in first_copy.select("NetworkMessageId", "rcpt", "SenderFromDomain", "Subject").iter_rows()}

    def cluster(nmid: str, rcpt: str) -> str:
        domain, subject = facts.get((nmid, rcpt), (None, None))
        mine = files.filter((pl.col("NetworkMessageId") == nmid) & (pl.col("rcpt") == rcpt))
        bad = mine.filter(has_threat("ThreatTypes", ("Malware",)))
        shas = list((bad if bad.height else mine)["SHA256"]) if pid in ("zap_malicious_file", "zap_malware") else []
        return run.message_cluster(urls.get(nmid, []), shas, domain, subject)

    keys = {(n, r): cluster(n, r) for n, r in zaps.select("NetworkMessageId", "rcpt").unique().iter_rows()}
    zaps = zaps.with_columns(pl.Series("cluster", [keys[(n, r)] for n, r in zaps.select("NetworkMessageId", "rcpt").iter_rows()],
                                       dtype=pl.String))
    drafts = []
    for (name, day), group in zaps.group_by("cluster", "day", maintain_order=True):
        if not group.filter(run.is_new()).height:
            continue
        pairs = group.select("NetworkMessageId", "rcpt").unique()
        mine = copies.join(pairs, on=["NetworkMessageId", "rcpt"], how="semi")
        my_files = files.join(pairs, on=["NetworkMessageId", "rcpt"], how="semi")
        if name.startswith("file:"):
            my_files = my_files.filter(pl.col("SHA256") == name[5:])
        my_urls = [u for n in pairs["NetworkMessageId"].unique(maintain_order=True) for u in urls.get(n, [])]
        shown = name.split(":", 1)[1]
        label = (my_files["FileName"][0] if name.startswith("file:") and my_files.height else shown)
        entities = [Entity.of(EntityKind.CLUSTER, name)] + _content_entities(run, my_files, my_urls)
        entities += email_entities(mine, "removed") + run.sender_entities(mine)
        verdicts = [(e, Verdict.MALICIOUS) for e in entities if e.kind in (EntityKind.EMAIL, EntityKind.FILE, EntityKind.CLUSTER)
                    or (e.kind is EntityKind.URL and name.startswith(("domain:", "url:")))]
        done = group.filter(pl.col("ActionResult").is_in(["Success", "AdminPolicy"])).height
        senders = ", ".join(dict.fromkeys(mine["SenderFromAddress"].drop_nulls().head(3)))
        detail = (f"{pairs.height} copies of {pairs['NetworkMessageId'].n_unique()} message(s) from {senders or 'unknown senders'}, "
                  f"removed on {day_key(group['Timestamp'].min())}: {done} succeeded, {group.height - done} did not.")
        drafts.append(run.draft(
            f"{name}:{day_key(group['Timestamp'].min())}", {"cluster": label, "file": label, "count": pairs.height},
            group["Timestamp"].min(), group["Timestamp"].max(), entities, copies=mine, verdicts=verdicts, detail=detail))
    return drafts


for _pid in ("zap_malicious_file", "zap_malware", "zap_malicious_url", "zap_phish_url"):
    evaluator(_pid)(_zap)


# --------------------------------------------------------------------------- impersonation


_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_TITLE = re.compile(r"\b(chief|president|ceo|cfo|coo|cto|founder|owner|managing director)\b", re.IGNORECASE)


def _norm(name: str | None) -> str:
    return " ".join(_PUNCT.sub(" ", (name or "").lower()).split())


def protected_names(run: Run) -> dict[str, str]:
    """Display-name spellings → the protected user (priority accounts and executives) they
    name: "given surname", "surname given", and "given s" when no other user shares it."""
    d = run.directory().filter(pl.col("GivenName").is_not_null() & pl.col("Surname").is_not_null())
    initials: dict[str, int] = {}
    for g, s in d.select("GivenName", "Surname").iter_rows():
        key = _norm(f"{g} {s[:1]}")
        initials[key] = initials.get(key, 0) + 1
    out: dict[str, str] = {}
    for upn, g, s, tags, title in d.select("upn", "GivenName", "Surname", "Tags", "JobTitle").iter_rows():
        if "Priority account" not in (tags or "") and not _TITLE.search(title or ""):
            continue
        out[_norm(f"{g} {s}")] = upn
        out[_norm(f"{s} {g}")] = upn
        short = _norm(f"{g} {s[:1]}")
        if initials.get(short) == 1:
            out[short] = upn
    return out


@evaluator("impersonation_delivered")
def impersonation(run: Run) -> list[AlertDraft]:
    names = protected_names(run)
    if not names:
        return []
    table = pl.DataFrame({"shown": list(names), "impersonated": list(names.values())})
    start = run.back()
    # Normalised display names in polars (as _norm does): only the matches are collected.
    shown = (pl.col("SenderDisplayName").str.to_lowercase().str.replace_all(r"[^\w\s]", " ")
             .str.replace_all(r"\s+", " ").str.strip_chars())
    inbound = (run.scan("EmailEvents", start, ["Timestamp", "NetworkMessageId", "RecipientEmailAddress", "SenderFromAddress",
                                               "SenderFromDomain", "SenderDisplayName", "SenderIPv4", "Subject",
                                               "EmailDirection", "DeliveryAction"])
               .filter((pl.col("EmailDirection") == "Inbound") & (pl.col("DeliveryAction") == "Delivered")
                       & pl.col("SenderDisplayName").is_not_null() & ~run.org_expr("SenderFromDomain")))
    run.saw_all(inbound)
    mail = (
        inbound.with_columns(shown.alias("shown"))
        .with_columns(pl.col("shown").str.split(" ").list.slice(0, 2).list.join(" ").alias("first_two"))
        .filter(pl.col("shown").is_in(table["shown"].implode()) | pl.col("first_two").is_in(table["shown"].implode()))
        .collect())
    mail = (mail.join(table, on="shown", how="left")
            .join(table.rename({"shown": "first_two", "impersonated": "by_prefix"}), on="first_two", how="left")
            .with_columns(pl.coalesce("impersonated", "by_prefix").alias("impersonated"))
            .filter(pl.col("impersonated").is_not_null()
                    & (lower("SenderFromAddress") != pl.col("impersonated")))
            .with_columns(lower("RecipientEmailAddress").alias("rcpt"), lower("SenderFromAddress").alias("sender"),
                          pl.col("Timestamp").dt.date().alias("day"))
            .sort("Timestamp"))
    if not mail.height:
        return []
    # Replies: a recipient writing back to the impersonating address within a day.
    replies = run.saw(
        run.scan("EmailEvents", mail["Timestamp"].min(), ["Timestamp", "NetworkMessageId", "RecipientEmailAddress",
                                                          "SenderFromAddress", "EmailDirection", "Subject"])
        .filter((pl.col("EmailDirection") == "Outbound")
                & lower("RecipientEmailAddress").is_in(mail["sender"].unique().implode()))
        .with_columns(lower("SenderFromAddress").alias("replier"), lower("RecipientEmailAddress").alias("sender"))
        .collect())
    answered = (replies.join(mail.select("sender", "rcpt", "impersonated", "day", pl.col("Timestamp").alias("copy_at")),
                             left_on=["sender", "replier"], right_on=["sender", "rcpt"], how="inner")
                .filter((pl.col("Timestamp") >= pl.col("copy_at")) & (pl.col("Timestamp") <= pl.col("copy_at") + DAY))
                .sort("copy_at").group_by("NetworkMessageId", "RecipientEmailAddress", maintain_order=True).last())
    drafts = []
    for (sender, person, day), group in mail.group_by("sender", "impersonated", "day", maintain_order=True):
        mine_replies = answered.filter((pl.col("sender") == sender) & (pl.col("impersonated") == person) & (pl.col("day") == day))
        if not (group.filter(run.is_new()).height or mine_replies.filter(run.is_new()).height):
            continue
        reply_rows = (mine_replies.select("Timestamp", "NetworkMessageId", "RecipientEmailAddress")
                      .with_columns(lower("RecipientEmailAddress").alias("rcpt")))
        copies = run.email_rows(pl.concat([group.select("NetworkMessageId", "rcpt"), reply_rows.select("NetworkMessageId", "rcpt")]),
                                group["Timestamp"].min())
        inbound = copies.filter(pl.col("EmailDirection") == "Inbound")
        repliers = list(dict.fromkeys(mine_replies["replier"]))
        entities = [Entity.of(EntityKind.MAILBOX, person, "impersonated")]
        entities += [Entity.of(EntityKind.USER, r, "replied") for r in repliers]
        entities += email_entities(inbound, "impersonation") + run.sender_entities(inbound)
        entities += email_entities(copies.filter(pl.col("EmailDirection") == "Outbound"), "reply")
        entities.append(Entity.of(EntityKind.CLUSTER, f"sender:{group['SenderFromDomain'][0]}|{normalise_subject(group['Subject'][0])}"))
        severity = max(run.severity, Severity.HIGH) if repliers else run.severity
        detail = (f"Display name {group['SenderDisplayName'][0]!r} from {sender} ({group.height} delivered copies)"
                  + (f"; answered by {', '.join(repliers)}." if repliers else "; no reply seen."))
        last = max(group["Timestamp"].max(), *(mine_replies["Timestamp"].to_list() or [group["Timestamp"].max()]))
        drafts.append(run.draft(
            f"{sender}|{person}|{day}", {"impersonated": person, "sender": sender, "count": group.height,
                                        "replied": f", answered by {', '.join(repliers)}" if repliers else ""},
            group["Timestamp"].min(), last, entities, copies=copies, severity=severity, detail=detail,
            verdicts=[(e, Verdict.SUSPICIOUS) for e in email_entities(inbound) if e.kind is EntityKind.EMAIL]))
    return drafts


__all__ = ["zap_kind", "protected_names"]
