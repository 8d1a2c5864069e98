"""Lifetime value of contacts: the per-contact purchase summary built in SQL, the fit job that runs the
BG/NBD and Gamma-Gamma models of `analytics.clv` on it, and the RFM scores of `analytics.rfm`.

**Summary** (`customer_summary`): one aggregate query over `Order`, in one currency, as of an observation
date (orders on workspace-local days up to and including it). A purchase is a *distinct purchase day*
(all orders of a contact on one local day are one purchase, as in Fader, Hardie & Lee 2005), so:

- ``frequency`` = purchase days − 1 (repeat purchases),
- ``recency_days`` = last purchase day − first purchase day,
- ``age_days`` = observation date − first purchase day,
- ``repeat_revenue`` = revenue of every purchase day but the first (the Gamma-Gamma input).

The summary is in **days**; the models are fitted in **weeks** (days / 7), the unit of the published
CDNOW parameters, so α is in weeks and horizons are converted from months at 365.25/12/7 weeks a month.
Built this way from the CDNOW sample the summary equals the papers' (x, t_x, T) exactly (tests).

Only orders with a contact count (erased contacts' orders have none); orders in other currencies are left
out rather than summed across currencies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Min, Sum
from django.utils import timezone

from aicmo.jobs import (
    JobCancelled,
    failure_is_final,
    job_advance,
    job_check_cancelled,
    job_enqueue,
    job_fail,
    job_finish,
    job_mark_running,
    job_set_total,
)
from aicmo.jobs import job_start as core_job_start
from aicmo.models import Job, Workspace

from . import clv, rfm
from .models import CustomerValue, LifetimeFit, Order
from .orders import clean_currency, default_currency
from .rollups import LocalDay, local_day_bounds, workspace_zone

JOB_KIND = "analytics.lifetime_fit"
CHUNK = 2000
MAX_MONTHS = 120
CENT = Decimal("0.01")
SUMMARY_COLUMNS = ("days", "orders", "revenue", "repeat_revenue", "first_day", "last_day", "r", "f", "m")


@dataclass
class Summary:
    """Column arrays of one summary, sorted by contact id (days are `date.toordinal()` numbers)."""

    observation_date: date
    contact_id: np.ndarray
    days: np.ndarray
    orders: np.ndarray
    revenue: np.ndarray
    repeat_revenue: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray
    r: np.ndarray
    f: np.ndarray
    m: np.ndarray

    def __len__(self) -> int:
        return int(self.contact_id.size)

    @property
    def frequency(self) -> np.ndarray:
        return self.days - 1

    @property
    def recency_days(self) -> np.ndarray:
        return self.last_day - self.first_day

    @property
    def age_days(self) -> np.ndarray:
        return self.observation_date.toordinal() - self.first_day

    @property
    def repeat_spend(self) -> np.ndarray:
        """Mean revenue of a repeat purchase day (0 without repeats)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.frequency > 0, self.repeat_revenue / np.maximum(self.frequency, 1), 0.0)

    def weeks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, t_x, T) in weeks, the models' input."""
        return self.frequency.astype(float), self.recency_days / 7.0, self.age_days / 7.0


def _ordinal(value) -> int:
    return (value if isinstance(value, date) else date.fromisoformat(str(value)[:10])).toordinal()


def _day_queryset(workspace_id: int, currency: str, start: datetime, end: datetime):
    """Orders in [start, end) grouped by contact and workspace-local day: amount and order count per day."""
    zone = workspace_zone(workspace_id)
    first = (
        Order.objects.filter(workspace_id=workspace_id, currency=currency, ordered_at__lt=end).aggregate(
            first=Min("ordered_at")
        )["first"]
        or start
    )
    first = max(first, start)
    return (
        Order.objects.filter(
            workspace_id=workspace_id,
            currency=currency,
            contact__isnull=False,
            ordered_at__gte=first,
            ordered_at__lt=end,
        )
        .values("contact_id", day=LocalDay("ordered_at", zone=zone, start=first, end=end))
        .annotate(amount=Sum("amount"), n=Count("id"))
        .order_by()
    )


