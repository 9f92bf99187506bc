"""What the Explorer's incident actions do (mdo-reference §3.4): add the selected copies to an
incident, create an incident from them, or start an investigation of them, which files the
alert "Admin triggered manual investigation of email" and so lands in an incident.

An investigation starts the way every alert's does: the dispatcher runs its playbook, or the
analyst opens the playbook app with ``?alert=ID`` (the dispatcher then skips the alert). The
remediation kinds belong to the action center (a later issue); this module answers only the
kinds whose handler is ``incidents`` or ``investigations``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from workbench.detect.policies import manual_investigation_draft
from workbench.errors import InputError
from workbench.explorer.actions import ActionKind, ActionRequest
from workbench.incidents.service import IncidentService


def carry_out(service: IncidentService, request: ActionRequest) -> str:
    """Carry out an Explorer request on incidents; return a one-line result for the panel."""
    emails = [(t.network_message_id, t.recipient) for t in request.targets]
    if request.kind is ActionKind.ADD_TO_INCIDENT:
        text = (request.incident_id or "").strip().lstrip("#")
        if not text.isdigit():
            raise InputError(f"Add to incident: {request.incident_id!r} is not an incident number; type e.g. 12")
        added = service.add_emails(int(text), emails, source="explorer")
        return f"{added:,} email(s) added to incident {text} ({len(emails) - added:,} were already there)"
    if request.kind is ActionKind.CREATE_INCIDENT:
        name = request.comment.strip() or f"From the Explorer: {len(emails):,} email(s)"
        incident = service.create(name, emails=emails, source="explorer")
        return f"incident {incident.id} created with {len(emails):,} email(s)"
    if request.kind is ActionKind.START_INVESTIGATION:
        draft = manual_investigation_draft(emails, request.requested_by, datetime.now(UTC),
                                           explorer_query=request.query)
        added = service.add_alerts([draft])
        incident = (added.incidents_created or added.incidents_extended or (None,))[0]
        if not added.new:
            return "an investigation of these emails was already requested (same alert); see its incident"
        alert = added.new[0]
        return (f"investigation requested: alert {alert} filed" + (f" in incident {incident}" if incident else "")
                + "; the next `workbench air dispatch` runs the manual email investigation playbook for it "
                + f"(to run it now: playbooks/manual_email_investigation.ipynb?alert={alert})")
    raise InputError(f"{request.kind.value} is carried out by the {request.handler}, not by incidents")
