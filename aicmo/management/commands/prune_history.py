"""``manage.py prune_history``: run the retention functions now (beat runs them every 6 hours)."""

from django.core.management.base import BaseCommand

from aicmo.retention import retention_run


class Command(BaseCommand):
    help = "Delete history older than the AICMO_RETENTION_* ages (jobs, audit, provider health, ...)."

    def handle(self, *args, **options):
        results = retention_run()
        for path, count in results.items():
            self.stdout.write(f"{path}: {'FAILED (see log)' if count < 0 else f'{count} deleted'}")
        if any(count < 0 for count in results.values()):
            raise SystemExit(1)
