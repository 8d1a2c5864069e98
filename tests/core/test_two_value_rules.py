"""Rules across two values, as the schema states them and the contract test's hooks apply them
(tests/core/contract_hooks_rules.py): every request date's years (a pattern the schema publishes), a choice
custom field's choices (the body's anyOf), and the orders and spans the descriptions state (the hooks map a
schema-valid request into them; here the API must accept every request they produce)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from aicmo.api.fields import DATE_YEARS_PATTERN, FIRST_YEAR, LAST_YEAR, CalendarDateField
from aicmo.models import Role
from crm.models import FieldType
from tests.core import contract_hooks_rules as rules

# the CLI's hook, not wanted on this process' schemathesis runs (tests/core/test_api_fuzz.py)
schemathesis.hooks.unregister(rules.map_two_value_rules)

YEARS_MESSAGE = f"Use a day in the years {FIRST_YEAR} to {LAST_YEAR}."
HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def schema(api_client_for):
    return api_client_for(role=Role.VIEWER).get("/api/schema/?format=json").json()


def _request_dates(schema) -> list[tuple[str, str, str, str, dict]]:
    """(method, path, "query" or "body", name, its schema) of every request date the schema publishes."""
    components = schema["components"]["schemas"]
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            found += [
                (method, path, "query", p["name"], p["schema"])
                for p in operation.get("parameters", [])
                if p["schema"].get("format") == "date"
            ]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = body.get("schema", {}).get("$ref", "")
            properties = components[ref.rsplit("/", 1)[-1]].get("properties", {}) if ref else {}
            found += [
                (method, path, "body", k, v) for k, v in properties.items() if v.get("format") == "date"
            ]
    return found


def _refusal(field, value) -> list:
    try:
        field.run_validation(value)
    except serializers.ValidationError as exc:
        return exc.detail
    return []


@pytest.mark.parametrize("year", [1, 999, 1899, 1900, 1901, 2026, 8999, 9000, 9001, 9999])
def test_the_years_pattern_is_the_calendar_date_rule(year):
    inside = FIRST_YEAR <= year <= LAST_YEAR
    for day in (date(year, 1, 1), date(year, 12, 31)):
        text = day.isoformat()
        assert bool(re.search(DATE_YEARS_PATTERN, text)) is inside
        assert _refusal(CalendarDateField(), text) == ([] if inside else [YEARS_MESSAGE])


def test_every_request_date_publishes_the_years_and_is_refused_outside_them(schema, api_client_for):
    dates = _request_dates(schema)
    where = {(path, name) for _, path, _, name, _ in dates}
    assert {  # one of each kind: a query parameter, a body field, a nullable body field
        ("/api/v1/analytics/trends/series/", "date_from"),
        ("/api/v1/analytics/cohorts/save-list/", "cohort"),
        ("/api/v1/analytics/lifetime-fits/", "holdout_end"),
    } <= where
    client = api_client_for(role=Role.ADMIN)
    for method, path, location, name, published in dates:
        assert published["pattern"] == DATE_YEARS_PATTERN, (path, name)
        for day, refused in [("1899-12-31", 1), ("9001-01-01", 1), ("1900-01-01", 0), ("9000-12-31", 0)]:
            send = getattr(client, method)
            response = (
                send(path, {name: day}) if location == "query" else send(path, {name: day}, format="json")
            )
            fields = response.json().get("error", {}).get("fields", {}) if response.status_code == 400 else {}
            assert (YEARS_MESSAGE in fields.get(name, [])) is bool(refused), (
                path,
                name,
                day,
                response.content,
            )


CHOICES = [None, [], ["gold"]]


@pytest.mark.parametrize("type_", [None, *FieldType.values])
@pytest.mark.parametrize("choices", CHOICES)
def test_a_custom_field_body_is_accepted_exactly_when_its_schema_says(schema, api_client_for, type_, choices):
    """POST and PUT: the anyOf the schema publishes ("not a choice field, or one with choices") is the
    service's rule."""
    variants = {"anyOf": schema["components"]["schemas"]["CustomFieldRequest"]["anyOf"]}
    client = api_client_for(role=Role.ADMIN)
    body = {"key": "plan", "label": "Plan"}
    body.update({k: v for k, v in (("type", type_), ("choices", choices)) if v is not None})
    valid = jsonschema.Draft4Validator(variants).is_valid(body)
    assert valid is not (type_ == FieldType.CHOICE and not choices)
    created = client.post("/api/v1/crm/custom-fields/", body, format="json")
    assert (created.status_code == 201) is valid, created.content
    if not valid:
        assert created.json()["error"]["fields"] == {"choices": ["A choice field needs choices."]}
        return
    put = client.put(
        f"/api/v1/crm/custom-fields/{created.json()['id']}/", {**body, "label": "Tier"}, format="json"
    )
    assert put.status_code == 200, put.content


def _query(values: dict) -> dict:
    return {k: v for k, v in values.items() if v is not None}


DAYS = st.none() | st.dates(date(FIRST_YEAR, 1, 1), date(LAST_YEAR, 12, 31)).map(date.isoformat)


@HYPOTHESIS
@given(first=DAYS, last=DAYS)
def test_every_trend_and_attribution_span_the_hook_makes_is_accepted(api_client_for, first, last):
    client = api_client_for(role=Role.VIEWER)
    for path, max_days in (
        ("/api/v1/analytics/trends/series/", rules.TREND_DAYS),
        ("/api/v1/analytics/figures/attribution/", rules.ATTRIBUTION_DAYS),
    ):
        query = _query({"date_from": first, "date_to": last})
        rules.fit_span(query, max_days)
        response = client.get(path, query)
        assert response.status_code == 200, (path, query, response.content)


