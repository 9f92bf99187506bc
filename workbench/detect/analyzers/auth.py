"""Authentication results, and spoofing of the organisation's own domains."""

from __future__ import annotations

from workbench.detect.evidence import Context, Evidence, analyzer
from workbench.ingest.message import ParsedMessage

_FAIL = {"SPF": ("fail", "softfail", "permerror"), "DKIM": ("fail",), "DMARC": ("fail",), "CompAuth": ("fail",)}


@analyzer("auth")
def authentication(m: ParsedMessage, ctx: Context) -> list[Evidence]:
    out = []
    for method, bad in _FAIL.items():
        value = m.auth.get(method, "none")
        if value in bad:
            out.append(Evidence("auth", f"auth.{method.lower()}_fail", f"{method}={value} (Authentication-Results)"))
    if ctx.is_org(m.from_domain) and not ctx.is_org(m.mail_from and m.mail_from.rsplit("@", 1)[-1]):
        if m.auth.get("DMARC") != "pass" and m.auth.get("SPF") != "pass":
            out.append(Evidence("auth", "auth.org_spoof",
                                f"From {m.from_address} is an organisation address, sent by {m.mail_from} without passing SPF or DMARC"))
    return out
