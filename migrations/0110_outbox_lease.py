"""Outbox lease: a killed job is redone within a minute instead of after two hours.

``lease_until`` is when the row's current holder (the relay that enqueued it,
or the job running it, which renews it) is presumed gone; ``lease_owner``
names the run holding it. See ``portal.runtime.outbox`` for how they are used.
"""

from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("outbox", "lease_until", DateTimeField(null=True)),
        migrator.add_column("outbox", "lease_owner", CharField(null=True)),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("outbox", "lease_owner"),
        migrator.drop_column("outbox", "lease_until"),
    )
