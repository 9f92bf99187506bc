"""Matches against the indicator store (known bad URLs, domains, file hashes)."""

from __future__ import annotations

from workbench.detect import reference
from workbench.detect.evidence import Context, Evidence, analyzer
from workbench.ingest.links import host_of
from workbench.ingest.message import ParsedMessage


@analyzer("intel")
def indicators(m: ParsedMessage, ctx: Context) -> list[Evidence]:
    out = []
    if not (ctx.bad_urls or ctx.bad_domains or ctx.bad_hashes):
        return out
    for u in m.urls:
        if u.url in ctx.bad_urls or u.url.rstrip("/") in ctx.bad_urls:
            out.append(Evidence("intel", "intel.url", f"known malicious URL: {u.url[:120]}"))
            break
    for u in m.urls:
        host = host_of(u.url)
        if host and (host in ctx.bad_domains or reference.registrable(host) in ctx.bad_domains):
            out.append(Evidence("intel", "intel.domain", f"link to a known malicious domain: {host}"))
            break
    if m.from_domain and m.from_domain in ctx.bad_domains:
        out.append(Evidence("intel", "intel.sender_domain", f"sender domain {m.from_domain} is a known malicious domain"))
    for top in m.attachments:
        for f in top.walk():
            if f.sha256 and f.sha256 in ctx.bad_hashes:
                out.append(Evidence("intel", "intel.file_hash", f"known malicious file {f.file_name} ({f.sha256[:16]}…)"))
                return out
    return out
