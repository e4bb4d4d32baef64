"""The event resolver reads a route's own ``ints`` (payload keys that come out as JSON numbers), so a route
such as ``pledge.amended`` states its amendment id and number as numbers without widening the shared list."""

from django.db import migrations

from exchange.sql import sql_file


class Migration(migrations.Migration):
    dependencies = [("exchange", "0301_rulebook_sale_cash_buys_same_day")]

    operations = [migrations.RunSQL(sql=sql_file("greenledger_event_concerned"), reverse_sql=migrations.RunSQL.noop)]
