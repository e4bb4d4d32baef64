"""The compliance deadline job: daily after midnight China time, it assesses every year whose deadline
has passed (and does nothing for a year it has assessed already)."""

from django.db import migrations

NAME = "compliance-deadlines"


def create(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    if task_model.objects.filter(name=NAME).exists():
        return
    crontab, _ = crontab_model.objects.get_or_create(
        minute="30", hour="0", day_of_week="*", day_of_month="*", month_of_year="*", timezone="Asia/Shanghai"
    )
    task_model.objects.create(
        name=NAME,
        task="exchange.compliance_deadlines",
        crontab=crontab,
        enabled=True,
        description="Assess the obligations of every compliance year past its deadline: status, shortfall, penalty range.",
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0008_compliance_invariants"),
        ("exchange", "0003_schedules"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
