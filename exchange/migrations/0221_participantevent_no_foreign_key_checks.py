"""Participant events and their counters keep no database foreign key, and the events no index of their own on
the participant (the unique (participant, number) leads with it): each was one more write or check per event
of every transfer (docs/performance.md, Events)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("exchange", "0220_event_routes_for_agreements_freezes_non_trade"),
    ]

    operations = [
        migrations.AlterField(
            model_name="participantevent",
            name="participant",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="events",
                to="accounts.participant",
            ),
        ),
        migrations.AlterField(
            model_name="participanteventcounter",
            name="participant",
            field=models.OneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                primary_key=True,
                related_name="+",
                serialize=False,
                to="accounts.participant",
            ),
        ),
    ]
