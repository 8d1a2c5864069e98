"""Trends from daily rollups: moving averages, period-over-period change and slope against pandas/scipy;
STL anomaly flags on exactly the injected spikes; flat, short and undefined series; API, CSV, isolation."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aicmo.models import Role
from analytics.models import DailyRollup
from analytics.trends import trend
from tests.analytics.generated import make_campaigns

URL = "/api/v1/analytics/trends/series/"
FIRST = date(2026, 1, 1)


def put_series(workspace, campaign, values: dict[date, dict]):
    DailyRollup.objects.bulk_create(
        [
            DailyRollup(
                workspace=workspace, campaign=campaign, channel="email", variant="", day=day, **counters
            )
            for day, counters in values.items()
        ]
    )


def noisy(days: int, spikes: dict[int, int], seed: int = 7) -> dict[date, dict]:
    """Clicks around 100 a day with a weekly pattern and Gaussian noise (σ = 5), sends 1000 a day; spikes
    added on the given day numbers."""
    rng = np.random.default_rng(seed)
    weekly = [0, 10, 15, 12, 8, -20, -25]
    out = {}
    for i in range(days):
        day = FIRST + timedelta(days=i)
        clicks = round(100 + weekly[day.weekday()] + rng.normal(0, 5)) + spikes.get(i, 0)
        out[day] = {"sent": 1000, "unique_clicks": clicks, "clicks": clicks}
    return out


@pytest.fixture
def campaign(workspace):
    return make_campaigns(workspace, 1)[0]


def test_spikes_are_flagged_on_exactly_their_days(workspace, campaign):
    spikes = {40: 80, 77: -70, 101: 120}
    put_series(workspace, campaign, noisy(130, spikes))
    result = trend(workspace, metric="unique_clicks", first=FIRST, last=FIRST + timedelta(days=129))
    flagged = [a["day"] for a in result["anomalies"]]
    assert flagged == [(FIRST + timedelta(days=i)).isoformat() for i in sorted(spikes)]
    assert result["note"] is None
    rate = trend(workspace, metric="ctr", first=FIRST, last=FIRST + timedelta(days=129))
    assert [a["day"] for a in rate["anomalies"]] == flagged


def test_moving_averages_change_and_slope_match_pandas(workspace, campaign):
    data = noisy(150, {})
    put_series(workspace, campaign, data)
    first, last = FIRST + timedelta(days=100), FIRST + timedelta(days=149)
    result = trend(workspace, metric="unique_clicks", first=first, last=last)
    frame = pd.Series({d: v["unique_clicks"] for d, v in data.items()}, dtype=float)
    ma7 = frame.rolling(7).mean()
    ma28 = frame.rolling(28).mean()
    for p in result["points"]:
        day = date.fromisoformat(p["day"])
        assert p["value"] == frame[day]
        assert p["ma7"] == pytest.approx(ma7[day]) and p["ma28"] == pytest.approx(ma28[day])
    window = frame[(frame.index >= first) & (frame.index <= last)]
    before = frame[(frame.index >= first - timedelta(days=50)) & (frame.index < first)]
    assert result["summary"]["current"] == window.sum() and result["summary"]["previous"] == before.sum()
    assert result["summary"]["change"] == pytest.approx(window.sum() / before.sum() - 1)
    assert result["summary"]["slope"] == pytest.approx(
        stats.linregress(np.arange(len(window)), window.values).slope
    )


def test_rates_are_recomputed_from_summed_counters_and_null_without_denominator(workspace, campaign):
    put_series(
        workspace,
        campaign,
        {
            FIRST: {"sent": 100, "unique_clicks": 10},
            FIRST + timedelta(days=2): {"sent": 300, "unique_clicks": 60},
        },
    )
    result = trend(workspace, metric="ctr", first=FIRST, last=FIRST + timedelta(days=2))
    assert [p["value"] for p in result["points"]] == [0.1, None, 0.2]
    assert result["summary"]["current"] == pytest.approx(70 / 400)  # not the mean of the daily rates
    assert result["summary"]["previous"] is None and result["summary"]["change"] is None
    assert result["anomalies"] == [] and "too short" in result["note"]


def test_flat_series_has_no_anomalies_until_a_spike(workspace, campaign, other_workspace):
    flat = {FIRST + timedelta(days=i): {"sent": 50} for i in range(60)}
    put_series(workspace, campaign, flat)
    result = trend(workspace, metric="sent", first=FIRST, last=FIRST + timedelta(days=59))
    assert result["anomalies"] == [] and result["summary"]["slope"] == pytest.approx(0)
    [other] = make_campaigns(other_workspace, 1)
    put_series(other_workspace, other, {**flat, FIRST + timedelta(days=30): {"sent": 500}})
    spiked = trend(other_workspace, metric="sent", first=FIRST, last=FIRST + timedelta(days=59))
    assert [a["day"] for a in spiked["anomalies"]] == [(FIRST + timedelta(days=30)).isoformat()]


def test_api_csv_isolation_and_bad_input(
    api_client_for, workspace, campaign, other_workspace, django_assert_max_num_queries
):
    put_series(workspace, campaign, noisy(60, {30: 90}))
    client = api_client_for(role=Role.VIEWER)
    query = (
        f"?metric=unique_clicks&date_from=2026-01-01&date_to=2026-03-01&campaign={campaign.pk}&channel=email"
    )
    with django_assert_max_num_queries(11):  # auth, tenant, campaign check, workspace zone, 3 rollup reads
        body = client.get(URL + query).json()
    assert "2026-01-31" in [a["day"] for a in body["anomalies"]]
    lines = b"".join(client.get(URL + query + "&format=csv").streaming_content).decode().splitlines()
    assert lines[0] == "day,value,ma7,ma28,expected,residual,anomaly" and len(lines) == 61
    short = client.get(URL + "?metric=ctr&date_from=2026-01-01&date_to=2026-01-05").json()
    assert short["anomalies"] == [] and short["note"]
    stranger = api_client_for(role=Role.ADMIN, workspace_=other_workspace)
    assert stranger.get(URL + query).status_code == 400  # another workspace's campaign is unknown
    theirs = stranger.get(URL + "?metric=unique_clicks&date_from=2026-01-01&date_to=2026-03-01").json()
    assert all(p["value"] == 0 for p in theirs["points"])
    for bad in ["?metric=nope", "?date_from=2026-02-01&date_to=2026-01-01", "?date_from=2020-01-01&date_to=2026-01-01",
                "?k=0", "?campaign=0", "?channel=fax", "?date_to=9999-12-31"]:  # fmt: skip
        assert client.get(URL + bad).status_code == 400, bad
