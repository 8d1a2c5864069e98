"""``manage.py restore ARCHIVE --yes``: replace the database and media files with a backup."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from aicmo.backups import BackupError, backup_restore


class Command(BaseCommand):
    help = "Restore a backup made by `manage.py backup`. Stop web, workers and beat first."

    def add_arguments(self, parser):
        parser.add_argument("archive")
        parser.add_argument("--yes", action="store_true", help="confirm: the database contents are replaced")

    def handle(self, *args, **options):
        if not options["yes"]:
            raise CommandError("restore replaces the database contents; run again with --yes to confirm")
        try:
            manifest = backup_restore(archive=Path(options["archive"]))
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"restored backup of {manifest['created_at']} ({manifest['vendor']})")
        self.stdout.write("now run: manage.py migrate (a no-op unless the code is newer than the backup)")
