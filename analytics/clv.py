"""Predictive lifetime value: the BG/NBD model of repeat purchases and the Gamma-Gamma model of spend,
fitted by maximum likelihood, and the discounted CLV that combines them. Pure numpy/scipy: arrays in,
arrays and dataclasses out; the database side is `analytics.lifetime`.

Inputs per customer (the papers' notation, time in any one unit — AICMO uses weeks, see
`analytics.lifetime.summary`):

- ``x``   repeat purchases (distinct purchase days − 1) up to the observation date,
- ``t_x`` recency: time from the first to the last purchase,
- ``T``   age: time from the first purchase to the observation date,
- ``m``   mean spend of the repeat purchases (the first purchase is left out, as in Fader & Hardie 2013).

Sources:

- BG/NBD: P. S. Fader, B. G. S. Hardie and K. L. Lee (2005), "'Counting Your Customers' the Easy Way: An
  Alternative to the Pareto/NBD Model", *Marketing Science* 24(2), 275–284 — likelihood eq. (6),
  E[X(t)] eq. (7), P(alive) and the conditional expectation E[Y(t) | x, t_x, T] eq. (10), and the
  technical note "Computing P(alive) Using the BG/NBD Model" (2008).
- Gamma-Gamma: P. S. Fader and B. G. S. Hardie (2013), "The Gamma-Gamma Model of Monetary Value"
  (technical note): the density of the mean spend z̄ of x transactions, eq. (4), and the conditional
  expectation E[M | p, q, γ, x, z̄], eq. (5).
- CLV: the discounted-cash-flow sum of the ``lifetimes`` library's ``customer_lifetime_value``
  (lifetimes 0.11 docs, "Estimating customer lifetime value using the Gamma-Gamma model"):
  CLV = Σ_{i=1..H} m̂ · (E[Y(i·M) | …] − E[Y((i−1)·M) | …]) / (1 + d)^i with H months of length M and a
  monthly discount rate d. lifetimes takes M = 4.345 weeks; we take the mean Gregorian month,
  365.25 / 12 / 7 = 4.3482 weeks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from scipy.special import gammaln, hyp2f1, poch

WEEKS_PER_MONTH = 365.25 / 12 / 7
MAX_ITERATIONS = 2000
# Nelder–Mead's continuation searches log-parameters in [-20, 20] (parameters between e^-20 ≈ 2e-9 and
# e^20 ≈ 5e8, α relative to the mean age): a likelihood that keeps rising towards a boundary (BG/NBD's
# a, b → ∞ when drop-out does not vary between customers) then has its maximum at the box's edge, where the
# simplex stops instead of walking the ridge until it runs out of evaluations.
LOG_BOUND = 20.0


class FitError(ValueError):
    """The data cannot identify the model (too few customers or no repeat purchases)."""


@dataclass(frozen=True)
class Fit:
    """A maximum-likelihood fit. ``params`` by name; ``log_likelihood`` is the total (not the mean) at the
    optimum; ``converged``/``message``/``iterations``/``evaluations`` come from scipy.optimize.minimize."""

    params: dict[str, float]
    log_likelihood: float
    converged: bool
    message: str
    iterations: int
    evaluations: int
    customers: int

    def as_dict(self) -> dict:
        return {
            "params": dict(self.params),
            "log_likelihood": self.log_likelihood,
            "converged": self.converged,
            "message": self.message,
            "iterations": self.iterations,
            "evaluations": self.evaluations,
            "customers": self.customers,
        }


def _compress(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows and their counts: customers sharing (x, t_x, T) add the same term to the likelihood,
    so the optimizer evaluates each distinct row once (CDNOW's 2,357 customers have 1,500 distinct rows)."""
    stacked = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    rows, counts = np.unique(stacked, axis=0, return_counts=True)
    return [rows[:, i] for i in range(rows.shape[1])], counts.astype(float)


