"""The attack simulator (mdo-reference §5): realistic phishing campaigns sent over real SMTP,
tracked by a real HTTP server, with scanner filtering, training and reports.

Modules: :mod:`model` (techniques, statuses, events), :mod:`payloads` and the shipped library,
:mod:`attachments`, :mod:`notifications`, :mod:`training`, :mod:`payload_store` (tenant payloads),
:mod:`targets` (directory selection), :mod:`campaigns` (lifecycle), :mod:`sending` (the send
queue over :mod:`smtp`), :mod:`mail_server` (the embedded SMTP server), :mod:`tracking`,
:mod:`pages` and :mod:`filtering` (the tracking server), :mod:`recorder` (events into the
store), :mod:`reports`, :mod:`config` (the tenant's settings).
"""