@HYPOTHESIS
@given(first=DAYS, last=DAYS, grain=st.sampled_from(["week", "month", None]))
def test_every_cohort_span_the_hook_makes_is_accepted(api_client_for, first, last, grain):
    query = _query({"date_from": first, "date_to": last, "grain": grain})
    rules.fit_span(query, rules.cohort_days(query))
    response = api_client_for(role=Role.VIEWER).get("/api/v1/analytics/cohorts/retention/", query)
    assert response.status_code == 200, (query, response.content)


def test_a_span_or_order_outside_the_described_one_is_a_400_naming_the_field(api_client_for):
    client = api_client_for(role=Role.VIEWER)
    for path, query, field in [
        ("/api/v1/analytics/trends/series/", {"date_from": "2026-02-01", "date_to": "2026-01-31"}, "date_to"),
        (
            "/api/v1/analytics/trends/series/",
            {"date_from": "2023-01-01", "date_to": "2026-01-01"},
            "date_from",
        ),
        (
            "/api/v1/analytics/figures/attribution/",
            {"date_from": "2010-01-01", "date_to": "2020-01-20"},
            "date_from",
        ),
        (
            "/api/v1/analytics/figures/attribution/",
            {"date_from": "2020-01-02", "date_to": "2020-01-01"},
            "date_to",
        ),
        (
            "/api/v1/analytics/cohorts/retention/",
            {"grain": "month", "date_from": "2000-01-31", "date_to": "2010-01-01"},
            "date_from",
        ),
    ]:
        response = client.get(path, query)
        assert response.status_code == 400 and field in response.json()["error"]["fields"], (path, query)
    # the longest spans the descriptions allow
    assert (
        client.get(
            "/api/v1/analytics/trends/series/", {"date_from": "2023-01-01", "date_to": "2025-12-31"}
        ).status_code
        == 200
    )
    assert (
        client.get(
            "/api/v1/analytics/figures/attribution/", {"date_from": "2010-01-01", "date_to": "2020-01-09"}
        ).status_code
        == 200
    )
    assert (
        client.get(
            "/api/v1/analytics/cohorts/retention/",
            {"grain": "month", "date_from": "2000-01-31", "date_to": "2009-12-01"},
        ).status_code
        == 200
    )


def test_a_trend_from_the_first_allowed_days_defaults_within_the_years(api_client_for):
    """date_to alone near the first allowed day: the default 90-day window starts no earlier than
    1900-01-01 instead of being refused."""
    response = api_client_for(role=Role.VIEWER).get(
        "/api/v1/analytics/trends/series/", {"date_to": "1900-01-05"}
    )
    assert response.status_code == 200, response.content


@HYPOTHESIS
@given(observed=DAYS, holdout=DAYS)
def test_every_lifetime_fit_the_hook_makes_is_accepted(api_client_for, observed, holdout):
    body = _query({"observation_date": observed, "holdout_end": holdout, "currency": "USD"})
    rules.fit_lifetime_dates(body)
    response = api_client_for(role=Role.ADMIN).post("/api/v1/analytics/lifetime-fits/", body, format="json")
    assert response.status_code == 202, (body, response.content)


THRESHOLD = st.none() | st.integers(1, 100)


@HYPOTHESIS
@given(
    stored=st.lists(st.integers(1, 100), min_size=3, max_size=3, unique=True),
    low=THRESHOLD,
    medium=THRESHOLD,
    high=THRESHOLD,
)
def test_every_threshold_change_the_hook_makes_is_accepted_whatever_is_stored(
    api_client_for, stored, low, medium, high
):
    admin = api_client_for(role=Role.ADMIN)
    settings_url = "/api/v1/analytics/scores/settings/"
    before = dict(zip(rules.THRESHOLDS, sorted(stored), strict=True))
    assert admin.patch(settings_url, before, format="json").status_code == 200
    body = _query({"low_threshold": low, "medium_threshold": medium, "high_threshold": high, "scale": 5})
    rules.order_thresholds(body)
    response = admin.patch(settings_url, body, format="json")
    assert response.status_code == 200, (before, body, response.content)


@pytest.mark.parametrize("stored", [FieldType.TEXT, FieldType.CHOICE])
@pytest.mark.parametrize("type_", [None, FieldType.TEXT, FieldType.CHOICE])
@pytest.mark.parametrize("choices", CHOICES)
def test_every_custom_field_patch_the_hook_makes_is_accepted_whatever_is_stored(
    api_client_for, stored, type_, choices
):
    admin = api_client_for(role=Role.ADMIN)
    created = admin.post(
        "/api/v1/crm/custom-fields/",
        {"key": "plan", "label": "Plan", "type": stored, "choices": ["gold"]},
        format="json",
    )
    assert created.status_code == 201
    body = _query({"label": "Tier", "type": type_, "choices": choices})
    rules.keep_choices(body)
    response = admin.patch(f"/api/v1/crm/custom-fields/{created.json()['id']}/", body, format="json")
    assert response.status_code == 200, (stored, body, response.content)
    # unmapped, the stored type decides: an empty list for a field that stays a choice field is refused
    if stored == FieldType.CHOICE and type_ in (None, FieldType.CHOICE) and choices == []:
        refused = admin.patch(
            f"/api/v1/crm/custom-fields/{created.json()['id']}/", {"choices": []}, format="json"
        )
        assert refused.status_code == 400 and "choices" in refused.json()["error"]["fields"]


def test_the_lifetime_fit_dates_hook_keeps_dates_that_fit():
    yesterday = date.today() - timedelta(days=2)
    body = {"observation_date": "2020-01-31", "holdout_end": yesterday.isoformat()}
    rules.fit_lifetime_dates(body)
    assert body == {"observation_date": "2020-01-31", "holdout_end": yesterday.isoformat()}
