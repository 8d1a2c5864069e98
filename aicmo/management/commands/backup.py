"""``manage.py backup [--dir DIR]``: database + media files into one archive (aicmo.backups)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from aicmo.backups import BackupError, backup_create


class Command(BaseCommand):
    help = "Write aicmo-backup-<timestamp>.tar.gz (database dump + media files) into --dir."

    def add_arguments(self, parser):
        parser.add_argument("--dir", default="backups", help="directory for the archive (default: ./backups)")

    def handle(self, *args, **options):
        try:
            result = backup_create(directory=Path(options["dir"]))
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(str(result.path))
