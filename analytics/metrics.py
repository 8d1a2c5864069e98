"""Campaign figures from rollup counters, and the two-proportion significance test.

Every rate returns ``None`` when its denominator is zero (undefined), never 0 or infinity. Definitions
follow the common email/ads usage (Mailchimp's and Campaign Monitor's report glossaries, Google Ads' CPC/CPM,
the usual ROAS/ROI):

- delivered    = sent − bounces (SMTP gives no delivery receipts; ``delivered`` events, when a channel sends
                 them, are reported as ``delivery_receipts``)
- open rate    = unique human opens / delivered (machine opens — privacy proxies, scanners — excluded)
- CTR          = unique clicks / delivered
- CTOR         = unique clicks / unique human opens
- CVR          = conversions / delivered
- unsubscribe rate = unsubscribes / delivered;  complaint rate = complaints / delivered
- bounce rate  = bounces / sent
- CPC = spend / clicks;  CPM = spend / impressions × 1000;  CPA = spend / conversions
- ROAS = revenue / spend;  ROI = (revenue − spend) / spend  (undefined at zero spend)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

SIGNIFICANCE_LEVEL = 0.05


def ratio(numerator, denominator) -> float | None:
    if not denominator:
        return None
    return float(numerator) / float(denominator)


def delivered(c: dict) -> int:
    return max(0, int(c["sent"]) - int(c["bounces"]))


def figures(c: dict) -> dict:
    """Rates and costs of one set of counters (a campaign, a channel, a variant). Money as float."""
    base = delivered(c)
    spend, revenue = Decimal(c["spend"]), Decimal(c["revenue"])
    return {
        "delivered": base,
        "open_rate": ratio(c["unique_opens_human"], base),
        "ctr": ratio(c["unique_clicks"], base),
        "ctor": ratio(c["unique_clicks"], c["unique_opens_human"]),
        "cvr": ratio(c["conversions"], base),
        "unsubscribe_rate": ratio(c["unsubscribes"], base),
        "complaint_rate": ratio(c["complaints"], base),
        "bounce_rate": ratio(c["bounces"], c["sent"]),
        "cpc": ratio(spend, c["clicks"]),
        "cpm": None if not c["impressions"] else float(spend) * 1000 / float(c["impressions"]),
        "cpa": ratio(spend, c["conversions"]),
        "roas": ratio(revenue, spend),
        "roi": ratio(revenue - spend, spend),
    }


# metric name → (successes counter, trials) for the significance test
PROPORTIONS = {
    "open_rate": ("unique_opens_human", delivered),
    "ctr": ("unique_clicks", delivered),
    "ctor": ("unique_clicks", lambda c: int(c["unique_opens_human"])),
    "cvr": ("conversions", delivered),
    "unsubscribe_rate": ("unsubscribes", delivered),
    "bounce_rate": ("bounces", lambda c: int(c["sent"])),
}


@dataclass(frozen=True)
class Significance:
    metric: str
    successes: tuple[int, int]
    trials: tuple[int, int]
    p_value: float | None
    significant: bool

    @property
    def verdict(self) -> str:
        return "significant" if self.significant else "not yet"

    def as_dict(self) -> dict:
        return {
            "metric": self.metric,
            "successes": list(self.successes),
            "trials": list(self.trials),
            "p_value": self.p_value,
            "significant": self.significant,
            "verdict": self.verdict,
        }


def baseline(metric: str) -> dict:
    """The test cell of the row everything else is compared with (same keys as `Significance.as_dict`)."""
    return {
        "metric": metric,
        "successes": [],
        "trials": [],
        "p_value": None,
        "significant": False,
        "verdict": "baseline",
    }


def two_proportion_test(metric: str, a: dict, b: dict, *, alpha: float = SIGNIFICANCE_LEVEL) -> Significance:
    """Two-sided two-proportion z-test (statsmodels ``proportions_ztest``, pooled variance) of ``metric``
    between counters ``a`` and ``b``. Undefined (p None, "not yet") when a side has no trials, when a
    count exceeds its trials (a unique count over an erased denominator) or when both proportions are 0 or
    both 1 (zero variance)."""
    from statsmodels.stats.proportion import proportions_ztest

    field, trials_of = PROPORTIONS[metric]
    x = (int(a[field]), int(b[field]))
    n = (trials_of(a), trials_of(b))
    p_value = None
    if min(n) > 0 and x[0] <= n[0] and x[1] <= n[1] and 0 < sum(x) < sum(n):
        _, p = proportions_ztest(list(x), list(n))
        p_value = float(p) if math.isfinite(p) else None
    return Significance(metric, x, n, p_value, p_value is not None and p_value < alpha)
