"""The lifetime-value models (analytics.clv): recovery of known parameters from simulated customers, the
published CDNOW parameters, and the prediction formulas against simulation and each other."""

from __future__ import annotations

import csv
from pathlib import Path

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import clv

DATA = Path(__file__).resolve().parent.parent / "data"

# Fader, Hardie & Lee (2005), "Counting your customers the easy way", CDNOW sample, 39-week calibration
# (section 5; time in weeks). Fader & Hardie (2013), "The Gamma-Gamma model of monetary value", the same
# sample's 946 customers with repeat purchases.
CDNOW_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
CDNOW_BGNBD_LL = -9582.4
CDNOW_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def cdnow_summary():
    with open(DATA / "cdnow_summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("x", "t_x", "T", "zbar"))


def within(fitted: dict, published: dict, tolerance: float) -> dict:
    """Relative errors above ``tolerance`` (empty when every parameter is within it)."""
    errors = {k: fitted[k] / v - 1 for k, v in published.items()}
    return {k: round(e, 4) for k, e in errors.items() if abs(e) > tolerance}


def test_cdnow_summary_fit_reproduces_the_published_parameters():
    x, t_x, T, zbar = cdnow_summary()
    bg = clv.bgnbd_fit(x, t_x, T)
    assert bg.converged and bg.customers == 2357
    assert within(bg.params, CDNOW_BGNBD, 0.01) == {}
    assert bg.log_likelihood == pytest.approx(CDNOW_BGNBD_LL, abs=0.1)
    gg = clv.gamma_gamma_fit(x, zbar)
    assert gg.converged and gg.customers == 946
    assert within(gg.params, CDNOW_GG, 0.01) == {}


def test_cdnow_conditional_expectation_of_the_papers_example():
    """FHL 2005, section 5: a customer with x = 2, t_x = 30.43, T = 38.86 is expected to make 1.226
    purchases in the next 39 weeks."""
    expected = clv.bgnbd_conditional_purchases(CDNOW_BGNBD, 39, 2, 30.43, 38.86)
    assert float(expected) == pytest.approx(1.226, abs=0.001)


@pytest.fixture(scope="module")
def simulated():
    true_bg = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    true_gg = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    rng = np.random.default_rng(20260)
    T = rng.uniform(26, 78, 20_000)
    x, t_x = clv.simulate_bgnbd(true_bg, T, rng)
    m = clv.simulate_gamma_gamma(true_gg, x, rng)
    return true_bg, true_gg, x, t_x, T, m


def test_bgnbd_recovers_simulated_parameters(simulated):
    """20,000 simulated customers: every parameter within 10 % (five other seeds gave errors up to 9.8 %),
    and the fitted likelihood is at least the likelihood of the true parameters (it is the maximum)."""
    true_bg, _, x, t_x, T, _ = simulated
    fit = clv.bgnbd_fit(x, t_x, T)
    assert fit.converged
    assert within(fit.params, true_bg, 0.10) == {}
    true_ll = clv.bgnbd_log_likelihood(list(true_bg.values()), x, t_x, T).sum()
    assert fit.log_likelihood >= true_ll


def test_gamma_gamma_recovers_simulated_parameters(simulated):
    """About 9,000 simulated repeat customers: p, q, γ within 15 % (p and γ trade off against each other),
    the population mean spend pγ/(q − 1) within 3 %, and the likelihood at least the true one."""
    _, true_gg, x, _, _, m = simulated
    fit = clv.gamma_gamma_fit(x, m)
    assert fit.converged and fit.customers == int((x > 0).sum())
    assert within(fit.params, true_gg, 0.15) == {}

    def mean(p):
        return p["p"] * p["gamma"] / (p["q"] - 1)

    assert mean(fit.params) == pytest.approx(mean(true_gg), rel=0.03)
    keep = x > 0
    true_ll = clv.gamma_gamma_log_likelihood(list(true_gg.values()), x[keep], m[keep]).sum()
    assert fit.log_likelihood >= true_ll


def test_expected_purchases_match_simulation():
    params = {"r": 0.5, "alpha": 6.0, "a": 0.7, "b": 2.5}
    rng = np.random.default_rng(1)
    x, _ = clv.simulate_bgnbd(params, np.full(200_000, 52.0), rng)
    assert x.mean() == pytest.approx(float(clv.bgnbd_expected_purchases(params, 52.0)), rel=0.02)


def test_conditional_expectation_agrees_with_the_unconditional_one():
    """Tower property: averaged over simulated histories at T, x + E[Y(t) | x, t_x, T] is E[X(T + t)]."""
    params = {"r": 0.5, "alpha": 6.0, "a": 0.7, "b": 2.5}
    rng = np.random.default_rng(2)
    T = np.full(200_000, 30.0)
    x, t_x = clv.simulate_bgnbd(params, T, rng)
    ahead = x + clv.bgnbd_conditional_purchases(params, 20.0, x, t_x, T)
    assert ahead.mean() == pytest.approx(float(clv.bgnbd_expected_purchases(params, 50.0)), rel=0.02)


def test_p_alive_is_one_without_repeats_and_falls_with_silence():
    params = CDNOW_BGNBD
    assert clv.bgnbd_p_alive(params, 0, 0, 30) == 1.0
    recent, silent = clv.bgnbd_p_alive(params, [5, 5], [29, 5], [30, 30])
    assert 0 < silent < recent <= 1
    # a very frequent buyer long gone: the odds overflow float64 without the log form
    assert clv.bgnbd_p_alive(params, 2000, 1, 500) == pytest.approx(0.0, abs=1e-12)


def test_gamma_gamma_expected_spend_shrinks_toward_the_population_mean():
    params = CDNOW_GG
    population = params["p"] * params["gamma"] / (params["q"] - 1)
    assert float(clv.gamma_gamma_expected_spend(params, 0, 0)) == pytest.approx(population)
    one, many = clv.gamma_gamma_expected_spend(params, [1, 50], [100.0, 100.0])
    assert population < one < many < 100.0


def test_clv_sums_discounted_monthly_purchases():
    """With no discount the CLV is spend × E[Y(horizon)]; discounting lowers it; a month is 365.25/12 days."""
    params = CDNOW_BGNBD
    x, t_x, T = np.array([2.0, 0.0]), np.array([30.43, 0.0]), np.array([38.86, 38.86])
    spend = np.array([20.0, 30.0])
    flat = clv.clv(params, spend, x, t_x, T, months=12, monthly_discount=0.0)
    expected = spend * clv.bgnbd_conditional_purchases(params, 12 * 365.25 / 12 / 7, x, t_x, T)
    assert flat == pytest.approx(expected)
    discounted = clv.clv(params, spend, x, t_x, T, months=12, monthly_discount=0.01)
    assert np.all(discounted < flat) and np.all(discounted > flat / 1.01**12)


def test_calibration_table_bins_by_calibration_frequency():
    x = np.array([0, 0, 1, 3, 7, 9], dtype=float)
    t_x = np.array([0, 0, 5, 20, 30, 35], dtype=float)
    T = np.full(6, 39.0)
    actual = np.array([0, 1, 1, 2, 4, 6], dtype=float)
    table = clv.calibration_table(CDNOW_BGNBD, x, t_x, T, actual, 39.0).as_dict()
    assert [(r["frequency"], r["customers"], r["actual"]) for r in table["rows"]] == [
        ("0", 2, 0.5),
        ("1", 1, 1.0),
        ("3", 1, 2.0),
        ("7+", 2, 5.0),
    ]
    expected = clv.bgnbd_conditional_purchases(CDNOW_BGNBD, 39.0, x, t_x, T)
    assert table["rows"][-1]["expected"] == pytest.approx(expected[4:].mean())


@pytest.mark.parametrize(
    ("x", "t_x", "T"),
    [(np.zeros(50), np.zeros(50), np.full(50, 10.0)), (np.ones(5), np.ones(5), np.full(5, 10.0))],
)
def test_fits_refuse_data_that_cannot_identify_the_model(x, t_x, T):
    with pytest.raises(clv.FitError):
        clv.bgnbd_fit(x, t_x, T)
    with pytest.raises(clv.FitError):
        clv.gamma_gamma_fit(x, np.zeros_like(x))


def test_bgnbd_on_a_ridge_of_equal_dropout_ends_converged_at_the_better_likelihood():
    """641 customers from a demo seed whose drop-out probability barely varies: the likelihood rises along
    a, b → ∞ with a/(a+b) fixed. With the beta functions' ratios taken as differences of betaln, rounding
    noise (~1e-10 at a, b ~ 1e6) made L-BFGS-B stop "ABNORMAL" at -3590.416 and, on some CPUs, Nelder–Mead
    run out of evaluations (not converged, the demo's fit flagged). Computed as rising factorials the
    likelihood is smooth there and the fit ends converged, on the same ridge, no worse."""
    rows = np.genfromtxt(DATA / "bgnbd_no_dropout_heterogeneity.csv", delimiter=",", names=True)
    fit = clv.bgnbd_fit(rows["x"], rows["t_x_days"] / 7, rows["T_days"] / 7)
    assert fit.converged, fit.message
    assert fit.log_likelihood >= -3590.416
    p = fit.params
    assert p["a"] > 1e4 and p["b"] > 1e4  # the beta mixing distribution collapsed to a point …
    assert p["a"] / (p["a"] + p["b"]) == pytest.approx(0.1452, abs=0.002)  # … at this drop-out probability
    weeks = (rows["x"], rows["t_x_days"] / 7, rows["T_days"] / 7)
    expected = clv.bgnbd_conditional_purchases(p, 13, *weeks)
    alive = clv.bgnbd_p_alive(p, *weeks)
    assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
    assert np.all((alive >= 0) & (alive <= 1))


@settings(max_examples=300, deadline=None)
@given(z=st.floats(min_value=1e-4, max_value=1e12), m=st.integers(min_value=0, max_value=500))
def test_log_rising_factorial_matches_exact_arithmetic(z, m):
    """ln (z)_m, the ratio of gamma functions inside the BG/NBD likelihood, against 50-digit arithmetic over
    the range a fit can reach: parameters from e^-20 to beyond e^20, repeat counts into the hundreds."""
    with mpmath.workdps(50):
        exact = float(mpmath.log(mpmath.rf(mpmath.mpf(z), m)))
    assert float(clv._log_rising(z, m)) == pytest.approx(exact, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("params", [CDNOW_BGNBD, {"r": 2.0, "alpha": 0.5, "a": 3e5, "b": 1.8e6}])
def test_bgnbd_likelihood_is_the_textbook_formula(params):
    """The rising-factorial form is FHL (2005) eq. 6 term for term: checked per customer against the formula
    written with beta functions in 50-digit arithmetic, at CDNOW's parameters and on the equal-drop-out
    ridge where double-precision betaln differences lose ten digits."""
    x, t_x, T, _ = cdnow_summary()
    ours = clv.bgnbd_log_likelihood(tuple(params.values()), x[:200], t_x[:200], T[:200])
    r, alpha, a, b = (mpmath.mpf(v) for v in params.values())
    with mpmath.workdps(50):
        for i in range(200):
            xi, ti, Ti = int(x[i]), mpmath.mpf(t_x[i]), mpmath.mpf(T[i])
            term = mpmath.beta(a, b + xi) / mpmath.beta(a, b) * (alpha + Ti) ** -(r + xi)
            if xi > 0:
                term += mpmath.beta(a + 1, b + xi - 1) / mpmath.beta(a, b) * (alpha + ti) ** -(r + xi)
            exact = mpmath.loggamma(r + xi) - mpmath.loggamma(r) + r * mpmath.log(alpha) + mpmath.log(term)
            assert ours[i] == pytest.approx(float(exact), rel=1e-11, abs=1e-11)
