"""The market's scheduled jobs (China time, weekdays): session closes, the daily close, settlement."""

from django.db import migrations

# name, task, minute, hour, description
SCHEDULES = [
    ("session-close", "exchange.orders_cancel_at_close", "30", "11", "Cancel open orders at the morning close."),
    ("session-close-afternoon", "exchange.orders_cancel_at_close", "0", "15", "Cancel open orders at the close."),
    ("day-close", "exchange.day_close", "5", "15", "Record each listed asset's daily close."),
    ("settlement", "exchange.settlement_run", "30", "15", "Settle the day's trades, delivery versus payment."),
]


def create(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minute, hour, description in SCHEDULES:
        if task_model.objects.filter(name=name).exists():
            continue
        crontab, _ = crontab_model.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="1-5", day_of_month="*", month_of_year="*", timezone="Asia/Shanghai"
        )
        task_model.objects.create(name=name, task=task, crontab=crontab, description=description, enabled=True)


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("exchange", "0005_trading_invariants")]

    operations = [migrations.RunPython(create, remove)]
