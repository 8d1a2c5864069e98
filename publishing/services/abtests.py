"""A/B test decision statistics: which variant leads on a metric and whether the lead is significant.

Only the decision core exists so far (no variant models or sending integration yet; see docs/PUBLISHING.md
"Not built yet"). The test is the two-proportion z-test with a pooled proportion
(statsmodels ``proportions_ztest``, two-sided), comparing the leader with the runner-up; "significant" at
p < ``ALPHA`` (0.05). Rates are hits / recipients of each variant (unique human opens, clicks or
conversions per delivered recipient, as the caller counts them).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from statsmodels.stats.proportion import proportions_ztest

ALPHA = 0.05


@dataclass(frozen=True)
class VariantRate:
    label: str
    recipients: int
    hits: int

    @property
    def rate(self) -> float:
        return self.hits / self.recipients if self.recipients else 0.0


@dataclass(frozen=True)
class Comparison:
    """``leader`` is None while no variant has a higher rate than every other; ``p_value`` is None when it
    cannot be computed (a variant without recipients, or no variance: all hits or none)."""

    variants: tuple[VariantRate, ...]
    leader: str | None
    p_value: float | None
    significant: bool


def variants_compare(counts: dict[str, tuple[int, int]], *, alpha: float = ALPHA) -> Comparison:
    """``counts``: label → (recipients, hits), at least two variants, 0 ≤ hits ≤ recipients.

    Raises ``ValueError`` for fewer than two variants or impossible counts."""
    if len(counts) < 2:
        raise ValueError("An A/B comparison needs at least two variants.")
    variants = tuple(VariantRate(label, int(n), int(h)) for label, (n, h) in counts.items())
    if any(v.recipients < 0 or not 0 <= v.hits <= v.recipients for v in variants):
        raise ValueError("Hits must be between 0 and the number of recipients.")
    ranked = sorted(variants, key=lambda v: v.rate, reverse=True)
    best, second = ranked[0], ranked[1]
    leader = best.label if best.rate > second.rate else None
    p_value = None
    if best.recipients and second.recipients:
        total_hits = best.hits + second.hits
        if 0 < total_hits < best.recipients + second.recipients:
            _, p = proportions_ztest([best.hits, second.hits], [best.recipients, second.recipients])
            p_value = float(p) if math.isfinite(p) else None
    significant = leader is not None and p_value is not None and p_value < alpha
    return Comparison(variants=variants, leader=leader, p_value=p_value, significant=significant)


def sample_pick(ids: list[int], *, share_percent: int, seed: int) -> list[int]:
    """The test sample: ``share_percent`` (1–100) of ``ids``, rounded half up, chosen by a seeded random
    generator over the sorted ids, so the same seed and audience always give the same sample."""
    if not 1 <= share_percent <= 100:
        raise ValueError("The test share is a percentage from 1 to 100.")
    population = sorted(ids)
    k = min(len(population), math.floor(len(population) * share_percent / 100 + 0.5))
    return sorted(random.Random(seed).sample(population, k))  # noqa: S311 (sampling, not security)
