"""Calendar connections: refresh scheduling and backoff, write-back attempts, busy-cache index."""

from peewee import *


def up(migrator, db):
    migrator.migrate(
        # Consecutive failed refreshes, for the retry backoff.
        migrator.add_column("connection", "failures", IntegerField(default=0)),
        # When the periodic refresh should next run (naive UTC); NULL = now.
        migrator.add_column("connection", "next_sync_at", DateTimeField(null=True)),
        # Write-back attempts of the current try; the last one marks the event failed.
        migrator.add_column("calendar_event", "attempts", IntegerField(default=0)),
        # Incremental syncs replace one source event's blocks at a time.
        migrator.add_index("busy_block", ("calendar_id", "external_id"), False),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index("busy_block", "busy_block_calendar_id_external_id"),
        migrator.drop_column("calendar_event", "attempts"),
        migrator.drop_column("connection", "next_sync_at"),
        migrator.drop_column("connection", "failures"),
    )
