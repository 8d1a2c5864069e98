"""The schema states the constraints validation enforces, so a schema-valid value is not refused for its
shape (schemathesis' positive_data_acceptance) and a schema-violating one is not accepted."""

from __future__ import annotations

import random
import re

import pytest
import schemathesis
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.text import slugify
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from aicmo.api.bodies import published_schema
from aicmo.api.fields import EMAIL_PATTERN, CurrencyCodeField, TimeZoneField
from aicmo.api.schema import NO_NUL, NOT_BLANK, decimal_pattern
from aicmo.currencies import currency_codes
from aicmo.timezones import zone_names
from analytics.orders import CURRENCY_PATTERN, clean_currency
from crm.normalize import email_is_valid, normalize_email
from crm.segments import compile_rules, rule_conditions, validate_rules
from crm.services.fields import KEY_PATTERN
from publishing.services.inbound import hook_secret_check


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
    assert tag["pattern"] == NOT_BLANK and not re.search(NOT_BLANK, "a\x00b")
    assert _request_props(schema, "ContactListRequest")["description"]["oneOf"][0]["pattern"] == NO_NUL
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


def _accepts(field, value) -> bool:
    try:
        field.run_validation(value)
    except (serializers.ValidationError, DjangoValidationError):
        return False
    return True


@pytest.mark.parametrize("max_length", [None, 5])
def test_the_not_blank_pattern_is_exactly_what_a_trimmed_char_field_accepts(max_length):
    """Blank after trimming (any white space str.strip removes, e.g. NO-BREAK SPACE, LINE SEPARATOR) and NUL
    are refused; everything else of the length is accepted — matching the pattern, and nothing else."""
    field = serializers.CharField(max_length=max_length)
    rng = random.Random(3)
    alphabet = ["a", "é", " ", "\t", "\n", "\u00a0", "\u2028", "\u3000", "\x00", "\u200b", "0"]
    for _ in range(20000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
        assert _accepts(field, value) is bool(re.search(NOT_BLANK, value)), repr(value)
    assert _accepts(field, " x ") and not _accepts(field, "\u00a0\u2028")


def _enum(schema, prop: dict) -> list:
    ref = prop.get("$ref") or prop["allOf"][0]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["enum"]


def test_zone_and_currency_fields_accept_exactly_their_published_enum(schema):
    enum = _enum(schema, _request_props(schema, "CampaignRequest")["time_zone"])
    assert enum == list(zone_names()) and "Europe/Berlin" in enum
    codes = _enum(schema, _request_props(schema, "ConversionRequest")["currency"])
    assert codes == list(currency_codes()) and {"EUR", "USD", "JPY"} <= set(codes)
    zone, currency = TimeZoneField(), CurrencyCodeField()
    rng = random.Random(4)
    for name in [*rng.sample(enum, 50), "europe/berlin", "Mars/Olympus", " UTC", "", "12"]:
        assert _accepts(zone, name) is (name in enum), name
    for code in [*rng.sample(codes, 50), "XXY", "EU", "EURO", "", "12", "ÉUR"]:
        assert _accepts(currency, code) is (code in codes), code
    assert currency.run_validation("eur") == "EUR"  # lower case is upper-cased, as the services do


def test_the_order_currency_pattern_is_the_order_rule():
    rng = random.Random(5)
    for _ in range(20000):
        code = "".join(rng.choice("aZé1 -") for _ in range(rng.randint(0, 4)))
        try:
            clean_currency(code)
            cleaned = True
        except DjangoValidationError:
            cleaned = False
        if re.search(CURRENCY_PATTERN, code):
            assert cleaned, code
        if cleaned:
            assert re.search(CURRENCY_PATTERN, code.strip()), code


def test_a_body_with_unknown_keys_is_published_as_refused(schema, api_client_for):
    score_settings = schema["components"]["schemas"]["PatchedScoreSettingsRequest"]
    assert score_settings["additionalProperties"] is False
    weights = score_settings["properties"]["weights"]
    assert weights["additionalProperties"] is False and {"open", "click"} <= set(weights["properties"])
    response = api_client_for(role="admin").patch(
        "/api/v1/analytics/scores/settings/", {"inactive_days": 30, "colour": "red"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"colour": ["Not a score setting."]}


def test_every_rule_tree_the_schema_allows_compiles(workspace):
    """Rule trees drawn by schemathesis from the published schema of ``POST /crm/segments/evaluate/`` — the
    contract test's own generator — all compile for a workspace: the schema states the grammar, the fields
    and operators of the registry (`crm.api.rules_schema`), and nothing it allows is a 400."""
    operation = schemathesis.openapi.from_dict(published_schema())["/api/v1/crm/segments/evaluate/"]["POST"]
    drawn = []

    @settings(max_examples=300, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy())
    def compiles(case):
        drawn.append(case.body["rules"])
        assert validate_rules(case.body["rules"], workspace) == {}, case.body

    compiles()
    conditions = [node for tree in drawn for node in rule_conditions(tree)]
    assert {c["field"] for c in conditions} >= {"email", "lifecycle", "tags", "created_at", "score"}
    assert any("rules" in tree for tree in drawn)  # groups, not only single conditions


def test_a_range_given_high_first_is_the_same_range(workspace):
    rules = {"field": "engagement_score", "operator": "between", "value": [80, 20]}
    assert validate_rules(rules, workspace) == {}
    reversed_q = compile_rules(rules, workspace)
    assert str(reversed_q) == str(compile_rules({**rules, "value": [20, 80]}, workspace))


@settings(max_examples=400, database=None, deadline=None)
@given(st.from_regex(EMAIL_PATTERN, fullmatch=True))
def test_every_published_address_is_accepted(address):
    """The pattern is a subset of what the checks accept: crm's address rule (contacts, senders) and DRF's
    EmailField (senders, reply-to, conversions)."""
    assert normalize_email(address) == address
    serializers.EmailField().run_validation(address)


def test_the_address_pattern_refuses_what_the_check_refuses():
    for address in ["a@b.test", "a@b.local", "a@localhost", "a b@c.de", "a@b", "@b.de", "a..b@c.de"]:
        assert not re.search(EMAIL_PATTERN, address), address
        assert not email_is_valid(address), address


def test_the_basic_auth_secret_pattern_is_the_inbound_rule(schema):
    basic = schema["components"]["schemas"]["BasicAuthInboundHookCreateRequest"]["properties"]["secret"]
    rng = random.Random(6)
    for _ in range(20000):
        secret = "".join(
            rng.choice(["a", ":", " ", "\u00a0", "\u001c", "\ufeff", "\u00e9"]) for _ in range(5)
        )
        try:
            hook_secret_check(provider="postmark", secret=secret)
            accepted = True
        except DjangoValidationError:
            accepted = False
        assert accepted is bool(re.search(basic["pattern"], secret)), repr(secret)
    signing = schema["components"]["schemas"]["SigningKeyInboundHookCreateRequest"]["properties"]["secret"]
    assert signing["pattern"] == NOT_BLANK


def test_a_custom_value_under_no_definition_is_a_missing_row(api_client_for):
    """`custom` keys name the workspace's definitions: an unknown one is a 404 like a body id naming no row
    (the schema cannot list a workspace's keys); a malformed field beside it keeps the 400."""
    client = api_client_for(role="marketer")
    body = {"email": "ann@acme.io", "custom": {"nope": 1}}
    response = client.post("/api/v1/crm/contacts/", body, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["fields"] == {"custom.nope": ["Unknown custom field."]}
    response = client.post("/api/v1/crm/contacts/", {**body, "email": "not an address"}, format="json")
    assert response.status_code == 400


def test_rules_with_keys_outside_the_grammar_or_a_non_text_operator_are_a_400(api_client_for):
    client = api_client_for(role="marketer")
    url = "/api/v1/crm/segments/evaluate/"
    misspelt = {"op": "and", "rules": [{"field": "email", "operator": "eq", "vaule": "a@b.io"}]}
    response = client.post(url, {"rules": misspelt}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"rules.rules[0].vaule": ["Not a key of a condition."]}
    odd = {"field": "suppression", "operator": {}, "value": "any"}
    assert client.post(url, {"rules": odd}, format="json").status_code == 400  # was a 500 (unhashable)


def test_an_ip_address_is_published_by_its_protocol(schema):
    ip = _request_props(schema, "ConsentRequest")["ip"]
    assert ip["anyOf"] == [{"format": "ipv4"}, {"format": "ipv6"}]
    assert (ip["type"], ip["nullable"]) == ("string", True) and "pattern" not in ip


def test_a_null_ip_address_is_taken_as_the_schema_allows(api_client_for):
    client = api_client_for(role="marketer")
    contact = client.post("/api/v1/crm/contacts/", {"email": "ip@acme.io"}, format="json").json()
    url = f"/api/v1/crm/contacts/{contact['id']}/consent/"
    body = {"kind": "email", "granted": True, "source": "api", "ip": None}
    assert client.post(url, body, format="json").status_code == 201
    assert client.post(url, {**body, "ip": "not an ip"}, format="json").status_code == 400