def _minimize(neg_mean_ll, start: np.ndarray):
    """L-BFGS-B over log-parameters; when it stops without success, Nelder–Mead from where it stopped.

    L-BFGS-B ends "ABNORMAL" when its line search fails, e.g. on a flat ridge whose likelihood is noisy at
    the scale of the steps (BG/NBD's equal-drop-out ridge did that while its beta ratios were betaln
    differences; computed as rising factorials it converges there and no test input reaches this path now).
    Nelder–Mead (derivative-free; the method of the `lifetimes` package's fitters) stops by its own
    x/f tolerances there. The better of the two is returned; ``nit``/``nfev`` count both runs and the
    message names both outcomes."""
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    result = optimize.minimize(
        neg_mean_ll,
        start,
        method="L-BFGS-B",
        options={"maxiter": MAX_ITERATIONS, "ftol": 1e-13, "gtol": 1e-9},
    )
    if not result.success and np.all(np.isfinite(result.x)):
        polished = optimize.minimize(
            neg_mean_ll,
            result.x,
            method="Nelder-Mead",
            bounds=bounds,
            options={
                "maxiter": 20 * MAX_ITERATIONS,
                "maxfev": 40 * MAX_ITERATIONS,
                "xatol": 1e-9,
                "fatol": 1e-13,
            },
        )
        if polished.fun <= result.fun:
            polished.message = f"L-BFGS-B: {result.message or 'stopped'}; Nelder-Mead: {polished.message}"
            polished.nit += result.nit
            polished.nfev += result.nfev
            result = polished
    if not np.all(np.isfinite(result.x)):
        raise FitError("The optimizer left the parameter space.")
    return result


# --- BG/NBD ---------------------------------------------------------------------------------------------


def _log_rising(z, m) -> np.ndarray:
    """ln of the rising factorial (z)_m = Γ(z+m)/Γ(z) = z (z+1) … (z+m−1) for z > 0 and integer counts
    m ≥ 0, to about 1e-15 relative. scipy's ``poch`` multiplies the m factors for an integer m; where that
    product leaves the range of a double, (z)_m = (z)_k · (z+k)_(m−k) with k = m // 2, each half again.
    (ln Γ(z+m) − ln Γ(z) would lose |ln Γ(z)|·1e-16 absolute: ten digits once z ~ 1e6.)"""
    z, m = np.broadcast_arrays(np.asarray(z, dtype=float), np.asarray(m, dtype=float))
    shape, z, m = z.shape, z.ravel(), m.ravel()
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        product = poch(z, m)
    fits = np.isfinite(product) & (product > 1e-300) & (product < 1e300)
    out = np.log(np.where(fits, product, 1.0))
    if not fits.all():
        zs, ms = z[~fits], m[~fits]
        half = np.floor(ms / 2)
        out[~fits] = _log_rising(zs, half) + _log_rising(zs + half, ms - half)
    return out.reshape(shape)


