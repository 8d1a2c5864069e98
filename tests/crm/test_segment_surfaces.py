"""Numeric comparisons on text custom values, and segments that no longer compile: the same clean 400 /
form message on every surface (dashboard list, CSV exports, API count/preview/export, builder, runs)."""

from __future__ import annotations

import json

import pytest

from crm import services
from crm.models import Segment
from crm.segments import SegmentRuleError, saved_segment_q, segment_queryset
from tests.crm.factories import ContactFactory, CustomFieldFactory, SegmentFactory

BASE = "/api/v1/crm"


def rule(field, operator, value=None):
    return {"op": "and", "rules": [{"field": field, "operator": operator, "value": value}]}


@pytest.fixture
def mixed(workspace):
    CustomFieldFactory(workspace=workspace, key="n", type="number")
    values = {
        "five": 5,
        "half": 0.5,
        "abc": "abc",
        "twelve-text": "12",
        "mixed": "12abc",
        "yes": True,
        "none": None,
    }
    for name, value in values.items():
        ContactFactory(
            workspace=workspace, email=f"{name}@ex.com", custom={} if value is None else {"n": value}
        )
    return workspace


def emails(ws, rules):
    return sorted(e.split("@")[0] for e in segment_queryset(rules, ws).values_list("email", flat=True))


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("gt", 1, ["five"]),
        ("gte", 0, ["five", "half"]),
        ("lt", 100, ["five", "half"]),
        ("between", [0, 10], ["five", "half"]),
        ("eq", 12, []),
        ("in", [5, 12], ["five"]),
        ("neq", 5, ["abc", "half", "mixed", "none", "twelve-text", "yes"]),
        ("not_in", [5], ["abc", "half", "mixed", "none", "twelve-text", "yes"]),
        ("not_empty", None, ["abc", "five", "half", "mixed", "twelve-text", "yes"]),
        ("empty", None, ["none"]),
    ],
)
def test_numeric_comparison_only_matches_json_numbers(mixed, operator, value, expected):
    """Text ("abc", "12", "12abc") and booleans under a number field never reach a CAST: no DB error on
    PostgreSQL, no "12abc" read as 12 on SQLite; they behave like a missing value."""
    assert emails(mixed, rule("custom.n", operator, value)) == expected


@pytest.fixture
def broken_segment(workspace):
    """A saved segment on custom.budget, whose field is then deleted through the service."""
    field = CustomFieldFactory(workspace=workspace, key="budget", type="number")
    ContactFactory(workspace=workspace, email="member@ex.com", custom={"budget": 10})
    segment = services.segment_save(workspace=workspace, name="Big", rules=rule("custom.budget", "gt", 1))
    report = services.custom_field_delete(definition=field)
    assert report["segments"] == ["Big"]
    segment.refresh_from_db()
    assert "custom field 'budget' was deleted on" in segment.broken_reason
    return segment


@pytest.fixture
def uncompilable_segment(workspace):
    """A saved segment whose rules stopped compiling without being marked (e.g. written before checks)."""
    segment = SegmentFactory(workspace=workspace)
    ContactFactory(workspace=workspace, email="member@ex.com")
    Segment.objects.filter(pk=segment.pk).update(rules=rule("custom.gone", "eq", "x"))
    segment.refresh_from_db()
    return segment


@pytest.fixture(params=["broken_segment", "uncompilable_segment"])
def bad_segment(request):
    return request.getfixturevalue(request.param)


def test_saved_segment_q_raises_the_rule_error(bad_segment):
    with pytest.raises(SegmentRuleError):
        saved_segment_q(bad_segment)


def test_api_surfaces_answer_400(api_client_for, bad_segment):
    client = api_client_for("marketer")
    for url in (f"{BASE}/segments/{bad_segment.pk}/count/", f"{BASE}/segments/{bad_segment.pk}/preview/"):
        resp = client.get(url)
        assert resp.status_code == 400, url
        assert any(k.startswith("rules") for k in resp.json()["error"]["fields"])
    resp = client.get(f"{BASE}/contacts/export/?segment={bad_segment.pk}")
    assert resp.status_code == 400 and "segment" in resp.json()["error"]["fields"]
    resp = client.post(f"{BASE}/segments/evaluate/", {"rules": bad_segment.rules}, format="json")
    assert resp.status_code == 400  # the unsaved rules of the builder: the field is gone
    resp = client.post(f"{BASE}/verification-runs/", {"segment": bad_segment.pk}, format="json")
    assert resp.status_code == 400 and "segment" in resp.json()["error"]["fields"]


def test_dashboard_surfaces_answer_a_message(client_for, bad_segment):
    client = client_for("marketer")
    resp = client.get(f"/crm/?segment={bad_segment.pk}")
    body = resp.content.decode()
    assert resp.status_code == 200 and "The segment&#x27;s rules do not compile" in body
    assert "member@ex.com" not in body
    assert "member@ex.com" in client.get("/crm/").content.decode()
    resp = client.get(f"/crm/export.csv?segment={bad_segment.pk}", follow=True)
    assert resp.redirect_chain and "The segment&#x27;s rules do not compile" in resp.content.decode()
    resp = client.get(f"/crm/segments/{bad_segment.pk}/")
    assert resp.status_code == 200 and "The segment&#x27;s rules do not compile" in resp.content.decode()
    if bad_segment.broken_reason:
        assert "broken: custom field" in client.get("/crm/segments/").content.decode()


def test_dashboard_builder_count_reports_errors(client_for, uncompilable_segment):
    client = client_for("viewer")
    resp = client.post("/crm/segments/count/", {"rules": json.dumps(uncompilable_segment.rules)})
    assert resp.status_code == 200 and "Unknown field" in resp.content.decode()


def test_editing_a_broken_segment_clears_the_mark(api_client_for, broken_segment):
    client = api_client_for("marketer")
    resp = client.patch(
        f"{BASE}/segments/{broken_segment.pk}/", {"rules": rule("score", "gte", 0)}, format="json"
    )
    assert resp.status_code == 200 and resp.json()["broken_reason"] == ""
    assert client.get(f"{BASE}/segments/{broken_segment.pk}/count/").json() == {"count": 1}


def test_bad_segment_of_another_workspace_is_not_found(api_client_for, other_workspace):
    """A foreign segment is a 404 by path and, as a query parameter, matches nothing like an id that does
    not exist (an id filter), never its broken reason."""
    theirs = SegmentFactory(workspace=other_workspace, broken_reason="tag 'x' was deleted")
    client = api_client_for("marketer")
    assert client.get(f"{BASE}/segments/{theirs.pk}/count/").status_code == 404
    resp = client.get(f"{BASE}/contacts/export/?segment={theirs.pk}")
    body = b"".join(resp.streaming_content).decode()
    assert resp.status_code == 200 and "tag 'x'" not in body and len(body.splitlines()) == 1  # the header
