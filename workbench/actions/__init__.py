"""The action center (mdo-reference §4.5–4.7): remediation proposed by AIR, the Explorer,
incident pages or the command line; approved by a holder of the Search and Purge role; run by
a crash-safe executor against the mail store; recorded per copy and in the lake."""

from workbench.actions.model import (
    Action, ActionEvent, ActionKind, ActionSource, ActionStatus, DryRunRow, MessageResult, Totals,
)
from workbench.actions.permissions import Permission, require
from workbench.actions.service import ActionService, Limits, import_all, import_proposals

__all__ = ["Action", "ActionEvent", "ActionKind", "ActionSource", "ActionStatus", "ActionService", "DryRunRow",
           "Limits", "MessageResult", "Permission", "Totals", "import_all", "import_proposals", "require"]
