"""Attack content: lookalike domains, credential-phish kits, malware stand-ins, BEC lures.

The malicious attachments are inert: they carry the markers a detector keys on (an
``AutoOpen`` macro name in a vbaProject part, an ``MZ`` header, a script that assembles a
download from base64) but no working code. Never render or execute them anyway.
"""

from __future__ import annotations

import base64

import numpy as np

from workbench.ingest.demo.content import MIME_TYPES, Attachment, Template, _zip, make_template, office

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


def shared_document_lure(tid: int, subject: str, sender_name: str, url: str, *, category: str = "phish") -> Template:
    paragraphs = [
        f"{sender_name} shared a file with you.",
        "Q4 bonus allocation - confidential.xlsx",
        "This link only works for the direct recipients of this message.",
    ]
    return make_template(tid, category, subject, paragraphs, [("Open", url)])


def macro_document(name: str, wave: str) -> Attachment:
    macro = (
        "Attribute VB_Name = \"ThisDocument\"\nSub AutoOpen()\n  ' inert stand-in for a downloader macro "
        f"(workbench demo, wave {wave})\n  Dim u: u = \"hxxp://invoices-cdn[.]top/load\"\nEnd Sub\n"
    )
    content = office("docm", f"Invoice {wave}. Enable editing and content to view this document.", macro=macro)
    return Attachment(name, "docm", MIME_TYPES["docm"], content, "Malware", "TrojanDownloader:O97M/Donoff",
                      '{"Malware":["File detonation","Antimalware protection"]}')


def zipped_executable(name: str, inner: str, wave: str) -> Attachment:
    stub = b"MZ" + b"\x00" * 58 + b"\x80\x00\x00\x00" + f"inert stand-in executable, workbench demo {wave}".encode()
    content = _zip([(inner, stub)])
    return Attachment(name, "zip", MIME_TYPES["zip"], content, "Malware", "Trojan:Win32/Qakbot",
                      '{"Malware":["File detonation reputation"]}')


def html_smuggling(name: str, wave: str) -> Attachment:
    payload = base64.b64encode(_zip([("Statement.txt", f"inert stand-in payload {wave}".encode())])).decode()
    page = (
        "<html><body><p>Loading your document...</p><script>\n"
        f"var d=atob('{payload}');var a=new Uint8Array(d.length);for(var i=0;i<d.length;i++)a[i]=d.charCodeAt(i);\n"
        "var b=new Blob([a],{type:'application/zip'});var l=document.createElement('a');"
        "l.href=URL.createObjectURL(b);l.download='Statement.zip';/* l.click() removed: inert */\n"
        "</script></body></html>"
    )
    return Attachment(name, "html", MIME_TYPES["html"], page.encode(), "Malware", "Trojan:HTML/Smuggling.A",
                      '{"Malware":["File detonation"]}')


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
    """The steady trickle of generic phish and malware every mailbox receives (mostly caught)."""
    from workbench.ingest.demo.org import ExternalSender, public_ip

    subjects = ["Your mailbox is almost full", "Payment failed: update your billing details", "New voicemail received",
                "Your package is on hold", "Document shared: Invoice.pdf", "Security alert: verify your account"]
    brands = ["microsoft", "docusign", "dhl", "adobesign", "sharepoint"]
    domains = [d for b in brands for d in lookalikes(b, rng, 4)]
    phish, malware = [], []
    tid = first_id
    for k in range(20):
        domain = domains[k % len(domains)]
        phish.append(credential_lure(tid, subjects[k % len(subjects)], brands[k % len(brands)].title(), phish_url(domain, rng), org_name))
        tid += 1
    for k in range(10):
        attachment = macro_document(f"Invoice_{k:03d}.docm", f"noise-{k}") if k % 2 else zipped_executable(
            f"Scan_{k:03d}.zip", f"Scan_{k:03d}.pdf.exe", f"noise-{k}")
        malware.append(malware_lure(tid, "Outstanding payment " + str(1000 + k), attachment, "Accounts Dept"))
        tid += 1
    phish_senders = tuple(ExternalSender(f"security@{d}", "Account Security", d, (public_ip(rng),), "phish") for d in domains)
    malware_senders = tuple(ExternalSender(f"billing{k}@{w}.{t}", "Billing", f"{w}.{t}", (public_ip(rng),), "malware")
                            for k, (w, t) in enumerate(zip(["invoicehub", "payfast", "docsend", "acctmail"] * 3, ["top", "xyz", "icu"] * 4)))
    return {"phish": phish, "malware": malware}, {"phish": phish_senders, "malware": malware_senders}
