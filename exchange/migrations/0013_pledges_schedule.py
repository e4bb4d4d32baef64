"""The pledge job (China time, weekdays): after the day close and settlement, complete sales on
enforcement that have ended, value every registered pledge at the close, raise margin calls."""

from django.db import migrations

NAME = "pledge-valuation"
TASK = "exchange.pledges_value"


def create(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    if task_model.objects.filter(name=NAME).exists():
        return
    crontab, _ = crontab_model.objects.get_or_create(
        minute="40", hour="15", day_of_week="1-5", day_of_month="*", month_of_year="*", timezone="Asia/Shanghai"
    )
    task_model.objects.create(
        name=NAME,
        task=TASK,
        crontab=crontab,
        description="Value registered pledges at the day's close (after the 15:05 close and 15:30 settlement); "
        "raise margin calls; flag loans past maturity.",
        enabled=True,
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("exchange", "0012_pledges_invariants")]

    operations = [migrations.RunPython(create, remove)]
