"""Reads for reports, all from the rollup tables (their cost does not grow with raw events) and all
workspace-scoped. Counters of a campaign are the sum of its channel × variant rows: a delivery belongs to
one campaign, one channel and one variant, so even the unique counts add up exactly across those rows."""

from __future__ import annotations

from datetime import date

from django.db.models import DecimalField, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from aicmo.models import Workspace
from publishing.models import Campaign

from . import metrics
from .models import COUNTER_FIELDS, CampaignRollup, DailyRollup, ScoreHistory

MONEY = ("revenue", "spend")
VARIANT_TESTS = ("open_rate", "ctr", "cvr")


def _sums() -> dict:
    return {
        f: Coalesce(
            Sum(f),
            Value(0, output_field=DecimalField(max_digits=16, decimal_places=2)) if f in MONEY else Value(0),
        )
        for f in COUNTER_FIELDS
    }


def counter_sums() -> dict:
    """Column → ``SUM`` aggregate of every rollup counter (0, not null, over no rows)."""
    return _sums()


def zero_counters() -> dict:
    return {f: 0 for f in COUNTER_FIELDS}


def _row(counters: dict) -> dict:
    """Counters plus figures, money as strings with 2 decimals (JSON and CSV alike)."""
    out = {f: counters[f] for f in COUNTER_FIELDS}
    for f in MONEY:
        out[f] = f"{counters[f]:.2f}"
    out["delivery_receipts"] = out.pop("delivered")
    out.update(metrics.figures(counters))
    return out


def campaigns_for(workspace: Workspace | int) -> QuerySet[Campaign]:
    return Campaign.objects.for_workspace(workspace)


def campaign_counters(workspace: Workspace | int, campaign_ids: list[int]) -> dict[int, dict]:
    """campaign id → all-time counters (zeros for a campaign with nothing rolled up yet)."""
    found = {
        row.pop("campaign_id"): row
        for row in CampaignRollup.objects.for_workspace(workspace)
        .filter(campaign_id__in=campaign_ids)
        .values("campaign_id")
        .annotate(**_sums())
        .order_by()
    }
    return {cid: found.get(cid, zero_counters()) for cid in campaign_ids}


def campaign_rows(workspace: Workspace | int, campaigns: list[Campaign]) -> list[dict]:
    """One report row per campaign (the overview table and the comparison table)."""
    counters = campaign_counters(workspace, [c.pk for c in campaigns])
    return [
        {
            "id": c.pk,
            "name": c.name,
            "channel": c.channel,
            "status": c.status,
            **_row(counters[c.pk]),
        }
        for c in campaigns
    ]


def campaign_report(workspace: Workspace | int, campaign: Campaign) -> dict:
    """Totals, per-variant rows with a significance test of each variant against the first one, and the
    daily series (``unique_*`` of a day are unique that day)."""
    variants = list(
        CampaignRollup.objects.for_workspace(workspace)
        .filter(campaign=campaign)
        .values("variant")
        .annotate(**_sums())
        .order_by("variant")
    )
    totals = {f: sum((v[f] for v in variants), 0) for f in COUNTER_FIELDS}  # variants are disjoint
    variant_rows = []
    for v in variants:
        row = {"variant": v["variant"], **_row(v)}
        row["tests"] = {
            m: metrics.two_proportion_test(m, variants[0], v).as_dict()
            if variant_rows
            else metrics.baseline(m)
            for m in VARIANT_TESTS
        }
        variant_rows.append(row)
    return {
        "campaign_id": campaign.pk,
        "name": campaign.name,
        "channel": campaign.channel,
        "status": campaign.status,
        "totals": _row(totals),
        "variants": variant_rows,
        "daily": daily_series(workspace, campaign),
    }


def daily_series(
    workspace: Workspace | int, campaign: Campaign, first: date | None = None, last: date | None = None
):
    rows = DailyRollup.objects.for_workspace(workspace).filter(campaign=campaign)
    if first:
        rows = rows.filter(day__gte=first)
    if last:
        rows = rows.filter(day__lte=last)
    return [
        {"day": r.pop("day").isoformat(), **_row(r)}
        for r in rows.values("day").annotate(**_sums()).order_by("day")
    ]


def campaign_comparison(workspace: Workspace | int, campaigns: list[Campaign], metric: str) -> dict:
    """Side-by-side rows and, for each campaign after the first, a two-proportion test against the first."""
    counters = campaign_counters(workspace, [c.pk for c in campaigns])
    rows = campaign_rows(workspace, campaigns)
    baseline = counters[campaigns[0].pk] if campaigns else None
    for i, (campaign, row) in enumerate(zip(campaigns, rows, strict=True)):
        row["test"] = (
            metrics.two_proportion_test(metric, baseline, counters[campaign.pk]).as_dict()
            if i
            else metrics.baseline(metric)
        )
    return {"metric": metric, "baseline": campaigns[0].pk if campaigns else None, "campaigns": rows}


RANKABLE = ("open_rate", "ctr", "ctor", "cvr", "roas", "roi", "revenue", "conversions")


def channel_ranking(workspace: Workspace | int, metric: str = "ctr") -> list[dict]:
    """Channels ordered by ``metric`` (highest first, undefined last), all-time totals from CampaignRollup."""
    rows = []
    for row in (
        CampaignRollup.objects.for_workspace(workspace)
        .values("channel")
        .annotate(**_sums())
        .order_by("channel")
    ):
        channel = row.pop("channel")
        rows.append({"channel": channel, **_row(row)})

    def key(r):
        value = r[metric]
        value = float(value) if value is not None else None
        return (value is None, -(value or 0), r["channel"])

    rows.sort(key=key)
    for rank, r in enumerate(rows, start=1):
        r["rank"] = rank
    return rows


def overview(workspace: Workspace | int) -> dict:
    """Workspace totals over every campaign (one aggregate over CampaignRollup)."""
    totals = CampaignRollup.objects.for_workspace(workspace).aggregate(**_sums())
    campaigns = CampaignRollup.objects.for_workspace(workspace).values("campaign_id").distinct().count()
    return {"campaigns": campaigns, **_row(totals)}


def score_history(workspace, contact_id: int) -> list[dict]:
    """[{day, score, tier}] of one contact, oldest first: the local days its score or tier changed."""
    return list(
        ScoreHistory.objects.for_workspace(workspace)
        .filter(contact_id=contact_id)
        .order_by("day")
        .values("day", "score", "tier")
    )
