"""RQ jobs. They take primitive ids, re-read the database and are safe to run twice.

Importing this package registers every outbox handler (see ``jobs.outbox``).
"""

# mail: notify, reminder, host_action_required, password_reset; calendar: write_back;
# booking_copies: booking_copies; admin: invite_email, meeting_attendees;
# webhooks: webhooks, webhook_delivery; locations: join_link_failed
from jobs import admin, booking_copies, calendar, locations, mail, outbox, webhooks  # noqa: F401
