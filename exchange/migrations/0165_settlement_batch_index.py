"""The settlement link table gets its batch index; the participant events' settlement resolver reads it."""


import django.db.models.deletion
from django.db import migrations, models

from exchange.sql import sql_file


class Migration(migrations.Migration):

    dependencies = [
        ("exchange", "0164_participantevent_fewer_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name='tradesettlement',
            name='batch',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='trade_settlements', to='exchange.settlementbatch'),
        ),
        # The settlement resolver reads a batch's trades through the link table (and this index).
        migrations.RunSQL(sql=sql_file("greenledger_event_concerned"), reverse_sql=migrations.RunSQL.noop),
    ]
