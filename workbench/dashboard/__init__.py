"""The threat dashboard (mdo-reference §2): what was stopped and what got through, for managers.

``build(lake, window)`` computes every tile from the lake (no widgets here); the panel in
``workbench/ui/dashboard.py`` and the report in :mod:`workbench.dashboard.report` draw them.
"""

from workbench.dashboard.data import WINDOWS, build, window_named
from workbench.dashboard.tiles import Dashboard, Insight, Metric, Severity, Tile

__all__ = ["build", "window_named", "WINDOWS", "Dashboard", "Tile", "Metric", "Insight", "Severity"]