def _stream(sql: str, params: list, size: int = CHUNK) -> Iterator[list[tuple]]:
    """Rows in lists of ``size`` through a server-side cursor on PostgreSQL (Django's chunked cursor, as
    ``QuerySet.iterator`` uses, and like it not behind ``DISABLE_SERVER_SIDE_CURSORS``, e.g. pgbouncer in
    transaction mode), so a million contacts never sit in the client's memory as rows."""
    server_side = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    with connection.chunked_cursor() if server_side else connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(size):
            yield rows


def customer_summary(*, workspace: Workspace | int, observation_date: date, currency: str) -> Summary:
    """Per-contact summary and RFM quintiles as of the end of ``observation_date`` (workspace-local): one
    query (days per contact → aggregate per contact → NTILE windows), streamed in chunks into arrays."""
    workspace_id = getattr(workspace, "pk", workspace)
    zone = workspace_zone(workspace_id)
    start, end = local_day_bounds(date(1970, 1, 1), observation_date, zone)
    inner, params = _day_queryset(workspace_id, currency, start, end).query.sql_with_params()
    quote = connection.ops.quote_name
    day, contact = quote("day"), quote("contact_id")
    # the inner query is compiled by Django; everything else here is fixed text
    sql = (
        f"SELECT contact_id, days, orders, revenue, repeat_revenue, first_day, last_day, {rfm.QUINTILES_SQL} "  # noqa: S608
        "FROM (SELECT contact_id, COUNT(*) AS days, SUM(n) AS orders, SUM(amount) AS revenue, "
        "SUM(CASE WHEN rn > 1 THEN amount ELSE 0 END) AS repeat_revenue, "
        "MIN(day) AS first_day, MAX(day) AS last_day "
        f"FROM (SELECT d.{contact} AS contact_id, d.{day} AS day, d.amount AS amount, d.n AS n, "
        f"ROW_NUMBER() OVER (PARTITION BY d.{contact} ORDER BY d.{day}) AS rn FROM ({inner}) d) w "
        "GROUP BY contact_id) c ORDER BY contact_id"
    )
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ("contact_id", *SUMMARY_COLUMNS)}
    for rows in _stream(sql, list(params)):
        ids, days, orders, revenue, repeat, first, last, r, f, m = zip(*rows, strict=True)
        parts["contact_id"].append(np.array(ids, dtype=np.int64))
        parts["days"].append(np.array([int(v) for v in days], dtype=np.int64))
        parts["orders"].append(np.array([int(v) for v in orders], dtype=np.int64))
        parts["revenue"].append(np.array([float(v) for v in revenue]))
        parts["repeat_revenue"].append(np.array([float(v) for v in repeat]))
        parts["first_day"].append(np.array([_ordinal(v) for v in first], dtype=np.int64))
        parts["last_day"].append(np.array([_ordinal(v) for v in last], dtype=np.int64))
        for name, values in (("r", r), ("f", f), ("m", m)):
            parts[name].append(np.array([int(v) for v in values], dtype=np.int64))
    arrays = {
        name: np.concatenate(chunks)
        if chunks
        else np.zeros(0, dtype=float if "revenue" in name else np.int64)
        for name, chunks in parts.items()
    }
    return Summary(observation_date=observation_date, **arrays)


def holdout_purchases(
    *,
    workspace: Workspace | int,
    contact_ids: np.ndarray,
    observation_date: date,
    holdout_end: date,
    currency: str,
) -> np.ndarray:
    """Purchase days of each of ``contact_ids`` (sorted) in the local days after ``observation_date`` up to
    and including ``holdout_end``: the actual side of the calibration-vs-holdout table."""
    workspace_id = getattr(workspace, "pk", workspace)
    zone = workspace_zone(workspace_id)
    start, end = local_day_bounds(observation_date + timedelta(days=1), holdout_end, zone)
    inner, params = _day_queryset(workspace_id, currency, start, end).query.sql_with_params()
    contact = connection.ops.quote_name("contact_id")
    sql = f"SELECT d.{contact}, COUNT(*) FROM ({inner}) d GROUP BY d.{contact}"  # noqa: S608
    counts = np.zeros(contact_ids.size)
    for rows in _stream(sql, list(params)):
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        at = np.searchsorted(contact_ids, ids)
        known = (at < contact_ids.size) & (contact_ids[np.minimum(at, contact_ids.size - 1)] == ids)
        counts[at[known]] = np.array([row[1] for row in rows], dtype=float)[known]
    return counts


