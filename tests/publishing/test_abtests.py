"""A/B decision statistics: the two-proportion z-test against the textbook formula, the leader and
significance rules, and the seeded test sample."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publishing.services.abtests import sample_pick, variants_compare


def pooled_z_p(h1: int, n1: int, h2: int, n2: int) -> float:
    """Two-sided p of the pooled two-proportion z-test, written out independently of statsmodels."""
    p = (h1 + h2) / (n1 + n2)
    z = (h1 / n1 - h2 / n2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))


def test_known_values():
    result = variants_compare({"A": (1000, 200), "B": (1000, 250)})
    assert result.leader == "B" and result.significant
    assert result.p_value == pytest.approx(0.00743, abs=5e-5)
    assert result.p_value == pytest.approx(pooled_z_p(200, 1000, 250, 1000))
    close = variants_compare({"A": (100, 20), "B": (100, 25)})
    assert close.leader == "B" and not close.significant and close.p_value > 0.05


@pytest.mark.parametrize(
    ("counts", "leader", "p_none"),
    [
        ({"A": (0, 0), "B": (10, 3)}, "B", True),  # a variant without recipients: no test
        ({"A": (10, 0), "B": (10, 0)}, None, True),  # nobody did anything: no variance, no leader
        ({"A": (10, 10), "B": (10, 10)}, None, True),
        ({"A": (50, 5), "B": (50, 5)}, None, False),  # a tie is no leader
    ],
)
def test_degenerate_counts_are_never_significant(counts, leader, p_none):
    result = variants_compare(counts)
    assert result.leader == leader and (result.p_value is None) is p_none and not result.significant


@pytest.mark.parametrize(
    "counts", [{"A": (10, 1)}, {"A": (10, 11), "B": (10, 1)}, {"A": (-1, 0), "B": (1, 0)}]
)
def test_impossible_input_is_refused(counts):
    with pytest.raises(ValueError, match=r"two variants|Hits must"):
        variants_compare(counts)


counts = st.integers(1, 5000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))


@given(a=counts, b=counts, c=counts)
def test_comparison_properties(a, b, c):
    result = variants_compare({"A": a, "B": b, "C": c})
    rates = {v.label: v.rate for v in result.variants}
    if result.leader is not None:
        assert rates[result.leader] == max(rates.values())
        assert sorted(rates.values())[-2] < rates[result.leader]
    if result.p_value is not None:
        assert 0.0 <= result.p_value <= 1.0
    assert result.significant == (
        result.leader is not None and result.p_value is not None and result.p_value < 0.05
    )
    swapped = variants_compare({"A": b, "B": a})
    assert swapped.p_value == variants_compare({"A": a, "B": b}).p_value


@given(
    ids=st.lists(st.integers(1, 10**6), unique=True, max_size=300),
    share=st.integers(1, 100),
    seed=st.integers(0, 2**32),
)
def test_sample_is_seeded_sized_and_drawn_from_the_audience(ids, share, seed):
    sample = sample_pick(ids, share_percent=share, seed=seed)
    assert sample == sample_pick(list(reversed(ids)), share_percent=share, seed=seed)
    assert set(sample) <= set(ids) and len(set(sample)) == len(sample)
    assert len(sample) == math.floor(len(ids) * share / 100 + 0.5)
