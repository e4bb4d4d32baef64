"""Pending transfers whose delay has passed are carried out every minute."""

from django.db import migrations


def create(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    if not task_model.objects.filter(name="pending-transfers").exists():
        interval, _ = interval_model.objects.get_or_create(every=60, period="seconds")
        task_model.objects.create(
            name="pending-transfers",
            task="exchange.pending_transfers_execute",
            interval=interval,
            description="Carry out transfers to untrusted accounts once their delay has passed.",
            enabled=True,
        )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name="pending-transfers").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0014_trusted_accounts"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
