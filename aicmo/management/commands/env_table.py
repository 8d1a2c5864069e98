"""``manage.py env_table [--write]``: print (or write into docs/OPERATIONS.md) the environment variable table."""

from django.core.management.base import BaseCommand

from aicmo.envdoc import DOC, doc_with_table, render_table


class Command(BaseCommand):
    help = "Print the environment variable table generated from the settings; --write updates docs/OPERATIONS.md."

    def add_arguments(self, parser):
        parser.add_argument("--write", action="store_true")

    def handle(self, *args, **options):
        if options["write"]:
            DOC.write_text(doc_with_table(DOC.read_text()))
            self.stdout.write(f"updated {DOC}")
        else:
            self.stdout.write(render_table())
