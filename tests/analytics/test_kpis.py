"""Overview KPIs: the period and the previous one, their change and the daily sparkline series equal a pandas
computation over the raw events (Berlin days, across the DST change); top channels and campaigns in
flight; the page shows the API's figures with a chart per KPI and the tables beside; CSV; query count
flat in the number of events; tenant isolation; bad input."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from aicmo.models import Role
from analytics.rollups import rollup_backfill
from publishing.models import Campaign, CampaignStatus, EngagementEvent
from tests.analytics.generated import (
    events_frame,
    make_campaigns,
    make_contacts,
    make_deliveries,
    random_events,
)
from tests.analytics.test_insight_pages import chart_data

BERLIN = ZoneInfo("Europe/Berlin")
DATE_TO = date(2026, 4, 10)  # the 30-day period spans the change to summer time (2026-03-29)


def _seed(workspace, seed=5, n=1500):
    email, ads = make_campaigns(workspace, 2, prefix=f"S{seed}")
    Campaign.objects.filter(pk=ads.pk).update(channel="ads", status=CampaignStatus.SENDING)
    contacts = make_contacts(workspace, 40, prefix=f"k{seed}")
    start = datetime(2026, 2, 1, tzinfo=BERLIN)
    random_events(make_deliveries(email, contacts), n, start=start, days=70, seed=seed)
    random_events(make_deliveries(ads, contacts[:20]), n // 3, start=start, days=70, seed=seed + 1)
    EngagementEvent.objects.filter(campaign=ads).update(channel="ads")
    rollup_backfill(workspace_id=workspace.pk, first=date(2026, 1, 30), last=date(2026, 4, 15))


@pytest.fixture
def data(berlin, workspace, other_workspace):
    _seed(workspace)
    _seed(other_workspace, seed=9, n=500)
    return workspace


def expected(workspace, days: int) -> dict:
    """Per local day: counters with that day's uniques (COUNT DISTINCT delivery per day), from raw events."""
    df = events_frame(workspace, "Europe/Berlin")
    first = DATE_TO - timedelta(days=days - 1)
    prev_first = first - timedelta(days=days)

    def counters(g):
        k = g["kind"]
        human_open = (k == "open") & ~g["machine"]
        return {
            "sent": int((k == "sent").sum()),
            "bounces": int(k.isin(["bounce_hard", "bounce_soft"]).sum()),
            "unique_opens_human": int(g.loc[human_open, "delivery_id"].nunique()),
            "unique_clicks": int(g.loc[k == "click", "delivery_id"].nunique()),
            "conversions": int((k == "conversion").sum()),
            "revenue": sum(g.loc[k == "conversion", "value"], Decimal(0)),
        }

    per_day = {day: counters(g) for day, g in df.groupby("day")}
    zero = {"sent": 0, "bounces": 0, "unique_opens_human": 0, "unique_clicks": 0, "conversions": 0,
            "revenue": Decimal(0)}  # fmt: skip

    def total(a, b):
        out = dict(zero)
        for i in range((b - a).days + 1):
            for key, value in per_day.get(a + timedelta(days=i), zero).items():
                out[key] += value
        return out

    def kpi(c):
        delivered = c["sent"] - c["bounces"]
        return {
            "sent": c["sent"], "unique_opens_human": c["unique_opens_human"], "unique_clicks": c["unique_clicks"],
            "conversions": c["conversions"], "revenue": f"{c['revenue']:.2f}",
            "ctr": c["unique_clicks"] / delivered if delivered > 0 else None,
            "ctor": c["unique_clicks"] / c["unique_opens_human"] if c["unique_opens_human"] else None,
        }  # fmt: skip

    current, previous = kpi(total(first, DATE_TO)), kpi(total(prev_first, first - timedelta(days=1)))
    daily = [kpi(per_day.get(first + timedelta(days=i), zero)) for i in range(days)]
    return {"current": current, "previous": previous, "daily": daily, "df": df, "first": first}


