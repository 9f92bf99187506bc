"""Automated investigation and response: clusters, analyzers, investigations, proposed actions."""
