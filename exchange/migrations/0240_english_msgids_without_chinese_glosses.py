"""Model labels and help texts are English msgids only (their Chinese glosses moved to the catalogue's msgstr)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0230_blocks_take"),
    ]

    operations = [
        migrations.AlterField(
            model_name="allocationentry",
            name="deducted",
            field=models.BigIntegerField(
                default=0, help_text="Tonnes deducted for the previous year's unsurrendered shortfall."
            ),
        ),
        migrations.AlterField(
            model_name="nontradetransfer",
            name="legal_basis",
            field=models.CharField(
                choices=[
                    ("judicial_ruling", "Judicial ruling or enforcement"),
                    ("merger_split", "Merger or split of the holder"),
                    ("inheritance", "Inheritance"),
                    ("dissolution", "Dissolution or bankruptcy of the holder"),
                    ("other", "Other, as stated"),
                ],
                max_length=32,
                verbose_name="legal basis",
            ),
        ),
        migrations.AlterField(
            model_name="pledgeloan",
            name="kind",
            field=models.CharField(
                choices=[
                    ("units", "Units held"),
                    (
                        "future",
                        "Future CCER of a registered project (a pledge of the right to its issuance), not issued yet",
                    ),
                ],
                default="units",
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="verifiedemission",
            name="conservative",
            field=models.BooleanField(
                default=False,
                help_text="Determined by the authority conservatively, the entity having no verified emissions.",
            ),
        ),
    ]
