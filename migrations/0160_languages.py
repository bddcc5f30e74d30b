"""Languages: the host's chosen language for their settings and e-mails ("" = their
browser's), and the language each booking was made in, for the invitee's e-mails."""

from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("user", "locale", CharField(default="")),
        migrator.add_column("booking", "locale", CharField(default="")),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("user", "locale"),
        migrator.drop_column("booking", "locale"),
    )
