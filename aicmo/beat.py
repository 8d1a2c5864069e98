"""Periodic tasks kept in django-celery-beat's tables, created by data migrations.

``interval_schedule(name, task, every=6, period="hours")`` returns a reversible ``RunPython`` that creates
(or updates) the ``PeriodicTask`` row ``name`` running ``task`` every ``every`` ``period`` (a
django-celery-beat period: days, hours, minutes, seconds) and deletes it when migrated backwards. The
migration must depend on ``("django_celery_beat", "0019_alter_periodictasks_options")`` or later.
"""

from __future__ import annotations

from django.db import migrations


def interval_schedule(name: str, task: str, *, every: int, period: str) -> migrations.RunPython:
    def create(apps, schema_editor):
        interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
        task_model = apps.get_model("django_celery_beat", "PeriodicTask")
        interval, _ = interval_model.objects.get_or_create(every=every, period=period)
        task_model.objects.update_or_create(
            name=name, defaults={"task": task, "interval": interval, "enabled": True}
        )

    def remove(apps, schema_editor):
        apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=name).delete()

    return migrations.RunPython(create, remove)
