"""The projection numbers the events of an event that concerns a few participants one counter at a time
(cheaper than the set-wise statement, which it keeps for events that concern many)."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0162_event_rows_resolver")]

    operations = [
        migrations.RunSQL(
            sql=[sql_file("greenledger_event_concerned"), sql_file("greenledger_event_project")],
            reverse_sql=migrations.RunSQL.noop,
        )
    ]
