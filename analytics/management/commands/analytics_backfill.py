"""manage.py analytics_backfill --from YYYY-MM-DD --to YYYY-MM-DD [--workspace SLUG|ID]"""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from aicmo.models import Workspace
from aicmo.tenancy import workspace_lookup
from analytics.rollups import first_rebuildable_day, rollup_backfill


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = "Rebuild analytics rollups exactly from raw events for an inclusive range of workspace-local days."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="first", required=True, help="first local day, YYYY-MM-DD")
        parser.add_argument("--to", dest="last", required=True, help="last local day, YYYY-MM-DD")
        parser.add_argument("--workspace", help="workspace slug or id (default: every workspace)")

    def handle(self, *args, **opts):
        first, last = _day(opts["first"]), _day(opts["last"])
        if last < first:
            raise CommandError("--to is before --from.")
        workspaces = Workspace.objects.order_by("id")
        if opts["workspace"]:
            workspaces = workspaces.filter(**workspace_lookup(opts["workspace"]))
            if not workspaces.exists():
                raise CommandError(f"No workspace {opts['workspace']!r}.")
        for ws in workspaces:
            oldest = first_rebuildable_day(ws.pk)
            if oldest is not None and first < oldest:
                self.stdout.write(
                    f"{ws.slug}: days before {oldest} kept as they are (their raw events are past "
                    "AICMO_RETENTION_EVENTS_DAYS and may be pruned)"
                )
            result = rollup_backfill(workspace_id=ws.pk, first=first, last=last)
            self.stdout.write(
                f"{ws.slug}: {result.days} days, {result.rows} daily rows, {result.campaigns} campaigns"
            )
