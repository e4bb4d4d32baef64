"""The event resolver learns listing picks (fills at the listing's price), auction results and payload keys
stated as null; the routes themselves are data (``exchange.events.ROUTES``, synced after migrate)."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0210_settlement_watermark")]

    operations = [migrations.RunSQL(sql=sql_file("greenledger_event_concerned"), reverse_sql=migrations.RunSQL.noop)]
