"""The scheduled jobs, kept in the database (django-celery-beat) so staff can edit them in the admin."""

from django.db import migrations

SCHEDULES = [
    # name, task, interval seconds or crontab (minute, hour), description
    ("audit-seal", "exchange.audit_seal", 60, None, "Seal committed audit events into checkpoints."),
    ("reconcile-nightly", "exchange.reconcile", None, ("30", "2"), "Check the ledger invariants; log violations."),
]


def create(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds, cron, description in SCHEDULES:
        if task_model.objects.filter(name=name).exists():
            continue
        fields = {"task": task, "description": description, "enabled": True}
        if seconds:
            fields["interval"], _ = interval_model.objects.get_or_create(every=seconds, period="seconds")
        else:
            minute, hour = cron
            fields["crontab"], _ = crontab_model.objects.get_or_create(
                minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="Asia/Shanghai"
            )
        task_model.objects.create(name=name, **fields)


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0002_postgres_invariants"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
