"""Query values hold the schema: choice and boolean parameters refuse what their schema refuses, and id filters
are conditions on rows (an id that names no row of the workspace matches nothing).

The matrix is built from the served schema, so a new enum or boolean query parameter is covered by its
first commit: for every operation and every such parameter, an empty value, a value outside the choices
and the parameter given twice are each a 400 naming it, and every documented choice is not refused for
that parameter (aicmo.api.filters.query_value_errors, one check for every API view).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import resolve

from aicmo.api.filters import MAX_ID, IdFilter
from aicmo.api.schema import NO_NUL
from aicmo.models import Role
from analytics.models import Order
from tests.core.api_rows import one_row_per_resource

pytestmark = pytest.mark.django_db
METHODS = ("get", "post", "put", "patch", "delete")


def _url(path: str) -> str:
    return path.replace("{id}", "1").replace("{spec}", "thumb")


def query_parameters(served_schema):
    """(method, url, parameter, schema of one value) for every query parameter of every API operation."""
    for path, item in served_schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method in METHODS:
            for parameter in item.get(method, {}).get("parameters", ()):
                if parameter["in"] != "query":
                    continue
                schema = parameter["schema"]
                inner = schema.get("items", {}) if schema.get("type") == "array" else schema
                yield method, _url(path), parameter, inner


def choice_parameters(served_schema):
    """(method, url, name, allowed values as sent, is array) for every enum/boolean query parameter."""
    for method, url, parameter, inner in query_parameters(served_schema):
        if "enum" in inner:
            allowed = [str(v) for v in inner["enum"]]
        elif inner.get("type") == "boolean":
            allowed = ["true", "false"]
        else:
            continue
        yield method, url, parameter["name"], allowed, parameter["schema"].get("type") == "array"


def _fields(response) -> dict:
    return response.json()["error"]["fields"] if response.status_code == 400 else {}


def test_every_choice_and_boolean_query_parameter_refuses_a_value_outside_its_schema(
    api_client_for, served_schema
):
    client = api_client_for(Role.ADMIN)
    cases = list(choice_parameters(served_schema))
    names = {(url, name) for _, url, name, _, _ in cases}
    # the four the negative check found accepted, and the kinds of parameter the matrix must span
    assert {
        ("/api/v1/analytics/campaigns/1/", "part"),
        ("/api/v1/analytics/figures/attribution/", "model"),
        ("/api/v1/analytics/figures/channels/", "metric"),
        ("/api/v1/gateway/accounts/", "enabled"),
        ("/api/v1/crm/contacts/", "lifecycle"),  # an array of choices
    } <= names
    assert len(cases) > 40
    for method, url, name, allowed, array in cases:
        send = getattr(client, method)
        where = (method, url, name)
        if "" not in allowed:
            empty = send(f"{url}?{name}=")
            assert empty.status_code == 400 and _fields(empty)[name] == [
                f"Give one of: {', '.join(allowed)}."
            ], where
        wrong = send(f"{url}?{name}=n0t-a-ch0ice")
        assert wrong.status_code == 400, where
        assert _fields(wrong)[name] == [f'"n0t-a-ch0ice" is not one of: {", ".join(allowed)}.'], where
        twice = send(f"{url}?{name}={allowed[0]}&{name}={allowed[0]}")
        if array:
            assert name not in _fields(twice), where
        else:
            assert twice.status_code == 400 and _fields(twice)[name] == ["Give this parameter once."], where
        for value in allowed:
            assert name not in _fields(send(f"{url}?{name}={value}")), (*where, value)


def test_the_refusal_is_made_before_any_query(api_client_for):
    client = api_client_for(Role.ADMIN)
    client.get("/api/v1/gateway/accounts/")  # the session and workspace lookups of a first request
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/gateway/accounts/?enabled=null")
    assert response.status_code == 400 and _fields(response) == {
        "enabled": ['"null" is not one of: true, false.']
    }
    assert not [q for q in queries.captured_queries if "gateway_" in q["sql"]]


def test_empty_is_a_value_where_the_schema_allows_it(api_client_for, served_schema):
    """A choice whose enum lists "" (nothing else does today) keeps it: the check reads the schema."""
    from aicmo.api.filters import _choice_words

    assert _choice_words(["", "a", True, 2]) == ["", "a", "true", "2"]
    allowed_empty = [
        (url, name) for _, url, name, allowed, _ in choice_parameters(served_schema) if "" in allowed
    ]
    client = api_client_for(Role.ADMIN)
    for url, name in allowed_empty:
        assert name not in _fields(client.get(f"{url}?{name}="))


def id_filters(served_schema):
    """(url, parameter) for every id filter (aicmo.api.filters.IdFilter) of every list."""
    for path, item in served_schema["paths"].items():
        if "get" not in item or "{" in path or not path.startswith("/api/v1/"):
            continue
        view = resolve(path).func
        action = view.actions.get("get") if hasattr(view, "actions") else None
        if action != "list":  # the exports share the list's FilterSet (and answer CSV)
            continue
        instance = view.cls(action=action)
        filterset = getattr(instance, "filterset_class", None)
        if filterset is None and getattr(instance, "filterset_fields", None):
            from aicmo.api.filters import DjangoFilterBackend

            filterset = DjangoFilterBackend().get_filterset_class(instance, instance.queryset)
        for name, filter_ in filterset.base_filters.items() if filterset else ():
            if isinstance(filter_, IdFilter):
                for parameter in item["get"].get("parameters", ()):
                    if parameter["name"] == name:
                        yield path, name


@pytest.fixture
def rows(workspace, other_workspace, member_factory, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return one_row_per_resource(workspace, member_factory), one_row_per_resource(
        other_workspace, member_factory
    )


def test_an_id_filter_naming_no_row_answers_an_empty_list(api_client_for, served_schema, rows):
    client = api_client_for(Role.ADMIN)
    filters = list(id_filters(served_schema))
    assert {
        ("/api/v1/analytics/orders/", "contact"),
        ("/api/v1/analytics/customer-values/", "contact"),
        ("/api/v1/publishing/events/", "campaign"),
        ("/api/v1/crm/contacts/", "list"),
        ("/api/v1/publishing/webhook-deliveries/", "endpoint"),
    } <= set(filters)
    for url, name in filters:
        parameter = next(p for p in served_schema["paths"][url]["get"]["parameters"] if p["name"] == name)
        assert parameter["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_ID}, (url, name)
        assert client.get(url).json()["count"] > 0, url  # so that an empty answer means the filter
        for value in (MAX_ID, MAX_ID - 1, 987654321):
            response = client.get(url, {name: value})
            assert response.status_code == 200 and response.json()["count"] == 0, (url, name, value)
        for value in (0, -1, MAX_ID + 1, "1.5", "x"):
            response = client.get(url, {name: value})
            assert response.status_code == 400 and name in _fields(response), (url, name, value)


def test_an_id_filter_matches_own_rows_only(api_client_for, rows, other_workspace):
    client = api_client_for(Role.VIEWER)
    own, foreign = rows
    own_order = Order.objects.get(pk=own["analytics/orders"])
    foreign_order = Order.objects.get(pk=foreign["analytics/orders"])
    assert foreign_order.workspace == other_workspace and foreign_order.contact_id
    mine = client.get("/api/v1/analytics/orders/", {"contact": own_order.contact_id}).json()
    assert [o["id"] for o in mine["results"]] == [own_order.pk]
    theirs = client.get("/api/v1/analytics/orders/", {"contact": foreign_order.contact_id})
    assert theirs.status_code == 200 and theirs.json()["count"] == 0  # as for an id that names nothing
    events = client.get("/api/v1/publishing/events/", {"campaign": foreign["publishing/campaigns"]})
    assert events.status_code == 200 and events.json()["count"] == 0
    assert (
        client.get("/api/v1/publishing/events/", {"campaign": own["publishing/campaigns"]}).json()["count"]
        == 1
    )


def valued_parameters(served_schema):
    """(method, url, name, schema of one value) for every query parameter whose schema needs a value: a
    number, a date or date-time, a string of minLength 1 or more (enums and booleans: the matrix above)."""
    for method, url, parameter, inner in query_parameters(served_schema):
        if "enum" in inner or inner.get("type") == "boolean":
            continue
        if (
            inner.get("type") in ("integer", "number")
            or inner.get("format") in ("date", "date-time")
            or inner.get("minLength", 0) >= 1
        ):
            yield method, url, parameter["name"], inner


def test_every_number_date_and_required_text_query_parameter_refuses_an_empty_value(
    api_client_for, served_schema
):
    """DRF and django-filter read `?date_to=` or `?page=` as absent; the schema says a date or an integer."""
    client = api_client_for(Role.ADMIN)
    cases = list(valued_parameters(served_schema))
    names = {(url, name) for _, url, name, _ in cases}
    assert {
        ("/api/v1/analytics/trends/series/", "date_to"),
        ("/api/v1/analytics/orders/", "ordered_before"),
        ("/api/v1/crm/contacts/", "min_score"),
        ("/api/v1/analytics/campaigns/compare/", "campaigns"),  # an array of ids
        ("/api/v1/media/assets/performers/", "channel"),  # text of minLength 1
    } <= names
    assert len(cases) > 40
    for method, url, name, schema in cases:
        send = getattr(client, method)
        empty = send(f"{url}?{name}=")
        assert empty.status_code == 400 and _fields(empty)[name] == ["Must not be empty."], (
            method,
            url,
            name,
        )
        if schema.get("type") == "integer":
            for value in ("0.5", "1e3", "x"):
                wrong = send(f"{url}?{name}={value}")
                assert wrong.status_code == 400, (method, url, name, value)
                assert _fields(wrong)[name] == ["Must be a whole number."], (method, url, name, value)


def datetime_parameters(served_schema):
    """(url, name) for every GET list's date-time query parameter."""
    for path, item in served_schema["paths"].items():
        if not path.startswith("/api/v1/") or "get" not in item:
            continue
        for parameter in item["get"].get("parameters", ()):
            if parameter["in"] == "query" and parameter["schema"].get("format") == "date-time":
                yield _url(path), parameter["name"]


