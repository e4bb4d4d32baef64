"""Settlement's watermark: each batch records ``settled_before``, the trading day before which every trade is
settled, and a trade of an earlier day is refused (``greenledger_trade_after_watermark``), so the next run
reads the trades of the days from there on instead of anti-joining the whole trade history."""

from django.db import migrations, models

from exchange.sql import sql_file

FORWARD = [
    sql_file("greenledger_trade_after_watermark"),
    "CREATE TRIGGER exchange_trade_after_watermark AFTER INSERT ON exchange_trade "
    "REFERENCING NEW TABLE AS new_trades "
    "FOR EACH STATEMENT EXECUTE FUNCTION greenledger_trade_after_watermark()",
]

BACKWARD = [
    "DROP TRIGGER IF EXISTS exchange_trade_after_watermark ON exchange_trade",
    "DROP FUNCTION IF EXISTS greenledger_trade_after_watermark()",
]


class Migration(migrations.Migration):
    dependencies = [("exchange", "0200_book_writer")]

    operations = [
        migrations.AddField(
            model_name="settlementbatch",
            name="settled_before",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.RunSQL(sql=FORWARD, reverse_sql=BACKWARD),
    ]
