import django.db.models.deletion
from django.db import migrations, models

# Four foreign keys each had an index of their own beside a composite or partial index that leads with the same
# column and answers the same lookups (audit_actor_idx, order_participant_idx, block_hold_idx, trade_day_idx);
# every insert into these tables wrote both. Only the indexes go: Django's AlterField would also drop and
# re-add each foreign key, revalidating every row of four of the largest tables.
REDUNDANT = [
    "exchange_auditevent_actor_participant_id_062a311d",
    "exchange_order_participant_id_bfb394fe",
    "exchange_serialblock_hold_id_71e528dc",
    "exchange_trade_asset_id_f940c04d",
]


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("exchange", "0314_transfer_try"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    [f'DROP INDEX IF EXISTS "{name}"' for name in REDUNDANT],
                    reverse_sql=[
                        'CREATE INDEX IF NOT EXISTS "exchange_auditevent_actor_participant_id_062a311d" '
                        'ON "exchange_auditevent" ("actor_participant_id")',
                        'CREATE INDEX IF NOT EXISTS "exchange_order_participant_id_bfb394fe" '
                        'ON "exchange_order" ("participant_id")',
                        'CREATE INDEX IF NOT EXISTS "exchange_serialblock_hold_id_71e528dc" '
                        'ON "exchange_serialblock" ("hold_id")',
                        'CREATE INDEX IF NOT EXISTS "exchange_trade_asset_id_f940c04d" '
                        'ON "exchange_trade" ("asset_id")',
                    ],
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="actor_participant",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.participant",
                    ),
                ),
                migrations.AlterField(
                    model_name="order",
                    name="participant",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="orders",
                        to="accounts.participant",
                    ),
                ),
                migrations.AlterField(
                    model_name="serialblock",
                    name="hold",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="blocks",
                        to="exchange.hold",
                    ),
                ),
                migrations.AlterField(
                    model_name="trade",
                    name="asset",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="trades",
                        to="exchange.asset",
                    ),
                ),
            ],
        )
    ]
