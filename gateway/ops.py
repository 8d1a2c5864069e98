"""Fleet-wide provider status for operators (the core's /metrics and staff operations page call this
through ``settings.AICMO_PROVIDER_STATUS``; the core does not import the gateway)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Sum
from django.utils import timezone

from . import breaker
from .models import HealthMinute, ProviderAccount


def provider_status(*, window_minutes: int = 5) -> list[dict]:
    """One dict per enabled account of every workspace: ``account_id, workspace (slug), name, capability,
    adapter, breaker_state`` (closed/open/half_open), and over the last ``window_minutes`` (from the
    per-minute health rollups): ``calls``, ``success_ratio`` (0..1, None without calls),
    ``latency_ms_avg`` (None without calls). Two queries and one Redis round trip."""
    accounts = list(
        ProviderAccount.objects.filter(enabled=True)
        .select_related("workspace")
        .order_by("workspace__slug", "capability", "priority", "id")
    )
    since = (timezone.now() - timedelta(minutes=window_minutes)).replace(second=0, microsecond=0)
    totals = {
        r["account_id"]: r
        for r in HealthMinute.objects.filter(minute__gte=since, account__in=accounts)
        .values("account_id")
        .annotate(c=Sum("calls"), s=Sum("successes"), ls=Sum("latency_ms_sum"))
        .order_by()
    }
    states = breaker.statuses([a.pk for a in accounts])
    rows = []
    for a in accounts:
        t = totals.get(a.pk) or {}
        calls = t.get("c") or 0
        rows.append(
            {
                "account_id": a.pk,
                "workspace": a.workspace.slug,
                "name": a.name,
                "capability": a.capability,
                "adapter": a.adapter,
                "breaker_state": states[a.pk].state,
                "calls": calls,
                "success_ratio": (t.get("s") or 0) / calls if calls else None,
                "latency_ms_avg": (t.get("ls") or 0) / calls if calls else None,
            }
        )
    return rows


def prune_health() -> int:
    """Retention entry (``AICMO_RETENTION``): health rollups and self-check history older than
    ``AICMO_RETENTION_HEALTH_DAYS``."""
    from django.conf import settings

    from .health import health_prune

    return health_prune(keep_days=settings.AICMO_RETENTION_HEALTH_DAYS)
