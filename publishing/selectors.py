"""Publishing reads, workspace-scoped."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet

from aicmo.models import Workspace

from .models import Campaign, CampaignStatus, Content, Delivery, DeliveryStatus, EngagementEvent, Sender


def campaigns_for(workspace: Workspace | int) -> QuerySet[Campaign]:
    """Campaigns with their content and job joined and delivery counts per status annotated."""
    counts = {f"n_{s}": Count("deliveries", filter=Q(deliveries__status=s)) for s in DeliveryStatus.values}
    return (
        Campaign.objects.for_workspace(workspace)
        .select_related("content", "job")
        .annotate(**counts)
        .order_by("-created_at", "-id")
    )


def contents_for(workspace: Workspace | int) -> QuerySet[Content]:
    return (
        Content.objects.for_workspace(workspace).prefetch_related("versions").order_by("-updated_at", "-id")
    )


def senders_for(workspace: Workspace | int, *, verified_only: bool = False) -> QuerySet[Sender]:
    qs = Sender.objects.for_workspace(workspace)
    return qs.filter(verified_at__isnull=False) if verified_only else qs


def deliveries_for(campaign: Campaign) -> QuerySet[Delivery]:
    return Delivery.objects.filter(campaign=campaign, workspace_id=campaign.workspace_id).order_by("pk")


def events_for(workspace: Workspace | int) -> QuerySet[EngagementEvent]:
    return EngagementEvent.objects.for_workspace(workspace).order_by("-occurred_at", "-id")


def campaigns_to_wake(*, now: datetime, lease: timedelta) -> list[int]:
    """Sending campaigns nobody has claimed a delivery of for ``lease`` (a working chain renews its claims
    before every message), that have due queued deliveries, dead claims, or nothing left but finishing."""
    ids = []
    for campaign_id in Campaign.objects.filter(status=CampaignStatus.SENDING).values_list("pk", flat=True):
        rows = Delivery.objects.filter(campaign_id=campaign_id)
        if rows.filter(claimed_at__gte=now - lease).exists():
            continue
        due = rows.filter(status=DeliveryStatus.QUEUED).filter(
            Q(retry_at__isnull=True) | Q(retry_at__lte=now)
        )
        if due.exists() or not rows.filter(status=DeliveryStatus.QUEUED).exists():
            ids.append(campaign_id)
    return ids


# Campaigns whose audience still matters: once sent, cancelled or failed, the recipients are frozen rows.
_AUDIENCE_OPEN = (
    CampaignStatus.DRAFT,
    CampaignStatus.SCHEDULED,
    CampaignStatus.MISSED,
    CampaignStatus.SENDING,
    CampaignStatus.PAUSED,
)


def _campaigns_naming(workspace_id: int, keys: tuple[str, str], pk: int) -> list[str]:
    """``campaign “name”`` for every open campaign whose audience names `pk` under either key. The JSON is
    read in Python: open campaigns are few, and SQLite has no JSON containment lookup."""
    rows = Campaign.objects.for_workspace(workspace_id).filter(status__in=_AUDIENCE_OPEN)
    return [
        f"campaign “{name}”"
        for name, audience in rows.values_list("name", "audience")
        if any(pk in (audience or {}).get(key, []) for key in keys)
    ]


def campaigns_using_segment(segment) -> list[str]:
    """crm usage provider (``CRM_USAGE_PROVIDERS``): open campaigns targeting or excluding `segment`."""
    return _campaigns_naming(segment.workspace_id, ("segments", "exclude_segments"), segment.pk)


def campaigns_using_list(contact_list) -> list[str]:
    """crm usage provider (``CRM_USAGE_PROVIDERS``): open campaigns targeting or excluding `contact_list`."""
    return _campaigns_naming(contact_list.workspace_id, ("lists", "exclude_lists"), contact_list.pk)
