"""What every service-backed panel shares: an error line, a note line, and calling the
service so that a refusal (any :class:`~workbench.errors.WorkbenchError`) is shown as one
escaped line instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w

from workbench.errors import WorkbenchError
from workbench.ui.render import esc

FAILED = object()  # what ServicePanel.act returns when the service refused


class ServicePanel(w.VBox):
    """A panel over one service, with its error and note lines."""

    def __init__(self, service: Any) -> None:
        super().__init__()
        self.service = service
        self.error = w.HTML()
        self.note = w.HTML()

    def error_text(self, exc: Exception) -> str:
        """The one line shown for *exc* (a panel may reword a command-line hint)."""
        return str(exc)

    def show_error(self, exc: Exception) -> None:
        self.error.value = f'<span class="wb-error" style="color:#b00020">{esc(self.error_text(exc))}</span>'

    def act(self, fn: Callable[[], Any], done: str = "", *, clear: bool = True) -> Any:
        """Call the service; show its one-line error instead of raising (and return FAILED).
        Reads that redraw after a change pass ``clear=False`` so the change's error stays shown."""
        if clear:
            self.error.value = ""
        try:
            result = fn()
        except WorkbenchError as exc:
            self.show_error(exc)
            return FAILED
        if done:
            self.note.value = f'<span class="wb-note">{esc(done)}</span>'
        return result
