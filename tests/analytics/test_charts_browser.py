"""Charts in a real Chromium: the vendored Chart.js draws the trend from the page's JSON block (no inline
script under the CSP), with the anomaly marker on the spike's day, and the tier chart on the scores page."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from analytics.models import DailyRollup
from tests.analytics.generated import make_campaigns

pytestmark = pytest.mark.browser


def test_trend_chart_draws_series_averages_and_anomaly(
    browser_page, browser_login, live_server, member_factory, workspace
):
    [campaign] = make_campaigns(workspace, 1)
    first = date(2026, 1, 1)
    DailyRollup.objects.bulk_create(
        [
            DailyRollup(
                workspace=workspace, campaign=campaign, channel="email", day=first + timedelta(days=i),
                sent=100, unique_clicks=10 + (40 if i == 20 else i % 3),
            )
            for i in range(40)
        ]
    )  # fmt: skip
    errors = []
    browser_page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    browser_login(browser_page, live_server, member_factory(workspace, "viewer"), workspace)
    browser_page.goto(
        live_server.url + "/analytics/trends/?metric=unique_clicks&date_from=2026-01-01&date_to=2026-02-09"
    )
    browser_page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.querySelector('canvas[data-chart]'))"
    )
    drawn = browser_page.evaluate(
        """() => {
            const chart = Chart.getChart(document.querySelector('canvas[data-chart]'));
            return {
                labels: chart.data.labels.length,
                datasets: chart.data.datasets.map(d => d.label),
                markers: chart.data.datasets[3].data.map((v, i) => v === null ? null : chart.data.labels[i]).filter(Boolean),
                width: chart.width,
            };
        }"""
    )
    assert drawn["labels"] == 40 and drawn["datasets"][1:] == ["7-day average", "28-day average", "Anomaly"]
    assert drawn["markers"] == ["2026-01-21"] and drawn["width"] > 100
    assert not errors, errors


def test_scores_tier_chart_draws(browser_page, browser_login, live_server, member_factory, workspace):
    browser_login(browser_page, live_server, member_factory(workspace, "admin"), workspace)
    browser_page.goto(live_server.url + "/analytics/scores/")
    browser_page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.querySelector('canvas[data-chart]'))"
    )
    labels = browser_page.evaluate(
        "() => Chart.getChart(document.querySelector('canvas[data-chart]')).data.labels"
    )
    assert labels == ["High", "Medium", "Low", "Inactive", "Not scored"]
