"""Busy cache: a version per calendar and UTC day, kept by the database itself.

Booking pages keep each day's merged busy time per process and must know, cheaply,
whether it is still what the rows say (``portal.booking.busy_read.day_stamps``).
Stamping the rows themselves costs a read of every row of the window, which grows with
the calendar; instead triggers on ``busy_block`` give the day a block starts on (per
calendar) a new ``version`` whenever a block there is inserted, updated or deleted —
also by a cascade, a hand edit or a restore — drawn from a counter that never repeats
(``busy_clock``: an AUTOINCREMENT table on SQLite, a sequence on PostgreSQL).
"""

from peewee import *

_SQLITE_BUMP = """
    INSERT INTO "busy_clock" ("n") VALUES (NULL);
    DELETE FROM "busy_clock" WHERE "n" < (SELECT MAX("n") FROM "busy_clock");
    INSERT INTO "busy_day" ("calendar_id", "day", "version")
    VALUES ({row}."calendar_id", {row}."start_ts" / 86400, (SELECT MAX("n") FROM "busy_clock"))
    ON CONFLICT ("calendar_id", "day") DO UPDATE SET "version" = excluded."version";
"""

_PG_BUMP = """
    INSERT INTO "busy_day" ("calendar_id", "day", "version")
    SELECT t."calendar_id", t."day", nextval('busy_clock')
    FROM (SELECT DISTINCT "calendar_id", "start_ts" / 86400 AS "day" FROM {rows}) AS t
    ON CONFLICT ("calendar_id", "day") DO UPDATE SET "version" = EXCLUDED."version";
"""

_PG_FUNCTION = f"""
CREATE FUNCTION "busy_day_bump"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN {_PG_BUMP.format(rows="new_rows")} END IF;
    IF TG_OP <> 'INSERT' THEN {_PG_BUMP.format(rows="old_rows")} END IF;
    RETURN NULL;
END $$
"""

_PG_TRIGGERS = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
}


def up(migrator, db):
    # No foreign key: a calendar's cascade deletes its blocks, whose triggers then write
    # here; rows of a deleted calendar are never joined again.
    db.execute_sql(
        'CREATE TABLE "busy_day" ("calendar_id" INTEGER NOT NULL, "day" INTEGER NOT NULL, '
        '"version" BIGINT NOT NULL, PRIMARY KEY ("calendar_id", "day"))'
    )
    if isinstance(db, SqliteDatabase):
        db.execute_sql('CREATE TABLE "busy_clock" ("n" INTEGER PRIMARY KEY AUTOINCREMENT)')
        for event, rows in (("insert", ("NEW",)), ("update", ("OLD", "NEW")), ("delete", ("OLD",))):
            body = "".join(_SQLITE_BUMP.format(row=row) for row in rows)
            db.execute_sql(
                f'CREATE TRIGGER "busy_block_{event}_day" AFTER {event.upper()} ON "busy_block" '
                f"BEGIN {body} END"
            )
        db.execute_sql(
            'INSERT INTO "busy_day" ("calendar_id", "day", "version") '
            'SELECT DISTINCT "calendar_id", "start_ts" / 86400, 0 FROM "busy_block"'
        )
    else:
        db.execute_sql('CREATE SEQUENCE "busy_clock"')
        db.execute_sql(_PG_FUNCTION)
        for event, referencing in _PG_TRIGGERS.items():
            db.execute_sql(
                f'CREATE TRIGGER "busy_block_{event}_day" AFTER {event.upper()} ON "busy_block" '
                f'{referencing} FOR EACH STATEMENT EXECUTE FUNCTION "busy_day_bump"()'
            )
        db.execute_sql(
            'INSERT INTO "busy_day" ("calendar_id", "day", "version") '
            'SELECT t."calendar_id", t."day", nextval(\'busy_clock\') FROM '
            '(SELECT DISTINCT "calendar_id", "start_ts" / 86400 AS "day" FROM "busy_block") AS t'
        )


def down(migrator, db):
    for event in ("insert", "update", "delete"):
        db.execute_sql(
            f'DROP TRIGGER "busy_block_{event}_day"'
            + ("" if isinstance(db, SqliteDatabase) else ' ON "busy_block"')
        )
    if isinstance(db, SqliteDatabase):
        db.execute_sql('DROP TABLE "busy_clock"')
    else:
        db.execute_sql('DROP FUNCTION "busy_day_bump"()')
        db.execute_sql('DROP SEQUENCE "busy_clock"')
    db.execute_sql('DROP TABLE "busy_day"')
