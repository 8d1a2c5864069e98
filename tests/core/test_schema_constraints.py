"""The schema states the constraints validation enforces, so a schema-valid value is not refused for its
shape (schemathesis' positive_data_acceptance) and a schema-violating one is not accepted."""

from __future__ import annotations

import random
import re

import pytest
from django.utils.text import slugify
from rest_framework import serializers

from aicmo.api.schema import NO_NUL, decimal_pattern
from crm.services.fields import KEY_PATTERN


@pytest.fixture
def schema(api_client_for):
    return api_client_for(role="viewer").get("/api/schema/?format=json").json()


def _request_props(schema, component):
    return schema["components"]["schemas"][component]["properties"]


def test_custom_field_key_pattern_is_the_slugify_rule():
    rng = random.Random(1)
    for _ in range(20000):
        key = "".join(rng.choice("ab0_- A.é") for _ in range(rng.randint(1, 8)))
        assert bool(re.match(KEY_PATTERN, key)) is (slugify(key) == key), key


@pytest.mark.parametrize(
    "field",
    [
        serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0),
        serializers.DecimalField(max_digits=5, decimal_places=0),
        serializers.DecimalField(max_digits=6, decimal_places=3),
    ],
)
def test_a_value_the_decimal_pattern_allows_is_accepted(field):
    rng = random.Random(2)
    for _ in range(5000):
        value = "".join(rng.choice("0123456789.-") for _ in range(rng.randint(0, 8)))
        try:
            field.run_validation(value)
            accepted = True
        except serializers.ValidationError:
            accepted = False
        if re.search(decimal_pattern(field), value):
            assert accepted, value  # schema-valid is accepted (the pattern may be stricter, never looser)


def test_request_strings_say_nul_is_refused_and_ids_have_a_range(schema):
    tag = _request_props(schema, "TagRequest")["name"]
    assert tag["pattern"] == NO_NUL and not re.search(NO_NUL, "a\x00b")
    contacts = schema["paths"]["/api/v1/crm/contacts/"]["get"]["parameters"]
    segment = next(p for p in contacts if p["name"] == "segment")["schema"]
    assert (segment["minimum"], segment["maximum"]) == (1, 2**63 - 1)
    assert "pattern" not in _request_props(schema, "Tag")["name"]  # responses are not constrained


def test_writes_that_need_a_field_say_so(schema):
    member_patch = schema["paths"]["/api/v1/members/{id}/"]["patch"]["requestBody"]["content"]
    assert member_patch["application/json"]["schema"]["required"] == ["role"]
    segment = schema["components"]["schemas"]["SegmentRequest"]
    assert "rules" in segment["required"] and segment["properties"]["rules"]["type"] == "object"
    layout = _request_props(schema, "LayoutRequest")["html"]
    assert re.search(layout["pattern"], "<div>{{ body | safe }}</div>")
    assert not re.search(layout["pattern"], "<div>no body</div>")


def test_a_repeated_conversion_answers_a_documented_200(schema, api_client_for):
    responses = schema["paths"]["/api/v1/publishing/conversions/"]["post"]["responses"]
    assert {"200", "201"} <= set(responses)
    client = api_client_for(role="marketer")
    body = {"order_id": "A-1", "value": "10", "currency": "EUR"}
    assert client.post("/api/v1/publishing/conversions/", body, format="json").status_code == 201
    assert client.post("/api/v1/publishing/conversions/", body, format="json").status_code == 200
