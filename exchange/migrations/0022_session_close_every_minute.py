"""Session closes per asset: the close job runs every minute, every day, and cancels the open orders whose
own session has ended (each asset's MarketRules.sessions and trading_days), in place of the fixed 11:30 and
15:00 weekday runs, which missed every other configuration (the demo's 00:00-24:00, a 12:00 close)."""

from django.db import migrations

NAME, OLD_AFTERNOON = "session-close", "session-close-afternoon"
TASK = "exchange.orders_cancel_at_close"
DESCRIPTION = "Cancel the open orders whose session has ended (each asset's own sessions)."
TZ = "Asia/Shanghai"


def _crontab(apps, minute, hour, day_of_week):
    crontab, _ = apps.get_model("django_celery_beat", "CrontabSchedule").objects.get_or_create(
        minute=minute, hour=hour, day_of_week=day_of_week, day_of_month="*", month_of_year="*", timezone=TZ
    )
    return crontab


def every_minute(apps, schema_editor):
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab = _crontab(apps, "*", "*", "*")
    task_model.objects.filter(name=OLD_AFTERNOON).delete()
    # Staff may have disabled the job; that choice stays.
    updated = task_model.objects.filter(name=NAME).update(task=TASK, crontab=crontab, description=DESCRIPTION)
    if not updated:
        task_model.objects.create(name=NAME, task=TASK, crontab=crontab, description=DESCRIPTION, enabled=True)


def at_fixed_times(apps, schema_editor):
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    task_model.objects.filter(name=NAME).update(
        crontab=_crontab(apps, "30", "11", "1-5"), description="Cancel open orders at the morning close."
    )
    if not task_model.objects.filter(name=OLD_AFTERNOON).exists():
        task_model.objects.create(
            name=OLD_AFTERNOON,
            task=TASK,
            crontab=_crontab(apps, "0", "15", "1-5"),
            description="Cancel open orders at the close.",
            enabled=True,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0021_approval_idempotency_key"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(every_minute, at_fixed_times)]