# ISO 8601 allows offsets to ±23:59; PostgreSQL stores ±15:59 at most (a DataError: it was a 500 on orders)
OFFSET_VALUES = ["2026-03-29T02:30:00+22:29", "2026-03-29T02:30:00-23:59", "0286-09-07T09:21:14.6+22:29"]


@pytest.mark.parametrize("value", OFFSET_VALUES)
def test_every_datetime_query_parameter_takes_any_iso_offset(api_client_for, served_schema, value):
    client = api_client_for(Role.ADMIN)
    cases = list(datetime_parameters(served_schema))
    assert ("/api/v1/analytics/orders/", "ordered_after") in cases
    for url, name in cases:
        response = client.get(url, {name: value})
        assert response.status_code in (200, 404), (url, name, response.status_code)


def test_a_datetime_query_value_that_leaves_years_1_to_9999_in_utc_is_a_400(api_client_for):
    client = api_client_for(Role.ADMIN)
    response = client.get("/api/v1/analytics/orders/", {"ordered_after": "0001-01-01T00:00:00+23:00"})
    assert response.status_code == 400 and "ordered_after" in _fields(response)


def text_parameters(served_schema):
    """(method, url, name, schema) for every free-text query parameter: a string with no enum or format."""
    for method, url, parameter, inner in query_parameters(served_schema):
        if inner.get("type") == "string" and not {"enum", "format"} & inner.keys():
            yield method, url, parameter["name"], inner


def test_every_text_query_parameter_says_and_does_refuse_nul(api_client_for, served_schema, rows):
    """A NUL in a search, ordering or text filter is a 400 naming the parameter, as the schema's pattern
    says (before: DRF's search answered 400 while its schema allowed any text; a text filter would reach
    PostgreSQL, which refuses NUL in a string literal)."""
    import re

    client = api_client_for(Role.ADMIN)
    cases = list(text_parameters(served_schema))
    names = {(url, name) for _, url, name, _ in cases}
    assert {("/api/v1/crm/companies/", "search"), ("/api/v1/crm/contacts/", "ordering")} <= names
    for method, url, name, schema in cases:
        where = (method, url, name)
        assert not re.fullmatch(schema["pattern"], "a\x00b"), where
        response = getattr(client, method)(f"{url}?{name}=a%00b")
        assert response.status_code == 400 and name in _fields(response), (*where, response.content[:300])
        if schema["pattern"] == NO_NUL:
            assert re.fullmatch(schema["pattern"], "any text, even ünïcode"), where
