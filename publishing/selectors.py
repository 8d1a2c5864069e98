"""Publishing reads, workspace-scoped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform

from aicmo.models import Workspace

from .models import (
    Campaign,
    CampaignStatus,
    Content,
    Delivery,
    DeliveryStatus,
    EngagementEvent,
    EngagementKind,
    Sender,
    WebhookDelivery,
    WebhookEndpoint,
)


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


def email_image_assets(workspace: Workspace | int):
    """Media assets an email may show (`services.content.images_check`): the workspace's approved or
    published images and GIFs, newest first."""
    from media.models import AssetKind, MediaAsset

    from .services.content import USABLE_ASSET_STATUSES

    return (
        MediaAsset.objects.for_workspace(workspace)
        .filter(status__in=USABLE_ASSET_STATUSES, kind__in=(AssetKind.IMAGE, AssetKind.GIF))
        .order_by("-created_at", "-id")
    )


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


# ------------------------------------------------------------------------------------------- report


CENTS = Decimal("0.01")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass
class ReportRow:
    """Figures of one audience slice (the whole campaign, or one A/B variant).

    Counts are recipients (distinct deliveries) except ``clicks`` (every human click) and ``conversions``
    (every conversion event); ``revenue`` sums conversion values (Decimal, the workspace's currency).
    ``ctr`` = unique clicks / delivered, or / sent when the campaign has no ``delivered`` events yet
    (``ctr_base`` says which); ``ctor`` = unique clicks / unique human opens; both None when the base is 0.
    Machine opens/clicks (Apple MPP, scanners: see ``services.tracking.is_machine``) are counted apart.
    """

    label: str = "all"
    sent: int = 0
    failed: int = 0
    uncertain: int = 0
    skipped: int = 0
    delivered: int = 0
    opens_human: int = 0
    opens_machine: int = 0
    clicks: int = 0
    clicks_unique: int = 0
    clicks_machine: int = 0
    bounces_hard: int = 0
    bounces_soft: int = 0
    unsubscribes: int = 0
    complaints: int = 0
    replies: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal("0.00")

    @property
    def ctr_base(self) -> str:
        return "delivered" if self.delivered else "sent"

    @property
    def ctr(self) -> float | None:
        return _ratio(self.clicks_unique, self.delivered or self.sent)

    @property
    def ctor(self) -> float | None:
        return _ratio(self.clicks_unique, self.opens_human)

    def add(self, other: ReportRow) -> None:
        for name in self.__dataclass_fields__:
            if name != "label":
                setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class CampaignReport:
    """``total`` for the campaign, ``variants`` one row per A/B variant the deliveries carry (a single
    row labelled "all" while deliveries have no ``variant`` field), ``links`` as
    ``[{"url": str, "clicks": int, "unique": int}]`` (human clicks, most clicked first)."""

    total: ReportRow
    variants: list[ReportRow] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)


def _variant_field() -> str | None:
    """Deliveries carry an A/B ``variant`` once A/B tests exist; the report groups by it when present."""
    try:
        Delivery._meta.get_field("variant")
    except FieldDoesNotExist:
        return None
    return "variant"


def _distinct(kind: str | tuple[str, ...], **extra) -> Count:
    kinds = (kind,) if isinstance(kind, str) else kind
    return Count("delivery", filter=Q(kind__in=kinds, **extra), distinct=True)


def _grouped(qs: QuerySet, group: list[str], aggregates: dict) -> list[dict]:
    """One dict of ``aggregates`` per value of ``group`` (one query), or one dict overall without a group."""
    if not group:
        return [qs.aggregate(**aggregates)]
    return list(qs.values(*group).annotate(**aggregates).order_by(*group))


def campaign_report(campaign: Campaign) -> CampaignReport:
    """The campaign's figures from its deliveries and engagement events in three aggregate queries
    (deliveries by status, events by kind, human clicks by link), grouped by A/B variant when the
    deliveries have one. Workspace-scoped by the campaign's own workspace."""
    variant = _variant_field()
    ws = campaign.workspace_id
    delivery_group = [variant] if variant else []
    event_group = [f"delivery__{variant}"] if variant else []
    rows: dict[str, ReportRow] = {}

    def row(key) -> ReportRow:
        label = str(key) if variant and key not in (None, "") else "all"
        return rows.setdefault(label, ReportRow(label=label))

    statuses = {s: Count("pk", filter=Q(status=s)) for s in ("sent", "failed", "uncertain", "skipped")}
    for rec in _grouped(
        Delivery.objects.filter(campaign=campaign, workspace_id=ws), delivery_group, statuses
    ):
        r = row(rec.get(variant) if variant else None)
        for s in statuses:
            setattr(r, s, rec[s])

    human = {"machine": False}
    aggregates = {
        "delivered": _distinct(EngagementKind.DELIVERED),
        "opens_human": _distinct(EngagementKind.OPEN, **human),
        "opens_machine": _distinct(EngagementKind.OPEN, machine=True),
        "clicks": Count("pk", filter=Q(kind=EngagementKind.CLICK, machine=False)),
        "clicks_unique": _distinct(EngagementKind.CLICK, **human),
        "clicks_machine": _distinct(EngagementKind.CLICK, machine=True),
        "bounces_hard": _distinct(EngagementKind.BOUNCE_HARD),
        "bounces_soft": _distinct(EngagementKind.BOUNCE_SOFT),
        "unsubscribes": _distinct(EngagementKind.UNSUBSCRIBE),
        "complaints": _distinct(EngagementKind.COMPLAINT),
        "replies": _distinct(EngagementKind.REPLY),
        "conversions": Count("pk", filter=Q(kind=EngagementKind.CONVERSION)),
        "revenue": Sum("value", filter=Q(kind=EngagementKind.CONVERSION)),
    }
    events = EngagementEvent.objects.filter(campaign=campaign, workspace_id=ws)
    for rec in _grouped(events, event_group, aggregates):
        r = row(rec.get(event_group[0]) if variant else None)
        for name in aggregates:
            value = rec[name]
            setattr(r, name, value if value is not None else getattr(r, name))
        # SQLite sums decimals as floats/ints: back to cents like the column (max_digits=14, 2 places).
        r.revenue = Decimal(str(r.revenue)).quantize(CENTS)

    links = [
        {"url": rec["url"], "clicks": rec["clicks"], "unique": rec["unique"]}
        for rec in EngagementEvent.objects.filter(
            campaign=campaign, workspace_id=ws, kind=EngagementKind.CLICK, machine=False
        )
        .annotate(url=KeyTextTransform("url", "metadata"))
        .values("url")
        .annotate(clicks=Count("pk"), unique=Count("delivery", distinct=True))
        .order_by("-clicks", "url")
    ]
    total = ReportRow(label="all")
    for r in rows.values():
        total.add(r)
    variants = [rows[k] for k in sorted(rows)] or [ReportRow(label="all")]
    return CampaignReport(total=total, variants=variants, links=links)


def webhook_endpoints_for(workspace: Workspace | int) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.for_workspace(workspace).order_by("-created_at", "-id")


def webhook_deliveries_for(workspace: Workspace | int) -> QuerySet[WebhookDelivery]:
    """Newest first, with the endpoint's URL and description (one query per page)."""
    return (
        WebhookDelivery.objects.for_workspace(workspace)
        .select_related("endpoint")
        .order_by("-created_at", "-id")
    )