@pytest.mark.parametrize("days", [7, 30])
def test_kpis_equal_pandas_over_the_raw_events(api_client_for, data, days):
    body = (
        api_client_for(role=Role.VIEWER)
        .get(f"/api/v1/analytics/figures/kpis/?days={days}&date_to={DATE_TO}")
        .json()
    )
    want = expected(data, days)
    assert body["date_from"] == want["first"].isoformat() and body["date_to"] == DATE_TO.isoformat()
    for k in body["kpis"]:
        key = k["key"]
        cur, prev = want["current"][key], want["previous"][key]
        if key in ("ctr", "ctor"):
            assert k["current"] == pytest.approx(cur) and k["previous"] == pytest.approx(prev), key
            assert k["series"] == pytest.approx([d[key] for d in want["daily"]]), key
        else:
            assert (k["current"], k["previous"]) == (cur, prev), key
            assert k["series"] == [d[key] for d in want["daily"]], key
        c, p = (float(cur), float(prev)) if cur is not None and prev is not None else (None, None)
        assert k["change"] == (pytest.approx((c - p) / p) if p else None), key
    assert want["current"]["sent"] > 0 and want["previous"]["sent"] > 0  # the comparison is not vacuous

    df = want["df"]
    period = df[(df["day"] >= want["first"]) & (df["day"] <= DATE_TO)]
    assert body["campaigns_active"] == period["campaign_id"].nunique() == 2
    assert body["campaigns_in_flight"] == 1  # the ads campaign is sending; the email one a draft
    clicks = {
        ch: int(sum(g[g["kind"] == "click"].groupby("day")["delivery_id"].nunique()))
        for ch, g in period.groupby("channel")
    }
    assert [(c["channel"], c["unique_clicks"]) for c in body["top_channels"]] == sorted(
        clicks.items(), key=lambda kv: -kv[1]
    )


def test_page_shows_the_api_kpis_with_a_sparkline_per_kpi(client_for, api_client_for, data):
    api = api_client_for(role=Role.VIEWER).get("/api/v1/analytics/figures/kpis/?days=30").json()
    html = client_for(role=Role.VIEWER).get("/analytics/?days=30").content.decode()
    for k in api["kpis"]:
        spark = chart_data(html, f"spark-{k['key']}")
        assert spark["sparkline"] is True and spark["labels"] == [d["day"] for d in api["daily"]]
        expected_points = [float(v) if isinstance(v, str) else v for v in k["series"]]
        assert spark["series"][0]["data"] == expected_points, k["key"]
    assert 'id="kpi-table"' in html and 'id="kpi-daily"' in html and 'id="top-channels"' in html
    assert f"<td>{api['kpis'][0]['current']}</td>" in html


def test_csv_parts(api_client_for, data):
    client = api_client_for(role=Role.VIEWER)
    body = client.get(f"/api/v1/analytics/figures/kpis/?days=7&date_to={DATE_TO}").json()

    def read(part):
        resp = client.get(f"/api/v1/analytics/figures/kpis/?days=7&date_to={DATE_TO}&format=csv&part={part}")
        return list(csv.DictReader(io.StringIO(b"".join(resp.streaming_content).decode())))

    assert [(r["key"], r["current"]) for r in read("kpis")] == [
        (k["key"], str(k["current"])) for k in body["kpis"]
    ]
    assert [r["day"] for r in read("daily")] == [d["day"] for d in body["daily"]]
    assert [r["channel"] for r in read("channels")] == [c["channel"] for c in body["top_channels"]]


def test_bad_input_is_a_400_and_the_page_says_so(api_client_for, client_for, workspace):
    client = api_client_for(role=Role.VIEWER)
    for query in ("days=14", "date_to=yesterday", "part=x", "nonsense=1"):
        assert client.get(f"/api/v1/analytics/figures/kpis/?{query}").status_code == 400, query
    resp = client_for(role=Role.VIEWER).get("/analytics/?days=14")
    assert resp.status_code == 200 and "the period is 7 or 30 days" in resp.content.decode()


def test_another_workspace_never_counts(api_client_for, berlin, workspace, other_workspace):
    _seed(other_workspace, seed=9, n=400)
    body = (
        api_client_for(role=Role.ADMIN)
        .get(f"/api/v1/analytics/figures/kpis/?days=30&date_to={DATE_TO}")
        .json()
    )
    assert all(k["current"] in (0, "0.00", None) for k in body["kpis"])
    assert body["top_channels"] == [] and body["campaigns_active"] == body["campaigns_in_flight"] == 0


def test_query_count_is_flat(client_for, api_client_for, berlin, workspace, django_assert_max_num_queries):
    page, api = client_for(role=Role.VIEWER), api_client_for(role=Role.VIEWER)
    for n in (30, 900):
        _seed(workspace, seed=n, n=n)
        with django_assert_max_num_queries(10):
            assert api.get("/api/v1/analytics/figures/kpis/?days=30").status_code == 200
        with django_assert_max_num_queries(20):
            assert page.get("/analytics/?days=30").status_code == 200
