"""Participant events written in the audit event's transaction: the projection trigger on the audit table.

``greenledger_event_concerned`` and ``greenledger_event_project`` live in ``exchange/sql``; the trigger
runs the latter after each audit event's INSERT (``exchange.events`` holds the routes it follows). Event
rows are never updated: a trigger refuses it (they are forgotten, deleted, after the retention).
"""

from django.db import migrations

from exchange.sql import sql_file

TRIGGER = """
CREATE TRIGGER greenledger_event_project AFTER INSERT ON exchange_auditevent
    FOR EACH ROW EXECUTE FUNCTION greenledger_event_project();
CREATE OR REPLACE FUNCTION greenledger_participantevent_no_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'greenledger: participant events are never updated' USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER participantevent_no_update BEFORE UPDATE ON exchange_participantevent
    FOR EACH ROW EXECUTE FUNCTION greenledger_participantevent_no_update();
"""

REVERSE = """
DROP TRIGGER IF EXISTS greenledger_event_project ON exchange_auditevent;
DROP TRIGGER IF EXISTS participantevent_no_update ON exchange_participantevent;
"""


class Migration(migrations.Migration):
    dependencies = [("exchange", "0160_events")]

    operations = [
        migrations.RunSQL(
            sql=[sql_file("greenledger_event_concerned"), sql_file("greenledger_event_project"), TRIGGER],
            reverse_sql=REVERSE,
        )
    ]
