"""The Voila apps as data: what the home page of ``workbench serve`` lists, in display order.

An app is a notebook in ``notebooks/`` (the playbooks are ``notebooks/playbooks/<name>.ipynb``,
through the ``notebooks/playbooks`` link to ``playbooks/``). :func:`available` keeps the apps whose notebook
exists, so an app that has not landed yet is simply not listed. Nothing here imports Voila
or widgets.

>>> [a.key for a in APPS][:2]
['dashboard', 'explorer']
>>> by_key("explorer").notebook
'Explorer.ipynb'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.errors import NotFound


@dataclass(frozen=True)
class App:
    """One Voila app: a notebook, its title and a one-line description for the home page.

    ``preheat`` marks the app whose kernel Voila starts ahead of the first visit
    (``workbench serve --preheat N``); its notebook must call
    ``voila.utils.wait_for_request()`` before it reads ``QUERY_STRING`` or a request header.
    """

    key: str
    title: str
    notebook: str
    description: str
    preheat: bool = False


APPS: tuple[App, ...] = (
    App("dashboard", "Threat dashboard", "Dashboard.ipynb",
        "What was stopped and what got through: detections, trends, top targets and insights.", preheat=True),
    App("explorer", "Threat Explorer", "Explorer.ipynb",
        "Filter and pivot mail, clicks and files over any window; open an email and its timeline."),
    App("incidents", "Incidents", "Incidents.ipynb",
        "Alerts correlated into incidents, with their evidence, severity and status."),
    App("action_center", "Action center", "ActionCenter.ipynb",
        "Remediation waiting for approval and done: approve or reject, dry run, run, undo, per-message results."),
    App("simulator", "Attack simulator", "Simulator.ipynb",
        "Phishing simulation campaigns and how users responded to them."),
    App("threat_intel", "Threat intelligence", "ThreatIntel.ipynb",
        "Indicators, feeds and the mail and files they match."),
    App("investigations", "Investigations", "Investigations.ipynb",
        "Automated investigations: what was examined, the verdicts and the proposed actions."),
    App("overview", "Tenant overview", "Overview.ipynb",
        "The tenant's lake contents (tables, partitions, rows, date range) and its planted stories."),
    App("audit", "Audit log", "Audit.ipynb",
        "Who accessed content, ran or approved actions, changed roles and policies, exported or was denied."),
    # the AIR playbooks (playbooks/, reached through the notebooks/playbooks link): ?alert=ID runs one for
    # that alert, ?investigation=ID shows a recorded run, no address shows the form
    App("playbook_manual_email_investigation", "Playbook: manual email investigation",
        "playbooks/manual_email_investigation.ipynb",
        "Investigate chosen messages: indicators, reputation, similar mail and the actions to approve."),
    App("playbook_user_reported_phish", "Playbook: user-reported message", "playbooks/user_reported_phish.ipynb",
        "Investigate a message a user reported as phish or malware."),
    App("playbook_url_click_verdict_change", "Playbook: URL click / verdict change",
        "playbooks/url_click_verdict_change.ipynb",
        "Investigate a click on a URL found malicious, and the mail that carried it."),
    App("playbook_malware_zap", "Playbook: malware removed after delivery", "playbooks/malware_zap.ipynb",
        "Investigate mail with malware that ZAP removed after delivery, and the copies it could not reach."),
    App("playbook_phish_zap", "Playbook: phish removed after delivery", "playbooks/phish_zap.ipynb",
        "Investigate mail with phish URLs that ZAP removed after delivery, and the copies it could not reach."),
    App("playbook_compromised_user", "Playbook: compromised user", "playbooks/compromised_user.ipynb",
        "Investigate an account: forwarding and inbox rules, delegation, sent mail and sign-ins."),
)


def available(notebooks_dir: Path | str) -> tuple[App, ...]:
    """The registered apps whose notebook exists in *notebooks_dir*, in display order."""
    folder = Path(notebooks_dir)
    return tuple(app for app in APPS if (folder / app.notebook).is_file())


def by_key(key: str) -> App:
    """The registered app called *key*."""
    for app in APPS:
        if app.key == key:
            return app
    raise NotFound(f"no app called {key!r}; known apps: {', '.join(a.key for a in APPS)}")
