"""Endpoint (Defender for Endpoint–style) signals: which devices a user works on and the
endpoint alerts raised on them (:mod:`workbench.endpoint.correlate`)."""
