"""Schemathesis hooks for rules across two values (imported by tests/core/contract_hooks.py).

The schema states each of these rules in words (a field's `description`) because JSON Schema cannot relate
two values, or a value to the stored row or to today; the API answers a 400 naming the field. Each map below
moves a POSITIVE case (one the schema calls valid) into the stated rule, keeping the generated values where
they already fit and folding the others into range, so `positive_data_acceptance` holds the rest of the
request to the contract. Negative cases are left alone.

`map_case` rather than `before_generate_case`: schemathesis applies `map_case` to every phase's cases
(the coverage phase builds its cases without the strategy `before_generate_case` wraps).

"Today" is the workspace's local day, in a zone the hooks do not know: every date a hook picks relative to
today stays a day clear of it (local today is within a day of UTC's).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import schemathesis

FIRST_DAY = date(1900, 1, 1)  # aicmo.api.fields.FIRST_YEAR


def _positive(case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def _day(value) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _fold(day: date, low: date, high: date) -> date:
    """`day` if it lies in [low, high], else a day in that range that still depends on it."""
    if low <= day <= high:
        return day
    return low + timedelta(days=(day.toordinal() - low.toordinal()) % ((high - low).days + 1))


def _utc_today() -> date:
    return datetime.now(UTC).date()


def fit_span(values: dict, max_days: int) -> None:
    """date_from not after date_to and at most `max_days` before it; date_from alone: not after today and
    at most `max_days` before it (date_to defaults to today). date_to alone needs nothing: each default
    date_from lies inside the span."""
    first, last = _day(values.get("date_from")), _day(values.get("date_to"))
    if first is None:
        return
    if last is None:
        today = _utc_today()
        first = _fold(first, today - timedelta(days=max_days - 2), today - timedelta(days=1))
    else:
        first, last = min(first, last), max(first, last)
        first = _fold(first, last - timedelta(days=max_days), last)
        values["date_to"] = last.isoformat()
    values["date_from"] = first.isoformat()


# analytics.api_trends.TrendQuerySerializer: "not after date_to, at most 1096 days with it"
TREND_DAYS = 1095
# analytics.api.AttributionQuery: "not after date_to, at most 3660 days before it"
ATTRIBUTION_DAYS = 3660
# analytics.api_cohorts.CohortQuerySerializer: "at most 120 cohorts from date_from's to date_to's": a span of
# days that holds fewer than 120 weeks (or months) whatever weekday (or day of the month) it starts on
COHORT_DAYS = {"week": 119 * 7 - 7, "month": 118 * 28}


def cohort_days(values: dict) -> int:
    return COHORT_DAYS.get(values.get("grain"), COHORT_DAYS["month"])


@schemathesis.hook("map_case")
def map_two_value_rules(context, case):
    if not _positive(case):
        return case
    name = f"{context.operation.method.upper()} {context.operation.path}"
    if name == "GET /api/v1/analytics/trends/series/" and isinstance(case.query, dict):
        fit_span(case.query, TREND_DAYS)
    elif name == "GET /api/v1/analytics/figures/attribution/" and isinstance(case.query, dict):
        fit_span(case.query, ATTRIBUTION_DAYS)
    elif name == "GET /api/v1/analytics/cohorts/retention/" and isinstance(case.query, dict):
        fit_span(case.query, cohort_days(case.query))
    elif name == "POST /api/v1/analytics/cohorts/save-list/" and isinstance(case.body, dict):
        fit_span(case.body, cohort_days(case.body))
    elif name == "POST /api/v1/analytics/lifetime-fits/" and isinstance(case.body, dict):
        fit_lifetime_dates(case.body)
    elif name == "PATCH /api/v1/analytics/scores/settings/" and isinstance(case.body, dict):
        order_thresholds(case.body)
    elif name == "PATCH /api/v1/crm/custom-fields/{id}/" and isinstance(case.body, dict):
        keep_choices(case.body)
    elif name in MERGES and isinstance(case.body, dict):
        another_row(case.body, case.path_parameters or {})
    return case


MERGES = ("POST /api/v1/crm/contacts/{id}/merge/", "POST /api/v1/crm/companies/{id}/merge/")


def another_row(body: dict, path: dict) -> None:
    """crm.api.MergeSerializer / CompanyMergeSerializer: `duplicate` is "another row than the one in the
    path" (a row merged into itself is a 400): the next id (another row, or none: a 404)."""
    if isinstance(body.get("duplicate"), int) and body["duplicate"] == path.get("id"):
        body["duplicate"] += 1


def fit_lifetime_dates(body: dict) -> None:
    """analytics.lifetime_api.LifetimeFitStartSerializer: observation_date "not in the future", holdout_end
    "after the observation date and not in the future". With a holdout, the observation date is sent too
    (its default, yesterday, leaves the holdout only today, which the hooks cannot know)."""
    last = _utc_today() - timedelta(days=1)
    holdout = _day(body.get("holdout_end"))
    observed = _day(body.get("observation_date"))
    if holdout is None:
        if observed is not None:
            body["observation_date"] = _fold(observed, FIRST_DAY, last).isoformat()
        return
    observed = _fold(observed or holdout, FIRST_DAY, last - timedelta(days=1))
    body["observation_date"] = observed.isoformat()
    body["holdout_end"] = _fold(holdout, observed + timedelta(days=1), last).isoformat()


THRESHOLDS = ("low_threshold", "medium_threshold", "high_threshold")


def order_thresholds(body: dict) -> None:
    """analytics.api_scores.ScoreSettingsSerializer: after the change 0 < low < medium < high ≤ 100, a
    threshold left out keeping its stored value (which earlier calls of the run change): a body naming any
    threshold names all three, in order, starting from the lowest one it gave."""
    given = [body[name] for name in THRESHOLDS if isinstance(body.get(name), int)]
    if not given:
        return
    if len(given) == 3 and given == sorted(set(given)):
        return
    low = min(max(min(given), 1), 98)
    body.update(zip(THRESHOLDS, (low, low + 1, low + 2), strict=True))


def keep_choices(body: dict) -> None:
    """crm.api.CustomFieldSerializer (PATCH): "when the field is or becomes a choice field, it must have one
    [choice] afterwards"; the stored type decides, which earlier calls of the run change. A body that makes
    the field a choice field, or sends choices without a type, carries at least one choice."""
    becomes_choice = body.get("type") == "choice" or ("choices" in body and "type" not in body)
    if becomes_choice and not body.get("choices"):
        body["choices"] = [body.get("label") or "option"]
