"""The tracking server's pages: login, teaching (landing), consent, download, drive-by, training,
report-received, transparency and not-found.

Every value that comes from a campaign, payload or directory (names, subjects, senders,
indicators, app names, scopes, module titles, tokens) is escaped with :func:`html.escape`. Pages are
self-contained — inline CSS only, no scripts, fonts, images or other external resources — so they
work offline and under the server's ``default-src 'none'`` Content-Security-Policy.

>>> from workbench.simulator.model import Recipient, Technique, TrackedTarget
>>> t = TrackedTarget("tok1", 1, "Q1", Technique.CREDENTIAL_HARVEST, Recipient("a@example.com", "<b>A</b>"),
...                   None, payload_subject='"><script>alert(1)</script>')
>>> "<script>" in teaching_page(t) or "<b>A</b>" in login_page(t)
False
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import quote

from workbench.simulator.model import Technique, TrackedTarget

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")  # incl. bidi overrides


def e(value: object) -> str:
    """Escaped text for HTML content and attribute values; control and direction characters shown, not obeyed."""
    text = "" if value is None else str(value)
    text = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode(), text)
    return html.escape(text, quote=True)


def path(prefix: str, token: str) -> str:
    """A same-origin path for *token*, escaped for an attribute: ``/prefix/token``."""
    return e(f"/{prefix}/{quote(token, safe='')}")


_CSS = """<style>
*{box-sizing:border-box}
body{margin:0;font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;background:#f2f2f2;color:#1b1b1b}
main{max-width:34em;margin:6vh auto;background:#fff;padding:2em 2.2em;border-radius:6px;
  box-shadow:0 2px 8px rgba(0,0,0,.12)}
main.wide{max-width:46em}
h1{font-size:1.5em;margin:.2em 0 .6em} h2{font-size:1.1em;margin:1.4em 0 .4em}
label{display:block;font-size:.9em;margin:.8em 0 .2em;color:#444}
input[type=text],input[type=email],input[type=password]{width:100%;padding:.55em;border:1px solid #8a8a8a;
  border-radius:3px;font-size:1em}
button,.btn{display:inline-block;margin-top:1.2em;padding:.55em 1.6em;border:0;border-radius:3px;background:#0f6cbd;
  color:#fff;font-size:1em;text-decoration:none;cursor:pointer}
button.secondary{background:#e1e1e1;color:#1b1b1b}
.muted{color:#666;font-size:.9em} .brand{font-weight:600;color:#555;letter-spacing:.04em}
.banner{background:#fff4ce;border-left:4px solid #c19c00;padding:.8em 1em;margin:0 0 1em}
.ok{background:#dff6dd;border-left:4px solid #107c10;padding:.8em 1em;margin:0 0 1em}
dl{display:grid;grid-template-columns:max-content auto;gap:.3em 1em;margin:0} dt{font-weight:600;color:#444}
dd{margin:0;overflow-wrap:anywhere}
ul.indicators li{margin:.35em 0} ul.indicators mark{background:#ffe7a3;padding:0 .2em}
ul.scopes li{margin:.3em 0}
.module{border-top:1px solid #e5e5e5;padding:.8em 0} .module h3{margin:.2em 0;font-size:1em}
.file{display:flex;gap:1em;align-items:center;border:1px solid #ddd;border-radius:4px;padding:1em}
.file .icon{width:2.4em;height:3em;background:#185abd;border-radius:3px}
</style>"""


def _page(title: str, body: str, *, wide: bool = False) -> str:
    """A complete, self-contained HTML document (*title* and *body* must already be escaped)."""
    cls = ' class="wide"' if wide else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="robots" content="noindex, nofollow"><meta name="referrer" content="no-referrer">'
            f"<title>{title}</title>{_CSS}</head><body><main{cls}>{body}</main></body></html>")


# --- login pages ------------------------------------------------------------------------------------

def _login_form(t: TrackedTarget, button: str = "Sign in") -> str:
    return (f'<form method="post" action="{path("login", t.token)}" autocomplete="off">'
            f'<label for="username">Email address</label>'
            f'<input type="email" id="username" name="username" value="{e(t.recipient.email)}">'
            f'<label for="password">Password</label>'
            f'<input type="password" id="password" name="password" autocomplete="off">'
            f"<button type=\"submit\">{e(button)}</button></form>")


def _login_generic(t: TrackedTarget) -> str:
    body = ('<div class="brand">ACCOUNT SERVICES</div><h1>Sign in</h1>'
            '<p class="muted">to continue to your account</p>' + _login_form(t) +
            '<p class="muted">Can\'t access your account?</p>')
    return _page("Sign in to your account", body)


def _login_document(t: TrackedTarget) -> str:
    who = t.payload_sender or "A colleague"
    doc = t.payload_name or "Shared document"
    body = ('<div class="brand">DOCUMENT SHARING</div><h1>Sign in to view the shared document</h1>'
            f'<div class="file"><div class="icon"></div><div><strong>{e(doc)}</strong><br>'
            f'<span class="muted">Shared with you by {e(who)}</span></div></div>'
            '<p class="muted">For your security, confirm your identity to open this file.</p>' +
            _login_form(t, "Sign in and view"))
    return _page("Shared document", body)


#: Login page templates by id (``TrackedTarget.login_page``); unknown ids fall back to ``generic``.
LOGIN_TEMPLATES: dict[str, Callable[[TrackedTarget], str]] = {
    "generic": _login_generic,
    "document": _login_document,
}


def login_page(t: TrackedTarget) -> str:
    """The target's login page (the username pre-filled with their address)."""
    return LOGIN_TEMPLATES.get(t.login_page, _login_generic)(t)


# --- teaching (landing) ------------------------------------------------------------------------------

_WHAT_HAPPENED = {
    Technique.CREDENTIAL_HARVEST: "The message led to a sign-in page built to collect passwords.",
    Technique.MALWARE_ATTACHMENT: "The message carried an attachment that could have run code on your device.",
    Technique.LINK_IN_ATTACHMENT: "The attachment contained a link to a sign-in page built to collect passwords.",
    Technique.LINK_TO_MALWARE: "The message linked to a file that could have installed malware.",
    Technique.DRIVE_BY_URL: "The message linked to a page that could have run code in the background "
                            "as soon as it opened.",
    Technique.OAUTH_CONSENT_GRANT: "The message asked you to give an app access to your account and data.",
    Technique.HOW_TO_GUIDE: "This message was a guide to spotting and reporting phishing.",
}


def _teaching_body(t: TrackedTarget, lead: str = "") -> str:
    org = t.organisation or "your organisation"
    parts = [f'<div class="banner"><strong>This was a phishing simulation</strong> run by {e(org)}. '
             "Nothing harmful happened and no password was kept.</div>"]
    if lead:
        parts.append(f"<p>{e(lead)}</p>")
    parts.append(f"<h1>This was a phishing simulation</h1><p>{e(_WHAT_HAPPENED.get(t.technique, ''))}</p>")
    rows = [("Message", t.payload_name), ("Subject", t.payload_subject), ("From", t.payload_sender)]
    items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows if v)
    if items:
        parts.append(f"<h2>What the message looked like</h2><dl>{items}</dl>")
    if t.indicators:
        lis = "".join(f"<li><mark>{e(i)}</mark></li>" for i in t.indicators)
        parts.append(f'<h2>What should have given it away</h2><ul class="indicators">{lis}</ul>')
    parts.append("<h2>What to do next time</h2><ul>"
                 "<li>Report the message with your mail app's <strong>Report</strong> button "
                 "(or forward it to your security team).</li>"
                 "<li>Don't click links or open attachments you did not expect; check the sender's real address.</li>"
                 "<li>Never enter your password on a page you reached from a message.</li></ul>")
    if t.training:
        parts.append(f'<p><a class="btn" href="{path("training", t.token)}">Go to your assigned training</a></p>')
    return "".join(parts)


def teaching_page(t: TrackedTarget, *, lead: str = "") -> str:
    """The landing page: this was a simulation, what the message looked like, its indicators, next time."""
    return _page("This was a phishing simulation", _teaching_body(t, lead), wide=True)


def driveby_page(t: TrackedTarget) -> str:
    """The drive-by interstitial: the page 'ran code in the background' — then the teaching content."""
    return teaching_page(t, lead="This page ran code in the background the moment it opened. "
                                 "On a real attack page that is all it takes to infect a device.")


# --- consent, download, training, report -------------------------------------------------------------

def consent_page(t: TrackedTarget) -> str:
    """An OAuth consent prompt: the app name, its requested scopes, Accept / Cancel."""
    app = t.app_name or "Unnamed application"
    scopes = "".join(f"<li>{e(s)}</li>" for s in t.scopes) or "<li>Sign you in and read your profile</li>"
    body = (f'<div class="brand">PERMISSIONS REQUESTED</div><h1>{e(app)}</h1>'
            f'<p class="muted">unverified publisher · requested for {e(t.recipient.email)}</p>'
            f'<p>This app would like to:</p><ul class="scopes">{scopes}</ul>'
            "<p class=\"muted\">Accepting lets this app use your data as described above.</p>"
            f'<form method="post" action="{path("consent", t.token)}">'
            '<button type="submit" name="action" value="accept">Accept</button> '
            '<button type="submit" name="action" value="cancel" class="secondary">Cancel</button></form>')
    return _page("Permissions requested", body)


def download_page(t: TrackedTarget) -> str:
    """A file-share page with a Download button (the file is a harmless notice)."""
    who = t.payload_sender or "A colleague"
    doc = t.payload_name or "Document"
    body = ('<div class="brand">FILE SHARING</div><h1>A file was shared with you</h1>'
            f'<div class="file"><div class="icon"></div><div><strong>{e(doc)}</strong><br>'
            f'<span class="muted">Shared by {e(who)}</span></div></div>'
            f'<a class="btn" href="{path("d", t.token)}">Download</a>')
    return _page("File shared with you", body)


def training_page(t: TrackedTarget, *, completed: str = "") -> str:
    """The assigned training modules, each with a Mark complete form (*completed*: a module just done)."""
    parts = ["<h1>Your assigned training</h1>"]
    done = next((m for m in t.training if m.id == completed), None)
    if done is not None:
        parts.append(f'<div class="ok">Marked complete: {e(done.title)}. Thank you.</div>')
    if not t.training:
        parts.append("<p>No training is assigned to you for this simulation.</p>")
    for m in t.training:
        summary = f"<p>{e(m.summary)}</p>" if m.summary else ""
        parts.append(f'<div class="module"><h3>{e(m.title)}</h3><p class="muted">{e(m.minutes)} minutes</p>{summary}'
                     f'<form method="post" action="{path("training", t.token)}">'
                     f'<input type="hidden" name="module" value="{e(m.id)}">'
                     '<button type="submit">Mark complete</button></form></div>')
    return _page("Assigned training", "".join(parts), wide=True)


def report_page(t: TrackedTarget) -> str:
    """Thanks for reporting (positive reinforcement)."""
    org = t.organisation or "your organisation"
    body = ('<div class="ok"><strong>Thank you — your report was received.</strong></div>'
            "<h1>Well spotted</h1><p>Reporting suspicious messages is exactly the right thing to do.</p>"
            f"<p class=\"muted\">This message was part of a phishing simulation run by {e(org)}.</p>")
    return _page("Report received", body)


def consent_declined_lead() -> str:
    return "You declined to give the app access — well done."


# --- neutral and plain-text pages --------------------------------------------------------------------

def not_found_page() -> str:
    """A neutral 404 that reveals nothing (no product, campaign or token)."""
    return _page("Not Found", "<h1>Not Found</h1><p class=\"muted\">The page you requested does not exist.</p>")


def bad_request_page() -> str:
    return _page("Bad Request", "<h1>Bad Request</h1><p class=\"muted\">The request could not be processed.</p>")


def error_page(status: int, reason: str) -> str:
    return _page(e(f"{status} {reason}"), f"<h1>{e(reason)}</h1>")


def transparency_text(t: TrackedTarget) -> str:
    """The plain-text notice behind ``/c/{token}+``."""
    org = t.organisation or "the organisation that sent it"
    return (f"This address belongs to a phishing simulation (security awareness training) run by {org}.\n"
            "It is not a real attack. Requests to it are used only to measure and teach how people respond "
            "to suspicious messages; passwords typed into its pages are never stored.\n"
            "Questions: contact the security team of that organisation.\n")


def download_text(t: TrackedTarget) -> str:
    """The harmless file behind the Download button."""
    org = t.organisation or "your organisation"
    return ("This file is part of a phishing simulation run by " + org + ".\n"
            "It is harmless. A real attacker's file could have installed malware on your device.\n"
            "Next time: report messages that push you to download unexpected files.\n")


ROBOTS_TXT = "User-agent: *\nDisallow: /\n"


__all__ = ["e", "path", "LOGIN_TEMPLATES", "login_page", "teaching_page", "driveby_page", "consent_page",
           "download_page", "training_page", "report_page", "not_found_page", "bad_request_page", "error_page",
           "transparency_text", "download_text", "consent_declined_lead", "ROBOTS_TXT"]
