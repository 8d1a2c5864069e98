"""The server-rendered reports: they read rollups, stay in the workspace and keep a flat query count."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from aicmo.models import Role
from analytics.rollups import rollup_backfill
from analytics.selectors import campaign_report
from tests.analytics.generated import make_campaigns, make_contacts, make_deliveries, random_events

UTC = ZoneInfo("UTC")


def rolled(workspace, n_campaigns=2, events=600, seed=1, prefix="Campaign"):
    campaigns = make_campaigns(workspace, n_campaigns, prefix=prefix)
    contacts = make_contacts(workspace, 20)
    deliveries = [d for c in campaigns for d in make_deliveries(c, contacts)]
    random_events(deliveries, events, start=datetime(2026, 8, 1, tzinfo=UTC), days=5, seed=seed)
    rollup_backfill(workspace_id=workspace.pk, first=date(2026, 7, 31), last=date(2026, 8, 6))
    return campaigns


def test_pages_show_rollup_figures_and_stay_in_the_workspace(client_for, other_workspace):
    client = client_for(Role.VIEWER)
    mine = rolled(client.workspace)
    theirs = rolled(other_workspace, n_campaigns=1, seed=2, prefix="Secret")
    page = client.get("/analytics/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Campaign 0" in body and "Campaign 1" in body and "Secret" not in body
    report = client.get(f"/analytics/campaigns/{mine[0].pk}/")
    assert report.status_code == 200
    totals = campaign_report(client.workspace, mine[0])["totals"]
    assert f"<th>Unique clicks</th><td>{totals['unique_clicks']}</td>" in report.content.decode()
    assert client.get(f"/analytics/campaigns/{theirs[0].pk}/").status_code == 404


def test_report_pages_query_count_is_flat(client_for, django_assert_max_num_queries):
    client = client_for(Role.VIEWER)
    campaigns = rolled(client.workspace, n_campaigns=2, events=200)
    with django_assert_max_num_queries(20) as few:
        client.get("/analytics/")
    rolled(client.workspace, n_campaigns=30, events=3000, seed=4, prefix="More")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/analytics/").status_code == 200
    with django_assert_max_num_queries(20):
        assert client.get(f"/analytics/campaigns/{campaigns[0].pk}/").status_code == 200


def test_campaign_report_chart_has_the_daily_tables_figures(client_for, api_client_for):
    import json
    import re

    client = client_for(Role.VIEWER)
    [campaign, _] = rolled(client.workspace)
    html = client.get(f"/analytics/campaigns/{campaign.pk}/").content.decode()
    chart = json.loads(
        re.search(r'<script id="daily-chart" type="application/json">(.*?)</script>', html, re.S)[1]
    )
    daily = (
        api_client_for(role=Role.VIEWER).get(f"/api/v1/analytics/campaigns/{campaign.pk}/").json()["daily"]
    )
    assert chart["labels"] == [d["day"] for d in daily] and len(daily) >= 5
    assert [s["label"] for s in chart["series"]] == ["Unique opens (human)", "Unique clicks", "Conversions"]
    for series, key in zip(
        chart["series"], ("unique_opens_human", "unique_clicks", "conversions"), strict=True
    ):
        assert series["data"] == [d[key] for d in daily]
    assert 'id="daily"' in html and 'data-chart="daily-chart"' in html


def test_campaign_report_without_rollups_has_no_chart(client_for):
    client = client_for(Role.VIEWER)
    [campaign] = make_campaigns(client.workspace, 1)
    html = client.get(f"/analytics/campaigns/{campaign.pk}/").content.decode()
    assert "Nothing rolled up yet." in html and "daily-chart" not in html