def bgnbd_log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Per-customer log-likelihood of BG/NBD (FHL 2005 eq. 6) for ``params`` = (r, α, a, b), all > 0.

    ln L = ln Γ(r+x) − ln Γ(r) + r ln α
           + ln[ B(a, b+x)/B(a, b) · (α+T)^−(r+x) + 1{x>0} · B(a+1, b+x−1)/B(a, b) · (α+t_x)^−(r+x) ]."""
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    # B(a, b+x)/B(a, b) = (b)_x / (a+b)_x and B(a+1, b+x−1)/B(a, b) = a (b)_{x−1} / (a+b)_x in rising
    # factorials: as differences of betaln these cancel catastrophically once a, b reach ~1e6 (the ridge
    # of equal drop-out), leaving ~1e-10 of rounding noise that kept the optimizer from converging there.
    rising = _log_rising(a + b, x)
    never_left = _log_rising(b, x) - rising - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(
            x > 0,
            np.log(a) + _log_rising(b, np.maximum(x - 1, 0)) - rising - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return common + np.logaddexp(never_left, left)


def bgnbd_fit(x, t_x, T) -> Fit:
    """Maximum-likelihood (r, α, a, b) for customers' (x, t_x, T); optimized over log-parameters with
    L-BFGS-B. Raises FitError for fewer than 10 customers or no repeat purchases at all."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    if x.size < 10 or not np.any(x > 0):
        raise FitError("BG/NBD needs at least 10 customers, some with repeat purchases.")
    (ux, ut, uT), weight = _compress(x, t_x, T)
    total = weight.sum()
    scale = max(float(np.mean(T)), 1e-9)  # α starts at the typical age, so log α starts near 0

    def neg_mean_ll(theta):
        params = np.exp(theta) * np.array([1.0, scale, 1.0, 1.0])
        value = -np.dot(weight, bgnbd_log_likelihood(params, ux, ut, uT)) / total
        return value if np.isfinite(value) else 1e300

    result = _minimize(neg_mean_ll, np.zeros(4))
    r, alpha, a, b = np.exp(result.x) * np.array([1.0, scale, 1.0, 1.0])
    return Fit(
        params={"r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b)},
        log_likelihood=float(-result.fun * total),
        converged=bool(result.success),
        message=str(result.message),
        iterations=int(result.nit),
        evaluations=int(result.nfev),
        customers=int(x.size),
    )


def _bgnbd(params: dict) -> tuple[float, float, float, float]:
    return params["r"], params["alpha"], params["a"], params["b"]


def bgnbd_expected_purchases(params: dict, t) -> np.ndarray:
    """E[X(t)]: expected purchases of a new customer in (0, t] (FHL 2005 eq. 7)."""
    r, alpha, a, b = _bgnbd(params)
    t = np.asarray(t, dtype=float)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def _alive_odds(params: dict, x, t_x, T) -> np.ndarray:
    """δ_{x>0} · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x), computed in logs (large x overflows otherwise)."""
    r, alpha, a, b = _bgnbd(params)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = (
            np.log(a)
            - np.log(np.maximum(b + x - 1, 1e-300))
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        )
        return np.where(x > 0, np.exp(np.minimum(log_odds, 700.0)), 0.0)


def bgnbd_p_alive(params: dict, x, t_x, T) -> np.ndarray:
    """P(alive | x, t_x, T) = 1 / (1 + δ_{x>0} a/(b+x−1) ((α+T)/(α+t_x))^(r+x)) (FHL 2008 note)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    return 1.0 / (1.0 + _alive_odds(params, x, t_x, T))


def bgnbd_conditional_purchases(params: dict, t, x, t_x, T) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t] of a customer with that history (FHL 2005
    eq. 10). ``t`` is a scalar or broadcasts against the customer arrays."""
    r, alpha, a, b = _bgnbd(params)
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    t = np.asarray(t, dtype=float)
    head = (a + b + x - 1) / (a - 1)
    tail = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
        r + x, b + x, a + b + x - 1, t / (alpha + T + t)
    )
    return head * tail / (1.0 + _alive_odds(params, x, t_x, T))


# --- Gamma-Gamma ----------------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(params, x, m) -> np.ndarray:
    """Per-customer log density of the mean spend ``m`` of ``x`` ≥ 1 transactions (Fader & Hardie 2013
    eq. 4), ``params`` = (p, q, γ):

    ln f = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m + px ln x − (px+q) ln(γ + x m)."""
    p, q, gamma = params
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * m)
    )


