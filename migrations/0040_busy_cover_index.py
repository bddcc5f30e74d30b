"""Busy cache: an index that answers the booking pages' range reads by itself.

Pages ask "which busy intervals of these calendars overlap [a, b)": with ``end`` in
the index next to ``start``, the database filters on both without visiting the table
(it replaces the (calendar_id, start) index, which is its prefix).
"""

from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.drop_index("busy_block", "busyblock_calendar_id_start"),
        migrator.add_index("busy_block", ("calendar_id", "start", "end"), False),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index("busy_block", "busy_block_calendar_id_start_end"),
        migrator.add_index("busy_block", ("calendar_id", "start"), False),
    )
