"""Beat schedule for moving the Redis-buffered per-minute call counters to HealthMinute: every minute."""

from django.db import migrations

TASK_NAME = "gateway: flush call health"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={"task": "gateway.tasks.health_flush_task", "interval": interval, "enabled": True},
    )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("gateway", "0002_selfcheck_schedule")]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
