"""RQ jobs. They take primitive ids, re-read the database and are safe to run twice.

Importing this package registers every outbox handler (see ``jobs.outbox``).
"""

from . import outbox  # noqa: F401
