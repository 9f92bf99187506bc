"""The Voila apps as data: what the home page of ``workbench serve`` lists, in display order.

An app is a notebook in ``notebooks/``. :func:`available` keeps the apps whose notebook
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
        "Pending and completed remediation actions, with who approved them and when."),
    App("simulator", "Attack simulator", "Simulator.ipynb",
        "Phishing simulation campaigns and how users responded to them."),
    App("threat_intel", "Threat intelligence", "ThreatIntel.ipynb",
        "Indicators, feeds and the mail and files they match."),
    App("investigations", "Investigations", "Investigations.ipynb",
        "Automated investigations: what was examined, the verdicts and the proposed actions."),
    App("overview", "Tenant overview", "Overview.ipynb",
        "The tenant's lake contents (tables, partitions, rows, date range) and its planted stories."),
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
