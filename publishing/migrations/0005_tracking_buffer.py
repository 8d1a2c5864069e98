"""Buffered tracking: a unique key per buffered event (a re-drained record is not doubled), the beat entry
that drains the buffer every 5 seconds, and the one that applies mailto: unsubscribe requests every 5 minutes."""

from django.db import migrations, models

TASK_NAME = "publishing: flush buffered opens and clicks"
MAILTO_TASK_NAME = "publishing: apply mailto unsubscribe requests"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=5, period="seconds")
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={"task": "publishing.tasks.tracking_events_flush_task", "interval": interval, "enabled": True},
    )
    every_5_min, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.update_or_create(
        name=MAILTO_TASK_NAME,
        defaults={"task": "publishing.tasks.mailto_unsubscribes_task", "interval": every_5_min, "enabled": True},
    )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[TASK_NAME, MAILTO_TASK_NAME]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("publishing", "0004_approval_limits"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="engagementevent",
            name="key",
            field=models.CharField(blank=True, max_length=32, null=True, unique=True),
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
