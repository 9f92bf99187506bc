"""Which open incident a new alert belongs to: the one whose alerts share its entities.

Entities that name attacker infrastructure or a specific threat (a mail cluster, URL, sender
domain, IP, file, device, message copy) correlate on their own. A user correlates only in an
acting role (the user who clicked, signed in, sent, forwarded or owns the device), never as
one recipient among many: otherwise every alert about a busy mailbox would pile into one
incident. Attacker infrastructure correlates within ``INFRA_WINDOW`` of the incident's last
activity (campaigns come back), a user within ``USER_WINDOW``.

When an alert shares entities with several open incidents, they are one attack seen in
pieces: the service links the alert to the best match and merges the others into it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa

from workbench.incidents.model import Entity, EntityKind, IncidentStatus
from workbench.store import tables as t

USER_WINDOW = timedelta(days=7)
INFRA_WINDOW = timedelta(days=30)
STRONG = frozenset({EntityKind.CLUSTER, EntityKind.URL, EntityKind.DOMAIN, EntityKind.IP, EntityKind.FILE,
                    EntityKind.DEVICE, EntityKind.EMAIL})
# a user's account or device is in play: clicked a malicious link, signed in, sent, changed a
# rule, owns the device; not a recipient, reporter, uploader or replier (victims of one lure)
ACTING_ROLES = frozenset({"compromised", "clicked", "signin", "sender", "forwarding", "owner", "actor", "impacted"})
OPEN = (IncidentStatus.ACTIVE.value, IncidentStatus.IN_PROGRESS.value)


def correlating(entities: Iterable[Entity]) -> set[tuple[str, str]]:
    """The (kind, value) pairs of ``entities`` that may join two alerts."""
    keys = set()
    for e in entities:
        if e.kind in STRONG or (e.kind in (EntityKind.USER, EntityKind.MAILBOX) and e.role in ACTING_ROLES):
            keys.add((EntityKind.USER.value if e.kind == EntityKind.MAILBOX else e.kind.value, e.value))
    return keys


def find_incidents(conn: sa.Connection, entities: Iterable[Entity], first_activity: datetime,
                   exclude_alert: str | None = None) -> list[int]:
    """The open incidents sharing correlating entities with an alert, best first (most shared
    entities, then the oldest: merges keep the incident analysts have been working on)."""
    keys = correlating(entities)
    if not keys:
        return []
    ae, al, inc = t.alert_entities, t.alerts, t.incidents
    kind = sa.case((ae.c.kind == EntityKind.MAILBOX.value, EntityKind.USER.value), else_=ae.c.kind)
    query = (sa.select(al.c.incident_id, inc.c.first_activity, inc.c.last_activity, ae.c.kind, ae.c.value, ae.c.role)
             .join(al, al.c.id == ae.c.alert_id).join(inc, inc.c.id == al.c.incident_id)
             .where(inc.c.status.in_(OPEN), inc.c.last_activity >= first_activity - INFRA_WINDOW,
                    inc.c.first_activity <= first_activity + INFRA_WINDOW,
                    sa.or_(*(sa.and_(kind == k, ae.c.value.in_(sorted(v for kk, v in keys if kk == k)))
                             for k in sorted({k for k, _ in keys})))))
    if exclude_alert:
        query = query.where(al.c.id != exclude_alert)
    shared: Counter[int] = Counter()
    seen: set[tuple[int, str, str]] = set()
    for incident_id, incident_first, last_activity, k, v, role in conn.execute(query):
        for key in correlating([Entity(EntityKind(k), v, role)]):
            if key not in keys or (incident_id, *key) in seen:
                continue
            if key[0] == EntityKind.USER.value and not (
                    last_activity >= first_activity - USER_WINDOW and incident_first <= first_activity + USER_WINDOW):
                continue
            seen.add((incident_id, *key))
            shared[incident_id] += 1
    return sorted(shared, key=lambda i: (-shared[i], i))
