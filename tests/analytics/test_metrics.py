"""Each figure against an independent computation: pandas over the raw events (rates), hand-written
formulas (costs, ROI), scipy's normal distribution (the z-test) and pandas merges (attribution)."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import norm

from aicmo.models import Role
from analytics import metrics
from analytics.attribution import attribute
from analytics.models import Order
from analytics.rollups import rollup_backfill
from analytics.selectors import campaign_rows, zero_counters
from publishing.models import EngagementEvent, EngagementKind
from tests.analytics.generated import (
    event,
    events_frame,
    make_campaigns,
    make_contacts,
    make_deliveries,
    random_events,
)

UTC = ZoneInfo("UTC")


def pandas_rates(df: pd.DataFrame) -> dict[int, dict]:
    out = {}
    for campaign_id, g in df.groupby("campaign_id"):
        k = g["kind"]
        sent = int((k == "sent").sum())
        bounces = int(k.isin(["bounce_hard", "bounce_soft"]).sum())
        delivered = max(0, sent - bounces)
        u_open = g.loc[(k == "open") & ~g["machine"], "delivery_id"].nunique()
        u_click = g.loc[k == "click", "delivery_id"].nunique()

        def rate(a, b):
            return a / b if b else None

        out[int(campaign_id)] = {
            "open_rate": rate(u_open, delivered),
            "ctr": rate(u_click, delivered),
            "ctor": rate(u_click, u_open),
            "cvr": rate(int((k == "conversion").sum()), delivered),
            "unsubscribe_rate": rate(int((k == "unsubscribe").sum()), delivered),
            "complaint_rate": rate(int((k == "complaint").sum()), delivered),
            "bounce_rate": rate(bounces, sent),
        }
    return out


def test_campaign_rates_equal_pandas_over_raw_events(workspace):
    campaigns = make_campaigns(workspace, 4)
    contacts = make_contacts(workspace, 60)
    deliveries = [d for c in campaigns[:3] for d in make_deliveries(c, contacts)]
    random_events(deliveries, 4000, start=datetime(2026, 8, 1, tzinfo=UTC), days=14, seed=21)
    rollup_backfill(workspace_id=workspace.pk, first=date(2026, 7, 31), last=date(2026, 8, 16))
    expected = pandas_rates(events_frame(workspace, "UTC"))
    rows = {r["id"]: r for r in campaign_rows(workspace, campaigns)}
    for campaign_id, rates in expected.items():
        for name, value in rates.items():
            assert rows[campaign_id][name] == pytest.approx(value), (campaign_id, name)
    idle = rows[campaigns[3].pk]  # zero sends: every rate undefined, never 0 or infinity
    assert idle["sent"] == 0
    assert all(
        idle[m] is None for m in ("open_rate", "ctr", "ctor", "cvr", "bounce_rate", "roi", "roas", "cpa")
    )


def test_campaign_without_conversions_has_cvr_zero_and_cpa_undefined(workspace):
    (campaign,) = make_campaigns(workspace, 1)
    ds = make_deliveries(campaign, make_contacts(workspace, 4))
    at = datetime(2026, 8, 3, 8, tzinfo=UTC)
    EngagementEvent.objects.bulk_create([event(d, EngagementKind.SENT, at) for d in ds])
    rollup_backfill(workspace_id=workspace.pk, first=date(2026, 8, 3), last=date(2026, 8, 3))
    (row,) = campaign_rows(workspace, [campaign])
    assert (row["cvr"], row["cpa"], row["roi"], row["roas"], row["revenue"]) == (
        0.0,
        None,
        None,
        None,
        "0.00",
    )


counters = st.fixed_dictionaries(
    {
        **{f: st.integers(0, 10_000) for f in zero_counters() if f not in ("revenue", "spend")},
        "revenue": st.decimals(0, 10**6, places=2),
        "spend": st.decimals(0, 10**5, places=2),
    }
)


@given(c=counters)
def test_costs_and_returns_match_their_formulas_and_are_none_when_undefined(c):
    f = metrics.figures(c)
    spend, revenue = float(c["spend"]), float(c["revenue"])
    for name, num, den, scale in (
        ("cpc", spend, c["clicks"], 1),
        ("cpm", spend, c["impressions"], 1000),
        ("cpa", spend, c["conversions"], 1),
        ("roas", revenue, spend, 1),
        ("roi", revenue - spend, spend, 1),
    ):
        if den == 0:
            assert f[name] is None, name  # zero spend: ROI undefined, not 0 and not infinity
        else:
            assert f[name] == pytest.approx(num * scale / den), name
    for value in f.values():
        assert value is None or math.isfinite(value)


def z_test_by_hand(x1, n1, x2, n2) -> float:
    """Pooled two-proportion z-test, two-sided (e.g. Agresti, Categorical Data Analysis, 3rd ed., §3.1)."""
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    return 2 * norm.sf(abs(z))


@given(n1=st.integers(1, 5000), n2=st.integers(1, 5000), f1=st.floats(0, 1), f2=st.floats(0, 1))
def test_two_proportion_test_matches_the_formula_and_is_undefined_without_variance(n1, n2, f1, f2):
    x1, x2 = round(n1 * f1), round(n2 * f2)
    a = {**zero_counters(), "sent": n1, "unique_clicks": x1}
    b = {**zero_counters(), "sent": n2, "unique_clicks": x2}
    result = metrics.two_proportion_test("ctr", a, b)
    assert (result.successes, result.trials) == ((x1, x2), (n1, n2))
    if x1 + x2 in (0, n1 + n2):
        assert result.p_value is None and result.verdict == "not yet"
    else:
        assert result.p_value == pytest.approx(z_test_by_hand(x1, n1, x2, n2), rel=1e-6, abs=1e-12)
        assert result.significant == (result.p_value < 0.05)


def test_significance_is_not_yet_with_zero_sends_on_one_side():
    a = {**zero_counters(), "sent": 100, "unique_clicks": 10}
    result = metrics.two_proportion_test("ctr", a, zero_counters())
    assert (result.p_value, result.verdict, result.trials) == (None, "not yet", (100, 0))


# ---------------------------------------------------------------- attribution


def attribution_world(workspace, seed=5):
    rng = random.Random(seed)
    campaigns = make_campaigns(workspace, 4)
    contacts = make_contacts(workspace, 25)
    by_campaign = {c.pk: make_deliveries(c, contacts) for c in campaigns}
    start = datetime(2026, 5, 1, tzinfo=UTC)
    events = []
    for _ in range(600):
        campaign = rng.choice(campaigns)
        d = rng.choice(by_campaign[campaign.pk])
        kind = rng.choice(["open", "click", "reply", "sent", "unsubscribe"])
        at = start + timedelta(seconds=rng.randrange(60 * 86400))
        events.append(event(d, kind, at, machine=kind == "open" and rng.random() < 0.3))
    EngagementEvent.objects.bulk_create(events)
    Order.objects.bulk_create(
        [
            Order(
                workspace=workspace,
                contact=rng.choice([*contacts, None]),
                external_id=f"o{i}",
                ordered_at=start + timedelta(seconds=rng.randrange(70 * 86400)),
                amount=Decimal(rng.randrange(100, 100000)) / 100,
                currency=rng.choice(["EUR", "USD"]),
                source="import",
            )
            for i in range(150)
        ]
    )


def pandas_attribution(workspace, model: str, window_days: int, first, last) -> dict:
    touches = pd.DataFrame(
        EngagementEvent.objects.filter(workspace=workspace)
        .filter(kind__in=["open", "click", "reply"])
        .exclude(kind="open", machine=True)
        .values("id", "contact_id", "campaign_id", "occurred_at")
    )
    orders = pd.DataFrame(
        Order.objects.filter(workspace=workspace, ordered_at__gte=first, ordered_at__lt=last).values(
            "id", "contact_id", "ordered_at", "amount", "currency"
        )
    )
    pairs = orders.merge(touches, on="contact_id", suffixes=("_order", "_touch"))
    window = pd.Timedelta(days=window_days)
    pairs = pairs[
        (pairs["occurred_at"] > pairs["ordered_at"] - window) & (pairs["occurred_at"] <= pairs["ordered_at"])
    ]
    if model == "last_touch":
        pairs = pairs.sort_values(["occurred_at", "id_touch"]).groupby("id_order").tail(1).assign(share=1.0)
    else:
        pairs = pairs.assign(share=1.0 / pairs.groupby("id_order")["id_touch"].transform("count"))
    pairs = pairs.assign(credit=pairs["share"] * pairs["amount"].astype(float))
    grouped = pairs.groupby(["campaign_id", "currency"]).agg(
        conversions=("share", "sum"), revenue=("credit", "sum")
    )
    credited = set(pairs["id_order"])
    lost = orders[~orders["id"].isin(credited)]
    return {
        "rows": {(int(c), cur): (row.conversions, row.revenue) for (c, cur), row in grouped.iterrows()},
        "unattributed": {
            cur: (len(g), str(sum(g["amount"], Decimal(0)))) for cur, g in lost.groupby("currency")
        },
    }


@pytest.mark.parametrize("model", ["last_touch", "linear"])
@pytest.mark.parametrize("window_days", [1, 7, 30])
def test_attribution_equals_a_pandas_merge(workspace, model, window_days):
    attribution_world(workspace)
    first, last = datetime(2026, 5, 10, tzinfo=UTC), datetime(2026, 7, 5, tzinfo=UTC)
    got = attribute(workspace, model=model, window_days=window_days, first=first, last=last)
    expected = pandas_attribution(workspace, model, window_days, first, last)
    assert {(r["campaign_id"], r["currency"]) for r in got["rows"]} == set(expected["rows"])
    for r in got["rows"]:
        conv, revenue = expected["rows"][(r["campaign_id"], r["currency"])]
        assert r["conversions"] == pytest.approx(conv, abs=1e-6)
        assert float(r["revenue"]) == pytest.approx(revenue, abs=0.006)
    assert {u["currency"]: (u["orders"], u["revenue"]) for u in got["unattributed"]} == expected[
        "unattributed"
    ]


def test_attribution_api_and_csv_and_tenancy(api_client_for, other_workspace, settings):
    client = api_client_for(role=Role.VIEWER)
    attribution_world(client.workspace)
    attribution_world(other_workspace, seed=9)
    query = {"model": "linear", "window_days": 30, "date_from": "2026-05-10", "date_to": "2026-07-04"}
    data = client.get("/api/v1/analytics/figures/attribution/", query).json()
    expected = attribute(
        client.workspace,
        model="linear",
        window_days=30,
        first=datetime(2026, 5, 10, tzinfo=UTC),
        last=datetime(2026, 7, 5, tzinfo=UTC),
    )
    assert data == expected
    # the other workspace has orders and touches in the same period: none of its campaigns are credited
    own_campaigns = set(
        EngagementEvent.objects.filter(workspace=client.workspace).values_list("campaign_id", flat=True)
    )
    assert {r["campaign_id"] for r in data["rows"]} <= own_campaigns
    body = b"".join(
        client.get("/api/v1/analytics/figures/attribution/", {**query, "format": "csv"}).streaming_content
    ).decode()
    assert body.splitlines()[0] == "campaign_id,name,currency,conversions,revenue"
    assert len(body.splitlines()) == len(data["rows"]) + 1
