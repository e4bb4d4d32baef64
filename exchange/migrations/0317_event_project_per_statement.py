"""Project participant events once per INSERT of audit events instead of once per event: the
``greenledger_event_project`` trigger becomes a statement trigger with the statement's new rows as a transition
table, so a matching engine's batch (``greenledger_audit_records``, many events in one INSERT) resolves its
routes in one query, advances each concerned participant's counter once and writes its events in one INSERT.
And ``greenledger_event_concerned`` again, whose ``fills`` resolver probes the order's primary key per side of a
fill instead of hashing the whole order table (every order placed)."""

from django.db import migrations

from exchange.sql import sql_file

TRIGGER = """
DROP TRIGGER IF EXISTS greenledger_event_project ON exchange_auditevent;
CREATE TRIGGER greenledger_event_project AFTER INSERT ON exchange_auditevent
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION greenledger_event_project();
"""


class Migration(migrations.Migration):
    dependencies = [("exchange", "0316_balances_post_holds")]

    operations = [
        migrations.RunSQL(
            sql=[sql_file("greenledger_event_concerned"), sql_file("greenledger_event_project"), TRIGGER],
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
