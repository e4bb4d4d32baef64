"""The kept answers of keyed requests are forgotten after their retention period, daily at 03:10."""

from django.db import migrations

NAME = "idempotency-forget"


def create(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    if not task_model.objects.filter(name=NAME).exists():
        crontab, _ = crontab_model.objects.get_or_create(
            minute="10", hour="3", day_of_week="*", day_of_month="*", month_of_year="*", timezone="Asia/Shanghai"
        )
        task_model.objects.create(
            name=NAME,
            task="exchange.idempotent_requests_forget",
            crontab=crontab,
            description="Forget the answers kept for keyed requests after IDEMPOTENCY_RETENTION_DAYS.",
            enabled=True,
        )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0022_session_close_every_minute"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
