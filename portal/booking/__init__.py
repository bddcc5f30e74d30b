"""The booking domain: the slot engine, the booking service and what a booking carries.

- the engine, pure and stdlib only: ``availability`` (offered starts), ``wallclock``
  (``HH:MM`` hours as instants), ``explain`` (why a start is not offered)
- its inputs from the database: ``rules`` (and ``available_slots``), ``slot_memo``
- writes: ``service`` (book, cancel, reschedule), ``hours`` (availability),
  ``meeting_types``, ``questions``, ``locations``
- around a booking: ``checks`` (refusals and input checks), ``links`` (the manage link),
  ``shape`` (its JSON and calendar-event state), ``schedule`` (the host's agenda)

No module here imports Flask: callers pass ``now`` and the app's settings (the live-check
timeout, absolute URLs) in.
"""
