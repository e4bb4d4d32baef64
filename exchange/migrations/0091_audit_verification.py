"""Where the last intact audit verification ended, so the next one can resume there (append-only)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0090_trade_settlement"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditVerification",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("through_number", models.BigIntegerField(help_text="The last checkpoint this run verified.")),
                (
                    "through_hash",
                    models.CharField(help_text="That checkpoint's hash when it was verified.", max_length=64),
                ),
                ("events", models.BigIntegerField(help_text="Events this run verified.")),
                (
                    "full",
                    models.BooleanField(
                        help_text="Whether the run verified the whole trail or resumed after an earlier run."
                    ),
                ),
                ("verified_at", models.DateTimeField()),
            ],
            options={
                "ordering": ["-id"],
            },
        ),
        migrations.RunSQL(
            sql=[
                "CREATE TRIGGER exchange_auditverification_append_only BEFORE UPDATE OR DELETE "
                "ON exchange_auditverification FOR EACH ROW EXECUTE FUNCTION greenledger_refuse_change()"
            ],
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
