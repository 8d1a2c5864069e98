"""Beat schedule for the retention run (aicmo.retention): every 6 hours."""

from django.db import migrations

from aicmo.beat import interval_schedule


class Migration(migrations.Migration):
    dependencies = [("aicmo", "0004_workspace_admins_require_two_factor"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [
        interval_schedule(
            "aicmo: prune history (retention)", "aicmo.tasks.retention_run_task", every=6, period="hours"
        )
    ]