@dataclass(frozen=True)
class FitOptions:
    observation_date: date
    months: int
    monthly_discount: float
    currency: str
    holdout_end: date | None


def _local_today(workspace_id: int) -> date:
    return timezone.now().astimezone(workspace_zone(workspace_id)).date()


def clean_fit_options(
    *,
    workspace: Workspace | int,
    observation_date: date | None = None,
    months: int = 12,
    monthly_discount: float = 0.01,
    currency: str = "",
    holdout_end: date | None = None,
) -> FitOptions:
    """Defaults and checks: the observation date defaults to yesterday and may not be in the future; the
    holdout (optional) ends after it and not in the future; 1–120 months; a discount rate of 0–1 a month.
    Raises ValidationError naming the field."""
    today = _local_today(getattr(workspace, "pk", workspace))
    observation_date = observation_date or today - timedelta(days=1)
    if observation_date > today:
        raise ValidationError({"observation_date": "Must not be in the future."})
    if holdout_end is not None and not observation_date < holdout_end <= today:
        raise ValidationError({"holdout_end": "Must be after the observation date and not in the future."})
    if not 1 <= int(months) <= MAX_MONTHS:
        raise ValidationError({"months": f"From 1 to {MAX_MONTHS}."})
    if not 0 <= float(monthly_discount) <= 1:
        raise ValidationError({"monthly_discount": "A monthly rate from 0 to 1 (0.01 = 1 %)."})
    return FitOptions(
        observation_date=observation_date,
        months=int(months),
        monthly_discount=float(monthly_discount),
        currency=clean_currency(currency or default_currency()),
        holdout_end=holdout_end,
    )


def lifetime_fit_start(*, workspace: Workspace, options: FitOptions, by=None) -> Job:
    """Open the Job and the `LifetimeFit` and queue the fit on the ``rollups`` queue after commit."""
    from .tasks import lifetime_fit_task

    with transaction.atomic():
        job = core_job_start(
            workspace=workspace,
            kind=JOB_KIND,
            by=by,
            label=f"Lifetime value as of {options.observation_date.isoformat()}",
            params={
                "observation_date": options.observation_date.isoformat(),
                "months": options.months,
                "monthly_discount": options.monthly_discount,
                "currency": options.currency,
                "holdout_end": options.holdout_end.isoformat() if options.holdout_end else None,
            },
        )
        LifetimeFit.objects.create(
            workspace=workspace,
            job=job,
            observation_date=options.observation_date,
            holdout_end=options.holdout_end,
            currency=options.currency,
            months=options.months,
            monthly_discount=options.monthly_discount,
        )
        job_enqueue(lifetime_fit_task, job.pk, job_id=job.pk)
    return job


@dataclass
class Scores:
    expected_purchases: np.ndarray
    p_alive: np.ndarray
    expected_spend: np.ndarray
    clv: np.ndarray


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def lifetime_predict(summary: Summary, fit: LifetimeFit) -> Scores:
    """Fit both models on ``summary`` and score every contact; records params and diagnostics on ``fit``
    (a model that cannot be fitted leaves its predictions null and its reason in ``fit.error``)."""
    n = len(summary)
    x, t_x, T = summary.weeks()
    horizon = fit.months * clv.WEEKS_PER_MONTH
    scores = Scores(_nan(n), _nan(n), _nan(n), _nan(n))
    errors = []
    try:
        bg = clv.bgnbd_fit(x, t_x, T)
    except clv.FitError as exc:
        bg = None
        errors.append(str(exc))
    if bg is not None:
        fit.bgnbd = bg.as_dict()
        scores.expected_purchases = clv.bgnbd_conditional_purchases(bg.params, horizon, x, t_x, T)
        scores.p_alive = clv.bgnbd_p_alive(bg.params, x, t_x, T)
    try:
        gg = clv.gamma_gamma_fit(x, summary.repeat_spend)
    except clv.FitError as exc:
        gg = None
        errors.append(str(exc))
    if gg is not None:
        fit.gamma_gamma = gg.as_dict()
        scores.expected_spend = clv.gamma_gamma_expected_spend(gg.params, x, summary.repeat_spend)
    if bg is not None and gg is not None:
        scores.clv = clv.clv(
            bg.params,
            scores.expected_spend,
            x,
            t_x,
            T,
            months=fit.months,
            monthly_discount=fit.monthly_discount,
        )
        if fit.holdout_end:
            actual = holdout_purchases(
                workspace=fit.workspace_id,
                contact_ids=summary.contact_id,
                observation_date=fit.observation_date,
                holdout_end=fit.holdout_end,
                currency=fit.currency,
            )
            weeks = (fit.holdout_end - fit.observation_date).days / 7.0
            fit.calibration = clv.calibration_table(bg.params, x, t_x, T, actual, weeks).as_dict()
    fit.error = " ".join(errors)
    return scores


