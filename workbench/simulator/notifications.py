"""End-user notifications (mdo-reference §5.4 step 8): training assignment, training reminder and
positive reinforcement, rendered as messages like payloads (values HTML-escaped in the HTML part).

The sender is the organisation's awareness mailbox, passed in (see :func:`default_sender`).

>>> from datetime import date
>>> from workbench.simulator.payloads import SAMPLE_RECIPIENT, SAMPLE_LINKS
>>> from workbench.simulator.training import load_catalog
>>> msg = training_assignment(SAMPLE_RECIPIENT, load_catalog()[:2], SAMPLE_LINKS,
...                           sender=default_sender("contoso.example"), due=date(2026, 1, 31))
>>> msg["From"], msg[NOTIFICATION_HEADER]
('Security awareness <awareness@contoso.example>', 'trainingAssignment')
"""

from __future__ import annotations

import html as html_lib
from collections.abc import Sequence
from datetime import date, datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from workbench.errors import InputError
from workbench.simulator.model import Links, Recipient, TrainingModule
from workbench.simulator.payloads import is_address

NOTIFICATION_HEADER = "X-Workbench-Notification"  # the kind of notification (never a simulation token)


def default_sender(org_domain: str) -> str:
    """``Security awareness <awareness@ORG_DOMAIN>``."""
    return f"Security awareness <awareness@{org_domain.strip().lstrip('@')}>"


def _sender(sender: str) -> Address:
    name, addr = parseaddr(sender)
    if not is_address(addr):
        raise InputError(f"notification sender {sender!r} is not 'Name <address>'; "
                         "use e.g. 'Security awareness <awareness@contoso.example>'")
    return Address(display_name=name, addr_spec=addr)


def _message(kind: str, recipient: Recipient, *, sender: str, subject: str, text: str, html: str,
             when: datetime | None) -> EmailMessage:
    frm = _sender(sender)
    when = when or datetime.now(timezone.utc)
    msg = EmailMessage()
    msg["From"] = frm
    msg["To"] = Address(display_name=" ".join(recipient.display_name.split()), addr_spec=recipient.email)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when if when.tzinfo else when.replace(tzinfo=timezone.utc))
    msg["Message-ID"] = make_msgid(domain=frm.domain)
    msg[NOTIFICATION_HEADER] = kind
    msg.set_content(text)
    msg.add_alternative('<html><body style="font-family:Arial,sans-serif;font-size:14px">' + html
                        + "</body></html>", subtype="html")
    return msg


def _greeting(recipient: Recipient) -> str:
    name = recipient.given_name or recipient.display_name or recipient.email.split("@")[0]
    return " ".join(name.split())


def _modules(modules: Sequence[TrainingModule]) -> tuple[str, str]:
    e = html_lib.escape
    text = "\n".join(f"- {m.title} ({m.minutes} min)" for m in modules)
    html = "<ul>" + "".join(f"<li><b>{e(m.title)}</b> ({m.minutes} min)"
                            + (f"<br><span style=\"color:#555\">{e(m.summary)}</span>" if m.summary else "")
                            + "</li>" for m in modules) + "</ul>"
    return text, html


def training_assignment(recipient: Recipient, modules: Sequence[TrainingModule], links: Links, *, sender: str,
                        due: date, organisation: str = "", when: datetime | None = None) -> EmailMessage:
    """The message assigning *modules* (with the training link and *due* date)."""
    if not modules:
        raise InputError("training assignment has no modules; assign at least one training module")
    e, who = html_lib.escape, _greeting(recipient)
    total = sum(m.minutes for m in modules)
    org = f" by {organisation}" if organisation else ""
    mods_text, mods_html = _modules(modules)
    text = (f"Hello {who},\n\nYou have been assigned security awareness training{org} "
            f"({total} minutes in all), due by {due.isoformat()}:\n\n{mods_text}\n\n"
            f"Start your training: {links.training}\n\nThank you,\nSecurity awareness\n")
    html = (f"<p>Hello {e(who)},</p><p>You have been assigned security awareness training{e(org)} "
            f"({total} minutes in all), due by <b>{due.isoformat()}</b>:</p>{mods_html}"
            f'<p><a href="{e(links.training)}">Start your training</a></p><p>Thank you,<br>Security awareness</p>')
    return _message("trainingAssignment", recipient, sender=sender, text=text, html=html, when=when,
                    subject=f"Security training assigned to you – due {due.isoformat()}")


def training_reminder(recipient: Recipient, modules: Sequence[TrainingModule], links: Links, *, sender: str,
                      due: date, when: datetime | None = None) -> EmailMessage:
    """A reminder of the *modules* still to complete before *due*."""
    if not modules:
        raise InputError("training reminder has no modules; remind only of incomplete training")
    e, who = html_lib.escape, _greeting(recipient)
    mods_text, mods_html = _modules(modules)
    text = (f"Hello {who},\n\nA reminder: the following training is still open and due by {due.isoformat()}:\n\n"
            f"{mods_text}\n\nContinue your training: {links.training}\n\nThank you,\nSecurity awareness\n")
    html = (f"<p>Hello {e(who)},</p><p>A reminder: the following training is still open and due by "
            f"<b>{due.isoformat()}</b>:</p>{mods_html}"
            f'<p><a href="{e(links.training)}">Continue your training</a></p><p>Thank you,<br>Security awareness</p>')
    return _message("trainingReminder", recipient, sender=sender, text=text, html=html, when=when,
                    subject=f"Reminder: security training due {due.isoformat()}")


def positive_reinforcement(recipient: Recipient, *, sender: str, reported_subject: str = "",
                           when: datetime | None = None) -> EmailMessage:
    """Thanks for reporting a simulated phishing message (its subject, when known)."""
    e, who = html_lib.escape, _greeting(recipient)
    subj = " ".join(reported_subject.split())
    what = f' ("{subj}")' if subj else ""
    text = (f"Hello {who},\n\nThank you for reporting the suspicious message{what}. It was a phishing simulation, "
            "and you did exactly the right thing: reporting quickly protects your colleagues too.\n\n"
            "Keep it up,\nSecurity awareness\n")
    html = (f"<p>Hello {e(who)},</p><p>Thank you for reporting the suspicious message{e(what)}. It was a phishing "
            "simulation, and you did exactly the right thing: reporting quickly protects your colleagues too.</p>"
            "<p>Keep it up,<br>Security awareness</p>")
    return _message("positiveReinforcement", recipient, sender=sender, text=text, html=html, when=when,
                    subject="Thank you for reporting a phishing message")


__all__ = ["NOTIFICATION_HEADER", "default_sender", "training_assignment", "training_reminder",
           "positive_reinforcement"]
