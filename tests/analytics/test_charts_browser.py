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


def _drawn(page) -> dict:
    """Every chart Chart.js drew on the page: canvas data-chart id -> {labels, data of each dataset, width}."""
    page.wait_for_function(
        "() => window.Chart && [...document.querySelectorAll('canvas[data-chart]')].every(c => Chart.getChart(c))"
    )
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('canvas[data-chart]')].map(c => {
            const chart = Chart.getChart(c);
            return [c.dataset.chart, {labels: chart.data.labels, data: chart.data.datasets.map(d => d.data),
                                      width: chart.width}];
        }))"""
    )


def _as_viewer_at_390px(page, browser_login, live_server, user, workspace) -> list[str]:
    """Log in at a phone's width; the returned list collects console errors and uncaught page errors."""
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_viewport_size({"width": 390, "height": 844})
    browser_login(page, live_server, user, workspace)
    return errors


def _no_overflow(page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_kpi_sparklines_and_campaign_daily_chart_draw_at_390px(
    browser_page, browser_login, live_server, member_factory, workspace
):
    from django.utils import timezone

    [campaign] = make_campaigns(workspace, 1)
    today = timezone.localdate()
    DailyRollup.objects.bulk_create(
        [
            DailyRollup(
                workspace=workspace, campaign=campaign, channel="email", day=today - timedelta(days=i),
                sent=100 + i, unique_opens_human=40, unique_clicks=10 + i, conversions=i % 3,
            )
            for i in range(14)
        ]
    )  # fmt: skip
    errors = _as_viewer_at_390px(
        browser_page, browser_login, live_server, member_factory(workspace, "viewer"), workspace
    )
    browser_page.goto(live_server.url + "/analytics/?days=7")
    charts = _drawn(browser_page)
    sparks = {k: v for k, v in charts.items() if k.startswith("spark-")}
    assert len(sparks) == 7 and all(len(v["labels"]) == 7 and v["width"] > 50 for v in sparks.values())
    assert sparks["spark-sent"]["data"][0] == [106, 105, 104, 103, 102, 101, 100]  # oldest day first
    assert _no_overflow(browser_page) <= 1

    browser_page.goto(live_server.url + "/")  # the home page shows the same 7-day sparklines
    home = {k: v for k, v in _drawn(browser_page).items() if k.startswith("spark-")}
    assert {k: (v["labels"], v["data"]) for k, v in home.items()} == {
        k: (v["labels"], v["data"]) for k, v in sparks.items()
    }
    assert all(v["width"] > 50 for v in home.values()) and _no_overflow(browser_page) <= 1

    browser_page.goto(live_server.url + f"/analytics/campaigns/{campaign.pk}/")
    daily = _drawn(browser_page)["daily-chart"]
    assert len(daily["labels"]) == 14 and daily["data"][1][-1] == 10  # today's unique clicks
    assert _no_overflow(browser_page) <= 1
    assert not errors, errors


def test_contact_360_score_chart_draws_at_390px(
    browser_page, browser_login, live_server, member_factory, workspace
):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from analytics.scoring import scores_refresh
    from publishing.models import EngagementEvent
    from tests.analytics.generated import event, make_contacts, make_deliveries

    [campaign] = make_campaigns(workspace, 1)
    [d] = make_deliveries(campaign, make_contacts(workspace, 1))
    first = datetime(2026, 6, 1, 12, tzinfo=ZoneInfo("UTC"))
    for i in range(3):
        EngagementEvent.objects.bulk_create([event(d, "click", first + timedelta(days=i))])
        scores_refresh(workspace_id=workspace.pk, now=first + timedelta(days=i, hours=1))
    errors = _as_viewer_at_390px(
        browser_page, browser_login, live_server, member_factory(workspace, "viewer"), workspace
    )
    browser_page.goto(live_server.url + f"/analytics/contacts/{d.contact_id}/")
    chart = _drawn(browser_page)["score-chart"]
    assert chart["labels"] == ["2026-06-01", "2026-06-02", "2026-06-03"] and chart["width"] > 100
    assert chart["data"][0][0] == 26 and chart["data"][0][0] < chart["data"][0][2]
    assert browser_page.locator("#timeline tbody tr").count() == 3
    assert _no_overflow(browser_page) <= 1
    assert not errors, errors


def test_asset_performance_chart_draws_at_390px(
    browser_page, browser_login, live_server, member_factory, workspace, settings, tmp_path
):
    from media import services as media_services
    from tests.media.factories import MediaAssetFactory

    settings.MEDIA_ROOT = str(tmp_path / "media")
    [campaign] = make_campaigns(workspace, 1)
    from analytics.models import CampaignRollup

    CampaignRollup.objects.create(
        workspace=workspace,
        campaign=campaign,
        channel="email",
        sent=200,
        unique_opens_human=80,
        unique_clicks=20,
    )
    asset = MediaAssetFactory(workspace=workspace, title="Hero image")
    media_services.asset_record_usage(
        asset=asset, ref=f"publishing.content:{campaign.content_id}", channel="email"
    )
    errors = _as_viewer_at_390px(
        browser_page, browser_login, live_server, member_factory(workspace, "viewer"), workspace
    )
    browser_page.goto(live_server.url + "/analytics/assets/")
    chart = _drawn(browser_page)["asset-chart"]
    assert chart["labels"] == ["Hero image"] and chart["data"][0] == [0.1] and chart["width"] > 100
    assert _no_overflow(browser_page) <= 1
    assert not errors, errors
