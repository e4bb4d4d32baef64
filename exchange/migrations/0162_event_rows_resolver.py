"""The ``rows`` resolver of participant events (allocation rows, batch transfers): the function again."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0161_event_projection")]

    operations = [migrations.RunSQL(sql=sql_file("greenledger_event_concerned"), reverse_sql=migrations.RunSQL.noop)]
