"""analytics' part of the home overview (aicmo/overview.py): the KPIs of the last 7 days with their
sparklines and change against the 7 days before (`analytics.kpis`, rollups only)."""

from __future__ import annotations

from aicmo.overview import Panel

from . import kpis


def panels(workspace) -> list[Panel]:
    period = kpis.overview_kpis(workspace, days=7)
    return [
        Panel(
            template="analytics/_home_kpis.html",
            context={"period": period, "sparklines": kpis.sparklines(period)},
            order=50,
        )
    ]