def _money(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(CENT, rounding=ROUND_HALF_UP)


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _rows(summary: Summary, scores: Scores, fit: LifetimeFit, lo: int, hi: int) -> list[CustomerValue]:
    rows = []
    for i in range(lo, hi):
        orders = int(summary.orders[i])
        revenue = _money(summary.revenue[i])
        r, f = int(summary.r[i]), int(summary.f[i])
        rows.append(
            CustomerValue(
                workspace_id=fit.workspace_id,
                contact_id=int(summary.contact_id[i]),
                fit=fit,
                orders=orders,
                revenue=revenue,
                aov=(revenue / orders).quantize(CENT, rounding=ROUND_HALF_UP),
                first_order=date.fromordinal(int(summary.first_day[i])),
                last_order=date.fromordinal(int(summary.last_day[i])),
                frequency=int(summary.days[i]) - 1,
                recency_days=int(summary.last_day[i] - summary.first_day[i]),
                age_days=summary.observation_date.toordinal() - int(summary.first_day[i]),
                expected_purchases=_finite(scores.expected_purchases[i]),
                p_alive=_finite(scores.p_alive[i]),
                expected_spend=_finite(scores.expected_spend[i]),
                clv=_finite(scores.clv[i]),
                r_score=r,
                f_score=f,
                m_score=int(summary.m[i]),
                segment=rfm.segment(r, f),
            )
        )
    return rows


UPDATED = [
    f.name for f in CustomerValue._meta.concrete_fields if f.name not in ("id", "contact", "workspace")
]


def lifetime_fit_run(*, job_id: int) -> int:
    """The fit job: summary, both fits, per-contact values upserted in chunks of `CHUNK` (each chunk its
    own transaction, so progress is visible and memory stays bounded), then the values of contacts no
    longer in the summary are removed. Re-running the job redoes it all (idempotent). Returns the number
    of contacts scored; 0 when the job is gone or finished."""
    fit = LifetimeFit.objects.filter(job_id=job_id).select_related("job").first()
    if fit is None or not job_mark_running(job_id=job_id):
        return 0
    try:
        summary = customer_summary(
            workspace=fit.workspace_id, observation_date=fit.observation_date, currency=fit.currency
        )
        fit.customers = len(summary)
        job_set_total(job_id=job_id, total=len(summary))
        scores = lifetime_predict(summary, fit)
        fit.save(update_fields=["customers", "bgnbd", "gamma_gamma", "calibration", "error"])
        for lo in range(0, len(summary), CHUNK):
            job_check_cancelled(job_id)
            hi = min(lo + CHUNK, len(summary))
            with transaction.atomic():
                CustomerValue.objects.bulk_create(
                    _rows(summary, scores, fit, lo, hi),
                    update_conflicts=True,
                    unique_fields=["contact"],
                    update_fields=UPDATED,
                )
            job_advance(job_id=job_id, done=hi - lo)
        CustomerValue.objects.filter(workspace_id=fit.workspace_id).exclude(fit=fit).delete()
    except JobCancelled:
        return 0
    except Exception as exc:
        if failure_is_final(exc):
            fit.error = f"{fit.error} {type(exc).__name__}: {exc}".strip()
            LifetimeFit.objects.filter(pk=fit.pk).update(error=fit.error)
            job_fail(job_id=job_id, message=fit.error)
        raise
    fit.finished_at = timezone.now()
    fit.save(update_fields=["finished_at"])
    job_finish(
        job_id=job_id,
        message=fit.error,
        result={"fit": fit.pk, "customers": fit.customers, "converged": fit.bgnbd.get("converged")},
    )
    return fit.customers
