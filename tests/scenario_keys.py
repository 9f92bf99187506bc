"""What each planted story of a generated tenant's ``scenarios.json`` must be recognised by:
the entity keys (``Entity.key``) an alert about it carries. Shared by the alert-policy and
incident tests."""

from __future__ import annotations


def emails_of(records) -> set[str]:
    return {f"email:{m['NetworkMessageId']}|{m['RecipientEmailAddress'].lower()}" for m in records}


def story_keys(s: dict) -> dict[str, set[str]]:
    """Per story, named sets of ground-truth entity keys an alert about it must carry."""
    if s["id"] == "credential-phish-campaign":
        return {"urls": {f"url:{u}" for u in s["urls"]}, "messages": emails_of(s["messages"])}
    if s["id"] == "compromised-user":
        return {"user": {f"user:{s['user']}"}, "attacker ip": {f"ip:{s['attacker_ip']}"},
                "burst": emails_of(s["burst_messages"]), "burst url": {f"url:{s['burst_url']}"}}
    if s["id"] == "endpoint-alert":
        return {"user": {f"user:{s['user']}"}, "device": {f"device:{s['DeviceId']}"}, "url": {f"url:{s['url']}"}}
    if s["id"] == "malware-campaign":
        return {"messages": emails_of(s["messages"]), "files": {f"file:{a['SHA256']}" for a in s["attachments"]}}
    if s["id"] == "content-malware":
        return {"files": {f"file:{f['SHA256']}" for f in s["files"] if f["detected"]}}
    if s["id"] == "bec-impersonation":
        return {"impersonated": {f"mailbox:{s['impersonated_user']}"}, "messages": emails_of(s["messages"]),
                "replies": {f"email:{r['NetworkMessageId']}|{r['to'].lower()}" for r in s["replies"]}}
    if s["id"] == "user-reports":
        return {"reports": emails_of(s["phish_reports"] + s["simulation_reports"] + s["clean_reports"])}
    raise AssertionError(f"no expectations for story {s['id']}")