def gamma_gamma_fit(x, m) -> Fit:
    """Maximum-likelihood (p, q, γ) from customers with x ≥ 1 repeat purchases and mean repeat spend m > 0
    (others are left out: the model is of the spend of repeat purchases). Raises FitError below 10."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]
    if x.size < 10:
        raise FitError("Gamma-Gamma needs at least 10 customers with repeat purchases of positive value.")
    (ux, um), weight = _compress(x, m)
    total = weight.sum()
    scale = float(np.mean(m))

    def neg_mean_ll(theta):
        params = np.exp(theta) * np.array([1.0, 1.0, scale])
        value = -np.dot(weight, gamma_gamma_log_likelihood(params, ux, um)) / total
        return value if np.isfinite(value) else 1e300

    result = _minimize(neg_mean_ll, np.zeros(3))
    p, q, gamma = np.exp(result.x) * np.array([1.0, 1.0, scale])
    return Fit(
        params={"p": float(p), "q": float(q), "gamma": float(gamma)},
        log_likelihood=float(-result.fun * total),
        converged=bool(result.success),
        message=str(result.message),
        iterations=int(result.nit),
        evaluations=int(result.nfev),
        customers=int(x.size),
    )


def gamma_gamma_expected_spend(params: dict, x, m) -> np.ndarray:
    """E[M | p, q, γ, x, m] = p (γ + x m) / (p x + q − 1) (Fader & Hardie 2013 eq. 5): the customer's mean
    shrunk toward the population mean p γ / (q − 1). A customer without repeat purchases gets that mean
    (x = 0). Undefined (nan) when q ≤ 1, where the population mean is infinite."""
    p, q, gamma = params["p"], params["q"], params["gamma"]
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    m = np.where(x > 0, m, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = p * (gamma + x * m) / (p * x + q - 1)
    return np.where(p * x + q - 1 > 0, value, np.nan)


# --- CLV ------------------------------------------------------------------------------------------------


def clv(
    bgnbd: dict,
    spend: np.ndarray,
    x,
    t_x,
    T,
    *,
    months: int,
    monthly_discount: float,
    weeks_per_month: float = WEEKS_PER_MONTH,
) -> np.ndarray:
    """Discounted value of the next ``months`` months: Σ_i spend · ΔE[Y]_i / (1 + d)^i with ΔE[Y]_i the
    expected purchases of month i (lifetimes' ``customer_lifetime_value``, see the module docstring). Time
    in weeks, like the fit. ``spend`` is the expected spend per purchase (`gamma_gamma_expected_spend`)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    total = np.zeros_like(x)
    previous = np.zeros_like(x)
    for i in range(1, months + 1):
        cumulative = bgnbd_conditional_purchases(bgnbd, i * weeks_per_month, x, t_x, T)
        total += spend * (cumulative - previous) / (1 + monthly_discount) ** i
        previous = cumulative
    return total


# --- diagnostics ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationRow:
    frequency: str
    customers: int
    actual: float
    expected: float


@dataclass
class Calibration:
    """Mean actual vs expected repeat purchases in a holdout period, by calibration frequency bin."""

    holdout: float
    rows: list[CalibrationRow] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "holdout": self.holdout,
            "rows": [
                {
                    "frequency": r.frequency,
                    "customers": r.customers,
                    "actual": r.actual,
                    "expected": r.expected,
                }
                for r in self.rows
            ],
        }


def calibration_table(
    params: dict, x, t_x, T, holdout_purchases, holdout: float, top: int = 7
) -> Calibration:
    """Bins 0 … top−1 and ``top+`` of calibration repeat purchases; per bin the mean actual holdout
    purchases and the mean of E[Y(holdout) | x, t_x, T] (the FHL 2005 Figure 4 comparison)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    actual = np.asarray(holdout_purchases, dtype=float)
    expected = bgnbd_conditional_purchases(params, holdout, x, t_x, T)
    table = Calibration(holdout=float(holdout))
    for k in range(top + 1):
        chosen = x >= top if k == top else x == k
        n = int(chosen.sum())
        if n:
            table.rows.append(
                CalibrationRow(
                    frequency=f"{top}+" if k == top else str(k),
                    customers=n,
                    actual=float(actual[chosen].mean()),
                    expected=float(expected[chosen].mean()),
                )
            )
    return table


# --- simulation (validation and benchmarks) -------------------------------------------------------------


def simulate_bgnbd(params: dict, T, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw (x, t_x) for customers observed for ``T`` time units under BG/NBD: λ ~ Gamma(r, 1/α),
    p ~ Beta(a, b); purchases at Poisson(λ) times, after each the customer leaves with probability p.
    Continuous time (the model's own), so recovery tests check the likelihood, not day rounding."""
    r, alpha, a, b = _bgnbd(params)
    T = np.asarray(T, dtype=float)
    n = T.size
    lam = rng.gamma(r, 1.0 / alpha, n)
    drop = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    now = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0, idx.size) / lam[idx]
        bought = now[idx] <= T[idx]
        done = idx[~bought]
        active[done] = False
        buyers = idx[bought]
        x[buyers] += 1
        t_x[buyers] = now[buyers]
        active[buyers[rng.random(buyers.size) < drop[buyers]]] = False
    return x, t_x


def simulate_gamma_gamma(params: dict, x, rng: np.random.Generator) -> np.ndarray:
    """Mean spend of ``x`` transactions per customer: ν ~ Gamma(q, 1/γ), each spend ~ Gamma(p, 1/ν); the
    mean of x such spends is Gamma(p x, 1/(ν x)). 0 where x = 0."""
    p, q, gamma = params["p"], params["q"], params["gamma"]
    x = np.asarray(x, dtype=float)
    nu = rng.gamma(q, 1.0 / gamma, x.size)
    safe = np.maximum(x, 1)
    return np.where(x > 0, rng.gamma(p * safe, 1.0 / (nu * safe)), 0.0)
