"""Media asset performance: per asset, the campaigns whose content carries it with their exact figures
(pandas over the raw events), and the performance channels reported for the asset; page chart beside the
table, CSV, query count flat, tenant isolation."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest

from aicmo.models import Role
from analytics.rollups import rollup_backfill
from media import services as media_services
from tests.analytics.generated import (
    events_frame,
    make_campaigns,
    make_contacts,
    make_deliveries,
    random_events,
)
from tests.analytics.test_insight_pages import chart_data
from tests.media.factories import MediaAssetFactory

UTC_START = datetime(2026, 5, 1).astimezone()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _campaigns(workspace, prefix, n, seed):
    campaigns = make_campaigns(workspace, n, prefix=prefix)
    contacts = make_contacts(workspace, 15, prefix=prefix.lower())
    for i, c in enumerate(campaigns):
        random_events(make_deliveries(c, contacts), 300, start=UTC_START, days=5, seed=seed + i)
    return campaigns


@pytest.fixture
def assets(workspace, other_workspace):
    """X in the first content (two campaigns), Y in both contents, Z only with reported figures, W unused."""
    first = _campaigns(workspace, "First", 2, seed=1)
    [second] = _campaigns(workspace, "Second", 1, seed=5)
    x, y, z, _w = (MediaAssetFactory(workspace=workspace, title=t) for t in ("X", "Y", "Z", "W"))
    for asset, content in ((x, first[0].content_id), (y, first[0].content_id), (y, second.content_id)):
        media_services.asset_record_usage(asset=asset, ref=f"publishing.content:{content}", channel="email")
    media_services.asset_record_usage(asset=x, ref="crm.note:1", channel="email")  # not a campaign content
    media_services.asset_record_performance(
        asset=z, channel="ads", date=date(2026, 5, 1), impressions=1000, clicks=25
    )
    media_services.asset_record_performance(
        asset=z, channel="ads", date=date(2026, 5, 2), impressions=500, clicks=5
    )
    media_services.asset_record_performance(
        asset=y, channel="social", date=date(2026, 5, 2), impressions=200, clicks=0
    )
    [theirs] = _campaigns(other_workspace, "Theirs", 1, seed=9)
    foreign = MediaAssetFactory(workspace=other_workspace, title="Secret asset")
    media_services.asset_record_usage(
        asset=foreign, ref=f"publishing.content:{theirs.content_id}", channel="email"
    )
    for ws in (workspace, other_workspace):
        rollup_backfill(workspace_id=ws.pk, first=date(2026, 4, 29), last=date(2026, 5, 7))
    return {"X": (x, first), "Y": (y, [*first, second]), "Z": (z, [])}


def test_figures_equal_pandas_over_the_raw_events(api_client_for, workspace, assets):
    rows = {
        r["title"]: r
        for r in api_client_for(role=Role.VIEWER).get("/api/v1/analytics/figures/assets/").json()["assets"]
    }
    assert set(rows) == {"X", "Y", "Z"}  # W is unused, the other workspace's asset is not ours
    df = events_frame(workspace, "UTC")
    for title, (asset, campaigns) in assets.items():
        mine = df[df["campaign_id"].isin([c.pk for c in campaigns])]
        k = mine["kind"]
        # campaign uniques are over the campaign's whole life; summed over the (disjoint) campaigns
        per_campaign = mine.groupby("campaign_id")
        unique_clicks = sum(
            int(g.loc[g["kind"] == "click", "delivery_id"].nunique()) for _, g in per_campaign
        )
        opens = sum(
            int(g.loc[(g["kind"] == "open") & ~g["machine"], "delivery_id"].nunique())
            for _, g in per_campaign
        )
        delivered = int((k == "sent").sum()) - int(k.isin(["bounce_hard", "bounce_soft"]).sum())
        row = rows[title]
        assert (row["asset_id"], row["campaigns"]) == (asset.pk, len(campaigns))
        assert (row["unique_clicks"], row["unique_opens_human"], row["delivered"]) == (
            unique_clicks,
            opens,
            delivered,
        )
        assert row["ctr"] == (pytest.approx(unique_clicks / delivered) if delivered > 0 else None)
        assert row["conversions"] == int((k == "conversion").sum())
    assert rows["Y"]["unique_clicks"] > rows["X"]["unique_clicks"] > 0
    assert (rows["Z"]["reported_impressions"], rows["Z"]["reported_clicks"]) == (1500, 30)
    assert rows["Z"]["reported_ctr"] == pytest.approx(0.02) and rows["Z"]["ctr"] is None
    assert rows["X"]["reported_ctr"] is None and rows["Y"]["reported_ctr"] == 0.0
    assert [
        r["title"]
        for r in api_client_for(role=Role.VIEWER).get("/api/v1/analytics/figures/assets/").json()["assets"]
    ] == ["Y", "X", "Z"]


def test_page_chart_beside_the_table_and_csv(client_for, api_client_for, assets):
    api = api_client_for(role=Role.VIEWER).get("/api/v1/analytics/figures/assets/").json()["assets"]
    html = client_for(role=Role.VIEWER).get("/analytics/assets/").content.decode()
    chart = chart_data(html, "asset-chart")
    assert chart["labels"] == [r["title"] for r in api]
    assert chart["series"][0]["data"] == [r["ctr"] for r in api]
    assert chart["series"][1]["data"] == [r["reported_ctr"] for r in api]
    assert 'id="asset-performance"' in html and "Secret asset" not in html
    resp = api_client_for(role=Role.VIEWER).get("/api/v1/analytics/figures/assets/?format=csv")
    lines = list(csv.DictReader(io.StringIO(b"".join(resp.streaming_content).decode())))
    assert [(r["title"], r["unique_clicks"]) for r in lines] == [
        (r["title"], str(r["unique_clicks"])) for r in api
    ]


def test_empty_workspace_says_so(client_for):
    html = client_for(role=Role.VIEWER).get("/analytics/assets/").content.decode()
    assert "No asset is used" in html and "asset-chart" not in html


def test_query_count_is_flat(client_for, api_client_for, workspace, assets, django_assert_max_num_queries):
    page, api = client_for(role=Role.VIEWER), api_client_for(role=Role.VIEWER)
    with django_assert_max_num_queries(10):
        assert api.get("/api/v1/analytics/figures/assets/").status_code == 200
    more = _campaigns(workspace, "More", 3, seed=20)
    for i in range(10):
        asset = MediaAssetFactory(workspace=workspace, title=f"More {i}")
        media_services.asset_record_usage(
            asset=asset, ref=f"publishing.content:{more[0].content_id}", channel="email"
        )
    rollup_backfill(workspace_id=workspace.pk, first=date(2026, 4, 29), last=date(2026, 5, 7))
    with django_assert_max_num_queries(10):
        assert api.get("/api/v1/analytics/figures/assets/").status_code == 200
    with django_assert_max_num_queries(16):
        assert page.get("/analytics/assets/").status_code == 200
