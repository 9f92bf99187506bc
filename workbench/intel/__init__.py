"""Threat intelligence: indicators from feeds (STIX, MISP, blocklists) and allow-lists."""
