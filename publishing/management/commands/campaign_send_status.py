"""Operators watch a campaign's send from the shell: one status line now, or one per interval with
``--follow`` until the campaign stops sending (sent, failed, cancelled, paused, missed)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from aicmo.models import Workspace
from aicmo.tenancy import workspace_lookup
from publishing.models import Campaign, CampaignStatus
from publishing.services.sending import delivery_counts

WATCHED = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING)


def status_line(campaign: Campaign) -> str:
    """``<time> "<name>" #<id> <status>: <sent>/<total> sent, <n> failed, … [job <percent>%] [waiting: …]``.

    Counts are delivery rows by status (``services.sending.delivery_counts``); the total excludes
    nothing (skipped rows are part of the snapshot)."""
    counts = delivery_counts(campaign.pk)
    total = sum(counts.values())
    parts = [
        f"{timezone.now():%H:%M:%S}",
        f'"{campaign.name}" #{campaign.pk} {campaign.status}:',
        f"{counts['sent']}/{total} sent,",
        f"{counts['failed']} failed, {counts['uncertain']} uncertain, {counts['skipped']} skipped,",
        f"{counts['queued']} queued, {counts['sending']} in flight",
    ]
    if campaign.job_id:
        parts.append(f"(job {campaign.job.percent}%)")
    if campaign.status == CampaignStatus.SCHEDULED and campaign.scheduled_at:
        parts.append(f"scheduled for {campaign.scheduled_at:%Y-%m-%d %H:%M} UTC")
    if campaign.waiting_reason:
        parts.append(f"waiting: {campaign.waiting_reason}")
    return " ".join(parts)


class Command(BaseCommand):
    help = "Show a campaign's send progress (delivery counts, job, waiting reason); --follow to watch it."

    def add_arguments(self, parser):
        parser.add_argument("campaign", type=int, help="campaign id")
        parser.add_argument("--workspace", required=True, help="workspace slug or id owning the campaign")
        parser.add_argument("--follow", action="store_true", help="print a line every interval while sending")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between lines (--follow)")

    def handle(self, *args, campaign, workspace, follow, interval, **options):
        ws = Workspace.objects.filter(**workspace_lookup(workspace.strip())).first()
        if ws is None:
            raise CommandError(f"No workspace with slug or id {workspace!r}.")
        if interval <= 0:
            raise CommandError("--interval must be a positive number of seconds.")
        campaigns = Campaign.objects.for_workspace(ws).select_related("job")
        current = campaigns.filter(pk=campaign).first()
        if current is None:
            raise CommandError(f"No campaign #{campaign} in workspace {ws.slug}.")
        self.stdout.write(status_line(current))
        try:
            while follow and current.status in WATCHED:
                time.sleep(interval)
                current = campaigns.get(pk=campaign)
                self.stdout.write(status_line(current))
        except KeyboardInterrupt:
            pass
