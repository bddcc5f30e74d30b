"""Running the portal: Redis and RQ, the worker, the outbox relay, backups."""
