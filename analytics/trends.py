"""Trends: one rolled-up metric as a daily series (workspace-local days, from `DailyRollup`) with moving
averages, period-over-period change, a least-squares slope and anomaly flags.

- Metrics: every rollup counter (summed per day) and every rate of `analytics.metrics.figures`, computed per
  day from that day's summed counters (undefined — null — on a day whose denominator is 0).
- ``ma7``/``ma28``: trailing means of the last 7/28 days including the day; null until the window is full
  or when a value in it is undefined.
- Period-over-period: the metric over the whole range (counters summed; rates recomputed from the summed
  counters, not averaged) against the same number of days just before it; ``change`` = (current −
  previous) / previous, null when previous is 0 or undefined.
- ``slope``: ordinary least-squares slope of value on day number, in metric units per day (defined days
  only; null with fewer than 2).
- Anomalies: STL seasonal-trend decomposition by loess (Cleveland, Cleveland, McRae & Terpenning 1990,
  J. Official Statistics 6(1):3–73; statsmodels ``STL(period=7, seasonal=13, trend=29, robust=True)``) of
  the series; each day's residual is scaled by the residuals' MAD (× 1.4826, which estimates σ for normal
  noise: a robust z-score), and a day is flagged when its |z| exceeds the series' cut-off. The cut-off is a
  multiple-testing adjustment on the maximum (a max-statistic family-wise test, as in Westfall & Young
  1993): the 98th percentile of max |z| over the whole series when the series is pure Gaussian noise, found
  by simulation for each length (`CUTOFFS`, made by ``bench/trend_calibration.py``; linear between lengths,
  beyond the longest grown as the Bonferroni normal quantile grows). On 604 seeded noise-only series with a
  weekly pattern (Gaussian and Poisson, 35–365 days) 3.5 % got any flag; a fixed per-day cut-off of 4.5
  flagged 30–50 % of 90–365-day series and 60–100 % of 21–45-day ones, where STL's smoothers follow the
  noise and the residual MAD understates it. A spike of 8σ on a 91–365-day series is found in all seeded
  cases, 6σ in 88 %, 5σ in 62 % (``tests/analytics/test_trends.py``). ``k`` overrides the cut-off.
  Undefined days are interpolated for the decomposition and never flagged. With fewer than
  `MIN_STL_DAYS` defined days (`MIN_PERIODS` weekly periods) there is no decomposition: no anomalies and a
  ``note`` saying why — on shorter series robust STL leaves residuals so small that no cut-off separates
  noise from a 5σ spike.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd

from aicmo.models import Workspace

from . import metrics
from .models import COUNTER_FIELDS, DailyRollup
from .selectors import counter_sums, zero_counters

RATES = ("open_rate", "ctr", "ctor", "cvr", "unsubscribe_rate", "complaint_rate", "bounce_rate", "cpc", "cpm", "cpa",
         "roas", "roi")  # fmt: skip
METRICS = (*COUNTER_FIELDS, *RATES)
PERIOD = 7
MIN_PERIODS = 5
MIN_STL_DAYS = MIN_PERIODS * PERIOD
STL_SEASONAL = 13
STL_TREND = 29
MAD_TO_SIGMA = 1.4826
FAMILY_RATE = 0.02
# (series length in days, cut-off in robust z): the (1 − FAMILY_RATE) quantile of max |z| over Gaussian
# white-noise series of that length, CALIBRATION_DRAWS draws each (numpy default_rng(length)); regenerate
# with `.venv/bin/python bench/trend_calibration.py` after changing the STL settings.
CUTOFFS = (
    (35, 19.41),
    (42, 13.52),
    (49, 10.35),
    (56, 9.37),
    (70, 7.52),
    (91, 6.72),
    (120, 5.93),
    (182, 6.13),
    (273, 6.05),
    (365, 6.08),
)
CALIBRATION_DRAWS = 300


def metric_value(counters: dict, metric: str) -> float | None:
    if metric in RATES:
        return metrics.figures(counters)[metric]
    return float(counters[metric])


def _rollups(workspace, first: date, last: date, campaign_id=None, channel=None):
    rows = DailyRollup.objects.for_workspace(workspace).filter(day__gte=first, day__lte=last)
    if campaign_id:
        rows = rows.filter(campaign_id=campaign_id)
    if channel:
        rows = rows.filter(channel=channel)
    return rows


def _daily_counters(workspace, first: date, last: date, campaign_id=None, channel=None) -> dict[date, dict]:
    rows = _rollups(workspace, first, last, campaign_id, channel)
    return {r.pop("day"): r for r in rows.values("day").annotate(**counter_sums()).order_by("day")}


def _range_counters(workspace, first: date, last: date, campaign_id=None, channel=None) -> dict:
    return _rollups(workspace, first, last, campaign_id, channel).aggregate(**counter_sums())


def moving_average(values: list[float | None], window: int) -> list[float | None]:
    out: list[float | None] = []
    for i in range(len(values)):
        part = values[max(0, i - window + 1) : i + 1]
        out.append(sum(part) / window if len(part) == window and None not in part else None)
    return out


def slope(values: list[float | None]) -> float | None:
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) < 2:
        return None
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    return float(np.polyfit(x, y, 1)[0])


def stl_residuals(series: np.ndarray) -> np.ndarray:
    """Residuals (same length, same units) of the robust STL fit used for anomaly flags."""
    from statsmodels.tsa.seasonal import STL

    fit = STL(series, period=PERIOD, seasonal=STL_SEASONAL, trend=STL_TREND, robust=True).fit()
    return np.asarray(fit.resid)


def robust_z(resid: np.ndarray, level: float = 1.0) -> np.ndarray:
    """|residual − median| / (1.4826 × MAD) per day. A flat series has MAD 0: a floor of 1e-6 × ``level``
    (the series' mean absolute value, at least 1) keeps rounding noise from becoming a huge z."""
    centre = float(np.median(resid))
    spread = float(np.median(np.abs(resid - centre))) * MAD_TO_SIGMA
    return np.abs(resid - centre) / max(spread, 1e-6 * max(1.0, level))


def cutoff(days: int) -> float:
    """The robust-z cut-off for a series of ``days`` days: `CUTOFFS` interpolated linearly; past the longest
    calibrated length it grows by the increase of the two-sided normal quantile at FAMILY_RATE / days
    (Bonferroni), which is how the maximum of n independent normal residuals grows."""
    from scipy.stats import norm

    lengths = [n for n, _ in CUTOFFS]
    values = [c for _, c in CUTOFFS]
    if days <= lengths[-1]:
        return float(np.interp(days, lengths, values))
    grow = norm.isf(FAMILY_RATE / (2 * days)) - norm.isf(FAMILY_RATE / (2 * lengths[-1]))
    return float(values[-1] + grow)


def anomalies(
    values: list[float | None], *, k: float | None = None
) -> tuple[list[dict | None], str | None, float | None]:
    """Per day ``{expected, residual, z, anomaly}`` (None for undefined days), a note when STL could not run,
    and the cut-off used (``k`` if given, else `cutoff` of the series' length; None without a fit)."""
    defined = [v is not None for v in values]
    if sum(defined) < MIN_STL_DAYS:
        return (
            [None] * len(values),
            (
                f"Fewer than {MIN_STL_DAYS} days with a value ({MIN_PERIODS} weekly periods): too short for a "
                "seasonal decomposition that tells noise from anomalies, so no anomalies are flagged."
            ),
            None,
        )
    series = pd.Series([np.nan if v is None else v for v in values], dtype=float)
    series = series.interpolate(limit_direction="both").to_numpy()
    resid = stl_residuals(series)
    z = robust_z(resid, float(np.mean(np.abs(series))))
    limit = cutoff(len(values)) if k is None else k
    out = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        r = float(resid[i])
        out.append({"expected": v - r, "residual": r, "z": float(z[i]), "anomaly": bool(z[i] > limit)})
    return out, None, limit


def trend(
    workspace: Workspace | int,
    *,
    metric: str,
    first: date,
    last: date,
    campaign_id: int | None = None,
    channel: str | None = None,
    k: float | None = None,
) -> dict:
    """``{metric, date_from, date_to, points: [{day, value, ma7, ma28, expected, residual, anomaly}],
    anomalies: [{day, value, expected, residual, z}], summary: {current, previous, change, slope},
    cutoff, note}`` — ``z`` the robust z-score of the residual, ``cutoff`` the z above which a day is flagged
    (``k``, or the length's family-wise cut-off when ``k`` is None; null when the series is too short).

    ``ma28`` needs 27 days before the range: they are read too. Queries: 3."""
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}.")
    lead = 27
    daily = _daily_counters(workspace, first - timedelta(days=lead), last, campaign_id, channel)
    days = [first - timedelta(days=lead) + timedelta(days=i) for i in range((last - first).days + 1 + lead)]
    all_values = [metric_value(daily.get(d, zero_counters()), metric) for d in days]
    ma7, ma28 = moving_average(all_values, 7), moving_average(all_values, 28)
    values = all_values[lead:]
    flags, note, limit = anomalies(values, k=k)
    points = []
    for i, d in enumerate(days[lead:]):
        flag = flags[i] or {}
        points.append(
            {
                "day": d.isoformat(),
                "value": values[i],
                "ma7": ma7[lead + i],
                "ma28": ma28[lead + i],
                "expected": flag.get("expected"),
                "residual": flag.get("residual"),
                "anomaly": bool(flag.get("anomaly")),
            }
        )
    span = (last - first).days + 1
    current = metric_value(_range_counters(workspace, first, last, campaign_id, channel), metric)
    previous = metric_value(
        _range_counters(
            workspace, first - timedelta(days=span), first - timedelta(days=1), campaign_id, channel
        ),
        metric,
    )
    change = None
    if current is not None and previous:
        change = (current - previous) / previous
    return {
        "metric": metric,
        "date_from": first.isoformat(),
        "date_to": last.isoformat(),
        "points": points,
        "anomalies": [
            {
                "day": p["day"],
                "value": p["value"],
                "expected": p["expected"],
                "residual": p["residual"],
                "z": flags[i]["z"],
            }
            for i, p in enumerate(points)
            if p["anomaly"]
        ],
        "summary": {
            "current": current,
            "previous": previous,
            "change": change if change is None or math.isfinite(change) else None,
            "slope": slope(values),
        },
        "cutoff": limit,
        "note": note,
    }
