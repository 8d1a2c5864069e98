"""Reads of lifetime value: fits, per-contact values and their distributions, workspace-scoped; every
figure is one aggregate query over `CustomerValue` (never per-row Python)."""

from __future__ import annotations

from django.db.models import Count, FloatField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from aicmo.models import Workspace

from . import rfm
from .models import CustomerValue, LifetimeFit

# CLV buckets in the fit's currency: [low, high), the last open-ended
CLV_EDGES = (0, 1, 10, 100, 1_000, 10_000, 100_000)


def fits_for(workspace: Workspace | int) -> QuerySet[LifetimeFit]:
    return LifetimeFit.objects.for_workspace(workspace).select_related("job")


def latest_fit(workspace: Workspace | int) -> LifetimeFit | None:
    """The most recent fit that finished (the one whose values `CustomerValue` holds)."""
    return fits_for(workspace).filter(finished_at__isnull=False).order_by("-finished_at", "-id").first()


def customer_values(workspace: Workspace | int) -> QuerySet[CustomerValue]:
    return CustomerValue.objects.for_workspace(workspace)


def _buckets(field: str, edges: tuple, label) -> dict:
    aggregates = {}
    for i, low in enumerate(edges):
        high = edges[i + 1] if i + 1 < len(edges) else None
        condition = Q(**{f"{field}__gte": low}) & (Q(**{f"{field}__lt": high}) if high is not None else Q())
        aggregates[label(low, high)] = Count("id", filter=condition)
    return aggregates


def value_distribution(workspace: Workspace | int) -> dict:
    """``{"clv": [{"low", "high", "customers"}], "not_predicted": n, "p_alive": [{"low", "high",
    "customers"}], "segments": [{"segment", "customers", "revenue", "clv"}], "rfm_grid": [{"r_score",
    "f_score", "customers"}]}`` over the latest values. Money as strings with 2 decimals; ``high`` null
    for the open-ended top bucket; p_alive in tenths."""
    values = customer_values(workspace)
    clv_labels, p_labels = [], []

    def clv_label(low, high):
        clv_labels.append((low, high))
        return f"clv_{len(clv_labels)}"

    def p_label(low, high):
        p_labels.append((low, high))
        return f"p_{len(p_labels)}"

    tenths = tuple(i / 10 for i in range(10))
    counts = values.aggregate(
        **_buckets("clv", CLV_EDGES, clv_label),
        **_buckets("p_alive", tenths, p_label),
        not_predicted=Count("id", filter=Q(clv__isnull=True)),
    )
    segments = {
        row["segment"]: row
        for row in values.values("segment")
        .annotate(
            customers=Count("id"),
            revenue_sum=Sum("revenue"),
            clv_sum=Coalesce(Sum("clv"), Value(0.0), output_field=FloatField()),
        )
        .order_by()
    }
    grid = {
        (row["r_score"], row["f_score"]): row["n"]
        for row in values.values("r_score", "f_score").annotate(n=Count("id")).order_by()
    }
    return {
        "clv": [
            {"low": low, "high": high, "customers": counts[f"clv_{i}"]}
            for i, (low, high) in enumerate(clv_labels, start=1)
        ],
        "not_predicted": counts["not_predicted"],
        # the top tenth includes 1.0 (P(alive) of a customer without repeat purchases)
        "p_alive": [
            {
                "low": low,
                "high": high if high is not None else 1.0,
                "customers": counts[f"p_{i}"],
            }
            for i, (low, high) in enumerate(p_labels, start=1)
        ],
        "segments": [
            {
                "segment": name,
                "customers": segments[name]["customers"] if name in segments else 0,
                "revenue": f"{segments[name]['revenue_sum']:.2f}" if name in segments else "0.00",
                "clv": f"{segments[name]['clv_sum']:.2f}" if name in segments else "0.00",
            }
            for name in rfm.SEGMENTS
        ],
        "rfm_grid": [
            {"r_score": r, "f_score": f, "customers": grid.get((r, f), 0)}
            for r in range(5, 0, -1)
            for f in range(1, 6)
        ],
    }
