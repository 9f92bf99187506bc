"""Incidents: alerts correlated by shared entities, with evidence, comments and an activity log."""
