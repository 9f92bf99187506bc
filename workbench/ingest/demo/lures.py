"""Attack content: lookalike domains, credential-phish kits, malware stand-ins, BEC lures.

The malicious attachments are inert: they carry the markers a detector keys on (an
``AutoOpen`` macro name in a vbaProject part, an ``MZ`` header, a script that assembles a
download from base64) but no working code. Never render or execute them anyway.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import numpy as np

from workbench.ingest.demo.content import MIME_TYPES, Attachment, Template, _zip, make_template, office, pdf, url_domain
from workbench.ingest.demo.judge import IntelFeed

HOMOGLYPHS = [("m", "rn"), ("o", "0"), ("l", "1"), ("i", "l"), ("e", "3"), ("a", "4")]


def lookalikes(stem: str, rng: np.random.Generator, count: int) -> list[str]:
    """Domains that imitate *stem* (homoglyphs, added words, other TLDs), in a stable order."""
    out: list[str] = []
    for a, b in HOMOGLYPHS:
        if a in stem:
            out.append(stem.replace(a, b, 1) + ".com")
    for word in ("sso", "secure", "hr", "portal", "login", "docs", "payroll", "online"):
        out.append(f"{stem}-{word}.{['com', 'net', 'info', 'co'][len(word) % 4]}")
    order = rng.permutation(len(out))
    return [out[i] for i in order[:count]]


def phish_url(domain: str, rng: np.random.Generator, kit: str = "o365") -> str:
    token = rng.bytes(6).hex()
    return f"https://{domain}/{kit}/auth/login.php?session={token}"


def credential_lure(tid: int, subject: str, brand: str, url: str, org_name: str, *, category: str = "phish") -> Template:
    paragraphs = [
        f"{brand}: action required on your {org_name} account.",
        "Your password expires today. To keep access to your mailbox and shared documents, "
        "confirm your credentials within 24 hours.",
        "If you do not verify, your account will be suspended.",
        f"{brand} Security Team",
    ]
    return make_template(tid, category, subject, paragraphs, [("Verify now", url)])


def shared_document_lure(tid: int, subject: str, sender_name: str, url: str, *, category: str = "phish",
                         document: str = "Q4 bonus allocation - confidential.xlsx") -> Template:
    paragraphs = [
        f"{sender_name} shared a file with you.",
        document,
        "This link only works for the direct recipients of this message.",
    ]
    return make_template(tid, category, subject, paragraphs, [("Open", url)])


def macro_document(name: str, wave: str) -> Attachment:
    macro = (
        "Attribute VB_Name = \"ThisDocument\"\nSub AutoOpen()\n  ' inert stand-in for a downloader macro "
        f"(workbench demo, wave {wave})\n  Dim u: u = \"hxxp://invoices-cdn[.]top/load\"\nEnd Sub\n"
    )
    content = office("docm", f"Invoice {wave}. Enable editing and content to view this document.", macro=macro)
    return Attachment(name, "docm", MIME_TYPES["docm"], content)


def zipped_executable(name: str, inner: str, wave: str) -> Attachment:
    stub = b"MZ" + b"\x00" * 58 + b"\x80\x00\x00\x00" + f"inert stand-in executable, workbench demo {wave}".encode()
    content = _zip([(inner, stub)])
    return Attachment(name, "zip", MIME_TYPES["zip"], content)


def html_smuggling(name: str, wave: str) -> Attachment:
    payload = base64.b64encode(_zip([("Statement.txt", f"inert stand-in payload {wave}".encode())])).decode()
    page = (
        "<html><body><p>Loading your document...</p><script>\n"
        f"var d=atob('{payload}');var a=new Uint8Array(d.length);for(var i=0;i<d.length;i++)a[i]=d.charCodeAt(i);\n"
        "var b=new Blob([a],{type:'application/zip'});var l=document.createElement('a');"
        "l.href=URL.createObjectURL(b);l.download='Statement.zip';/* l.click() removed: inert */\n"
        "</script></body></html>"
    )
    return Attachment(name, "html", MIME_TYPES["html"], page.encode())


def pdf_invoice(name: str, wave: str) -> Attachment:
    """A plain-looking PDF 'invoice' (the kind of dropper only file reputation catches); inert."""
    content = pdf(f"Payment confirmation. Download the remittance viewer to open the secured copy. Ref {wave}")
    return Attachment(name, "pdf", MIME_TYPES["pdf"], content)


def malware_lure(tid: int, subject: str, attachment: Attachment, sender_company: str, *, category: str = "malware") -> Template:
    paragraphs = [
        "Hello,",
        f"Please find attached the document regarding your recent order with {sender_company}.",
        "Kindly review and confirm payment at your earliest convenience.",
        "Regards,\nAccounts Receivable",
    ]
    return make_template(tid, category, subject, paragraphs, attachments=(attachment,))


def bec_lure(tid: int, subject: str, exec_first_name: str, ask: str) -> Template:
    asks = {
        "gift card": ["Are you at your desk? I need a quick favour.",
                      "I need you to purchase 6 gift cards (USD 200 each) for a client appreciation event. "
                      "Scratch the back and send me photos of the codes. Keep this between us for now.",
                      "I'm in meetings all day, reply by email only."],
        "invoice": ["We need to settle an outstanding vendor invoice today before the quarter closes.",
                    "The vendor has changed banks; use the new account details I will send once you confirm. "
                    "Please treat as urgent and confidential.",
                    "Sent from my phone"],
    }
    return make_template(tid, "bec", subject, asks[ask] + [exec_first_name])


def simulation_lure(tid: int, subject: str, url: str) -> Template:
    paragraphs = ["Your parcel could not be delivered.", "Confirm your address and reschedule the delivery.",
                  "Delivery Services"]
    return make_template(tid, "simulation", subject, paragraphs, [("Reschedule delivery", url)])


def commodity(rng: np.random.Generator, first_id: int, org_name: str) -> tuple[dict[str, list[Template]], dict[str, tuple]]:
    """The steady trickle of generic phish and malware every mailbox receives.

    Three families: credential lures from brand lookalike domains, "shared document" lures
    sent from compromised small-business mailboxes (authentication passes, the link goes to a
    freshly registered host: only threat intelligence catches these, often after delivery),
    and invoice malware.
    """
    from workbench.ingest.demo.org import ExternalSender, public_ip

    subjects = ["Your mailbox is almost full", "Payment failed: update your billing details", "New voicemail received",
                "Your package is on hold", "Document shared: Invoice.pdf", "Security alert: verify your account"]
    brands = ["microsoft", "docusign", "dhl", "adobesign", "sharepoint"]
    domains = [d for b in brands for d in lookalikes(b, rng, 4)]
    phish, compromised, malware = [], [], []
    tid = first_id
    for k in range(20):
        domain = domains[k % len(domains)]
        phish.append(credential_lure(tid, subjects[k % len(subjects)], brands[k % len(brands)].title(), phish_url(domain, rng), org_name))
        tid += 1
    businesses = [f"{a}{b}.{t}" for a, b, t in zip(["northwind", "bluepeak", "harbour", "maplewood", "cedarline", "summitview"],
                                                    ["plumbing", "dental", "logistics", "accounting", "builders", "realty"],
                                                    ["com", "co.uk", "com", "net", "com", "com.au"])]
    hosts = [f"{a}-{b}.{t}" for a, b, t in zip(["filevault", "docuview", "sharebox", "cloudfiles", "viewdocs", "onlinefiles"],
                                               ["portal", "hub", "access", "center", "online", "direct"],
                                               ["com", "net", "app", "io", "com", "net"])]
    for k in range(12):
        url = f"https://{hosts[k % len(hosts)]}/d/{rng.bytes(5).hex()}"
        name = ["Accounts", "Office", "Reception", "Billing"][k % 4]
        compromised.append(shared_document_lure(tid, ["Shared document", "Invoice for your review", "Signed agreement",
                                                      "Updated statement"][k % 4], f"{name} team", url, category="compromised"))
        tid += 1
    for k in range(10):
        attachment = macro_document(f"Invoice_{k:03d}.docm", f"noise-{k}") if k % 2 else zipped_executable(
            f"Scan_{k:03d}.zip", f"Scan_{k:03d}.pdf.exe", f"noise-{k}")
        malware.append(malware_lure(tid, "Outstanding payment " + str(1000 + k), attachment, "Accounts Dept"))
        tid += 1
    phish_senders = tuple(ExternalSender(f"security@{d}", "Account Security", d, (public_ip(rng),), "phish") for d in domains)
    compromised_senders = tuple(ExternalSender(f"{['accounts', 'office', 'info'][k % 3]}@{b}", b.split(".")[0].title(), b,
                                               (public_ip(rng),), "compromised") for k, b in enumerate(businesses))
    malware_senders = tuple(ExternalSender(f"billing{k}@{w}.{t}", "Billing", f"{w}.{t}", (public_ip(rng),), "malware")
                            for k, (w, t) in enumerate(zip(["invoicehub", "payfast", "docsend", "acctmail"] * 3, ["top", "xyz", "icu"] * 4)))
    return ({"phish": phish, "compromised": compromised, "malware": malware},
            {"phish": phish_senders, "compromised": compromised_senders, "malware": malware_senders})


def commodity_intel(rng: np.random.Generator, noise: dict[str, list[Template]], start: datetime, end: datetime,
                    feed: IntelFeed) -> None:
    """When the tenant's intelligence feed learns each commodity indicator.

    Lookalike phishing domains and most malware are known before the window opens or early in
    it; the compromised-mailbox lures' hosts become known at a random moment inside it, so the
    copies delivered before then are removed after delivery (ZAP) when the indicator arrives.
    """
    span = (end - start).total_seconds()

    def moment(before: float) -> datetime:
        if rng.random() < before:
            return start - timedelta(days=float(rng.uniform(1, 30)))
        return start + timedelta(seconds=float(rng.uniform(0, span)))

    for t in noise["phish"]:
        for url, _ in t.urls:
            feed.add("domain", url_domain(url), moment(0.5), description="credential phishing kit host")
    for t in noise["compromised"]:
        for url, _ in t.urls:
            feed.add("url", url, moment(0.0), description="credential phishing page behind a shared-document lure")
    for t in noise["malware"]:
        for a in t.attachments:
            family = "Donoff" if a.file_type == "docm" else "Qakbot"
            feed.add("sha256", a.sha256, moment(0.7), family=family, description=f"{family} dropper ({a.file_type})")
