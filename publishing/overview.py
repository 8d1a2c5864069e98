"""publishing's part of the home overview (aicmo/overview.py): the campaign count with its 7-day change, and
the "send a first campaign" getting-started step, done once a campaign of the workspace has sent."""

from __future__ import annotations

from django.urls import reverse

from aicmo.overview import Figure, Step, figure_for

from .models import Campaign, CampaignStatus


def figures(workspace, since) -> list[Figure]:
    campaigns = Campaign.objects.for_workspace(workspace)
    return [figure_for(campaigns, since, label="Campaigns", url=reverse("publishing:index"), order=40)]


def steps(workspace) -> list[Step]:
    sent = (
        Campaign.objects.for_workspace(workspace)
        .filter(status__in=(CampaignStatus.SENDING, CampaignStatus.PAUSED, CampaignStatus.SENT))
        .exists()
    )
    return [
        Step(
            label="Send a first campaign",
            done=sent,
            url=reverse("publishing:index"),
            hint="Write an email, pick a segment or a list, and send it (or schedule it).",
            order=40,
        )
    ]
