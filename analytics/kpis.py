"""Overview KPIs: the last 7 or 30 workspace-local days against the same number of days before them, each
KPI with its daily series (the sparkline), plus campaigns in flight and the period's top channels.

Read from `DailyRollup` only (the cost does not grow with raw events): four queries whatever the data.

- Period: ``days`` local days ending on ``date_to`` (default: today in the workspace's zone, so the
  current day counts as far as it is rolled up); the previous period is the ``days`` days just before.
- Counters (``sent``, ``unique_opens_human``, ``unique_clicks``, ``conversions``, ``revenue``) are summed
  over the period's daily rows. Daily unique counts are unique *that day*, so a period's unique opens or
  clicks count a delivery once per day it opened or clicked (campaign totals, which are exact over the
  campaign, are on the campaign pages).
- Rates (``ctr`` = unique clicks / delivered, ``ctor`` = unique clicks / unique human opens; delivered =
  sent − bounces, `analytics.metrics`) are recomputed from the period's summed counters, not averaged;
  the sparkline's daily rate uses that day's counters (null when undefined).
- ``change`` = (current − previous) / previous, null when previous is 0 or undefined (as in trends).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count
from django.utils import timezone

from aicmo.models import Workspace
from aicmo.timezones import workspace_zone_name
from publishing.models import Campaign, CampaignStatus

from . import metrics
from .models import COUNTER_FIELDS, DailyRollup
from .selectors import counter_sums, zero_counters

PERIODS = (7, 30)
KPIS = (
    ("sent", "Sent"),
    ("unique_opens_human", "Unique opens (human)"),
    ("unique_clicks", "Unique clicks"),
    ("conversions", "Conversions"),
    ("revenue", "Revenue"),
    ("ctr", "CTR"),
    ("ctor", "CTOR"),
)
RATES = ("ctr", "ctor")
IN_FLIGHT = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED)
TOP_CHANNELS = 5


def kpi_value(counters: dict, key: str):
    """A KPI of summed counters: a rate (float or None), revenue as Decimal, a counter as int."""
    if key in RATES:
        return metrics.figures(counters)[key]
    if key == "revenue":
        return Decimal(counters["revenue"])
    return int(counters[key])


def change(current, previous) -> float | None:
    if current is None or previous is None or not previous:
        return None
    return float(current - previous) / float(previous)


def _add(total: dict, row: dict) -> None:
    for f in COUNTER_FIELDS:
        total[f] += row[f]


def _money(value):
    return f"{value:.2f}" if isinstance(value, Decimal) else value


def overview_kpis(workspace: Workspace | int, *, days: int = 7, date_to: date | None = None) -> dict:
    """``{days, date_from, date_to, previous_from, previous_to, kpis: [{key, label, current, previous,
    change, series: [value per day of the period]}], daily: [{day, <kpi>: value}], campaigns_in_flight,
    campaigns_active, top_channels: [{channel, sent, unique_opens_human, unique_clicks, conversions,
    revenue, ctr, ctor}]}``. Money as strings with 2 decimals, rates as floats or null, days ISO dates.

    ``campaigns_in_flight``: scheduled, sending or paused now; ``campaigns_active``: campaigns with a rolled
    up row in the period. Top channels: by unique clicks, then sent, over the period. Four queries (five given a workspace id). ``ValueError`` for a
    period other than 7 or 30 days."""
    if days not in PERIODS:
        raise ValueError(f"The period is one of {PERIODS} days.")
    last = date_to or timezone.localtime(timezone.now(), ZoneInfo(workspace_zone_name(workspace))).date()
    first = last - timedelta(days=days - 1)
    prev_first, prev_last = first - timedelta(days=days), first - timedelta(days=1)
    rollups = DailyRollup.objects.for_workspace(workspace)
    by_day = {
        r.pop("day"): r
        for r in rollups.filter(day__gte=prev_first, day__lte=last)
        .values("day")
        .annotate(**counter_sums())
        .order_by()
    }
    current, previous = zero_counters(), zero_counters()
    period_days = [first + timedelta(days=i) for i in range(days)]
    for day, row in by_day.items():
        _add(current if day >= first else previous, row)
    daily = []
    for day in period_days:
        counters = by_day.get(day, zero_counters())
        daily.append({"day": day.isoformat(), **{k: _money(kpi_value(counters, k)) for k, _ in KPIS}})
    kpis = []
    for key, label in KPIS:
        now, before = kpi_value(current, key), kpi_value(previous, key)
        kpis.append(
            {
                "key": key,
                "label": label,
                "current": _money(now),
                "previous": _money(before),
                "change": change(now, before),
                "series": [d[key] for d in daily],
            }
        )
    channels = []
    for row in (
        rollups.filter(day__gte=first, day__lte=last).values("channel").annotate(**counter_sums()).order_by()
    ):
        channels.append(
            {
                "channel": row["channel"],
                **{k: _money(kpi_value(row, k)) for k, _ in KPIS},
            }
        )
    channels.sort(key=lambda r: (-r["unique_clicks"], -r["sent"], r["channel"]))
    return {
        "days": days,
        "date_from": first.isoformat(),
        "date_to": last.isoformat(),
        "previous_from": prev_first.isoformat(),
        "previous_to": prev_last.isoformat(),
        "kpis": kpis,
        "daily": daily,
        "campaigns_in_flight": Campaign.objects.for_workspace(workspace).filter(status__in=IN_FLIGHT).count(),
        "campaigns_active": rollups.filter(day__gte=first, day__lte=last).aggregate(
            n=Count("campaign_id", distinct=True)
        )["n"],
        "top_channels": channels[:TOP_CHANNELS],
    }


def _number(value):
    """A chart point: money strings become floats (the table beside shows the exact string)."""
    return float(value) if isinstance(value, str) else value


def sparklines(period: dict) -> list[dict]:
    """Per KPI of `overview_kpis`: ``{id, kpi, change_percent, chart}``, the chart a sparkline spec for
    ``analytics/charts.js`` (its data the KPI's daily series, oldest day first)."""
    return [
        {
            "id": f"spark-{k['key']}",
            "kpi": k,
            "change_percent": None if k["change"] is None else k["change"] * 100,
            "chart": {
                "type": "line",
                "sparkline": True,
                "percent": k["key"] in RATES,
                "labels": [d["day"] for d in period["daily"]],
                "series": [{"label": k["label"], "data": [_number(v) for v in k["series"]]}],
            },
        }
        for k in period["kpis"]
    ]
