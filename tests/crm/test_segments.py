"""Segment rule compiler: every operator, nesting, validation paths, one query, and a Hypothesis oracle."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm import services
from crm.models import Contact, Lifecycle
from crm.segments import SegmentRuleError, compile_rules, segment_queryset, validate_rules
from tests.crm.factories import CompanyFactory, ContactFactory, CustomFieldFactory

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)


def emails(ws, rules):
    return sorted(segment_queryset(rules, ws, now=NOW).values_list("email", flat=True))


def cond(field, operator, value=None):
    return {"op": "and", "rules": [{"field": field, "operator": operator, "value": value}]}


@pytest.fixture
def people(workspace):
    acme = CompanyFactory(workspace=workspace, name="Acme Corp", domain="acme.io")
    CustomFieldFactory(workspace=workspace, key="budget", label="Budget", type="number")
    CustomFieldFactory(workspace=workspace, key="plan", label="Plan", type="choice", choices=["free", "pro"])
    CustomFieldFactory(workspace=workspace, key="renewal", label="Renewal", type="date")
    CustomFieldFactory(workspace=workspace, key="vip", label="VIP", type="bool")
    CustomFieldFactory(workspace=workspace, key="city", label="City", type="text")
    a = ContactFactory(
        workspace=workspace,
        email="ann@acme.io",
        first_name="Ann",
        title="CTO",
        company=acme,
        engagement_score=80,
        engagement_tier="high",
        lifecycle=Lifecycle.ENGAGED,
        last_engaged_at=NOW - dt.timedelta(days=2),
        custom={"budget": 5000, "plan": "pro", "renewal": "2026-07-01", "vip": True, "city": "Paris"},
    )
    b = ContactFactory(
        workspace=workspace,
        email="bob@beta.com",
        first_name="Bob",
        title="Marketing Lead",
        engagement_score=30,
        engagement_tier="low",
        last_engaged_at=NOW - dt.timedelta(days=40),
        custom={"budget": 100.5, "plan": "free", "vip": False},
    )
    c = ContactFactory(
        workspace=workspace, email="cy@gamma.org", first_name="", title="", engagement_score=0, custom={}
    )
    Contact.objects.filter(pk=a.pk).update(created_at=NOW - dt.timedelta(days=10))
    Contact.objects.filter(pk=b.pk).update(created_at=NOW - dt.timedelta(days=100))
    Contact.objects.filter(pk=c.pk).update(created_at=NOW - dt.timedelta(days=1))
    services.contacts_tag(workspace=workspace, contact_ids=[a.pk, b.pk], names=["customer"])
    services.contacts_tag(workspace=workspace, contact_ids=[b.pk], names=["newsletter"])
    services.contact_unsubscribe(contact=b, channel="email", source="test")
    return workspace


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        ("email", "eq", "ANN@acme.io", ["ann@acme.io"]),
        ("email", "neq", "ann@acme.io", ["bob@beta.com", "cy@gamma.org"]),
        ("title", "contains", "market", ["bob@beta.com"]),
        ("title", "not_contains", "market", ["ann@acme.io", "cy@gamma.org"]),
        ("email", "starts_with", "bo", ["bob@beta.com"]),
        ("email", "ends_with", ".org", ["cy@gamma.org"]),
        ("first_name", "in", ["ann", "Bob"], ["ann@acme.io", "bob@beta.com"]),
        ("first_name", "not_in", ["ann"], ["bob@beta.com", "cy@gamma.org"]),
        ("first_name", "empty", None, ["cy@gamma.org"]),
        ("title", "not_empty", None, ["ann@acme.io", "bob@beta.com"]),
        ("company", "eq", "acme corp", ["ann@acme.io"]),
        ("company", "neq", "acme corp", ["bob@beta.com", "cy@gamma.org"]),
        ("company", "empty", None, ["bob@beta.com", "cy@gamma.org"]),
        ("engagement_score", "gt", 30, ["ann@acme.io"]),
        ("engagement_score", "gte", 30, ["ann@acme.io", "bob@beta.com"]),
        ("score", "lt", 30, ["cy@gamma.org"]),
        ("score", "lte", 30, ["bob@beta.com", "cy@gamma.org"]),
        ("score", "between", [10, 90], ["ann@acme.io", "bob@beta.com"]),
        ("created_at", "gte", "2026-06-05", ["ann@acme.io", "cy@gamma.org"]),
        ("created_at", "between", ["2026-03-01", "2026-06-06"], ["ann@acme.io", "bob@beta.com"]),
        ("created_at", "within_last_days", 5, ["cy@gamma.org"]),
        ("created_at", "more_than_days_ago", 30, ["bob@beta.com"]),
        ("last_engaged_at", "within_last_days", 7, ["ann@acme.io"]),
        ("last_engaged_at", "empty", None, ["cy@gamma.org"]),
        ("last_engaged_at", "lt", "2026-06-01", ["bob@beta.com"]),
        ("tags", "has_tag", "customer", ["ann@acme.io", "bob@beta.com"]),
        ("tags", "lacks_tag", "newsletter", ["ann@acme.io", "cy@gamma.org"]),
        ("lifecycle", "lifecycle_in", ["engaged", "converted"], ["ann@acme.io"]),
        ("lifecycle", "in", ["new"], ["bob@beta.com", "cy@gamma.org"]),
        ("suppression", "suppressed", "email", ["bob@beta.com"]),
        ("suppression", "not_suppressed", "email", ["ann@acme.io", "cy@gamma.org"]),
        ("suppression", "suppressed", "sms", []),
        ("tier", "eq", "high", ["ann@acme.io"]),
        ("engagement_tier", "empty", None, ["cy@gamma.org"]),
        ("custom.budget", "gt", 1000, ["ann@acme.io"]),
        ("custom.budget", "between", [100, 200], ["bob@beta.com"]),
        ("custom.budget", "empty", None, ["cy@gamma.org"]),
        ("custom.plan", "eq", "pro", ["ann@acme.io"]),
        ("custom.plan", "neq", "pro", ["bob@beta.com", "cy@gamma.org"]),
        ("custom.renewal", "gte", "2026-06-30", ["ann@acme.io"]),
        ("custom.vip", "eq", True, ["ann@acme.io"]),
        ("custom.vip", "neq", True, ["bob@beta.com", "cy@gamma.org"]),
        ("custom.city", "contains", "ari", ["ann@acme.io"]),
        ("custom.city", "not_empty", None, ["ann@acme.io"]),
    ],
)
def test_every_operator(people, field, operator, value, expected):
    assert emails(people, cond(field, operator, value)) == expected


def test_nested_and_or_three_levels(people):
    rules = {
        "op": "or",
        "rules": [
            {
                "op": "and",
                "rules": [
                    {"field": "tags", "operator": "has_tag", "value": "customer"},
                    {
                        "op": "or",
                        "rules": [
                            {"field": "score", "operator": "gte", "value": 70},
                            {"field": "suppression", "operator": "suppressed", "value": "email"},
                        ],
                    },
                ],
            },
            {"field": "email", "operator": "ends_with", "value": ".org"},
        ],
    }
    assert emails(people, rules) == ["ann@acme.io", "bob@beta.com", "cy@gamma.org"]
    rules["rules"][1]["value"] = ".net"
    assert emails(people, rules) == ["ann@acme.io", "bob@beta.com"]


def test_count_is_one_query(people, django_assert_num_queries):
    rules = {
        "op": "and",
        "rules": [
            {"field": "tags", "operator": "has_tag", "value": "customer"},
            {"field": "custom.budget", "operator": "gt", "value": 1},
            {"field": "suppression", "operator": "not_suppressed", "value": "email"},
        ],
    }
    q = compile_rules(rules, people, now=NOW)  # compiling reads custom field definitions once
    with django_assert_num_queries(1):
        assert Contact.objects.for_workspace(people).filter(q).count() == 1


def test_tenant_isolation_of_tags_and_suppression(people, other_workspace):
    ContactFactory(workspace=other_workspace, email="ann@acme.io")
    services.contacts_tag(
        workspace=other_workspace,
        contact_ids=list(Contact.objects.for_workspace(other_workspace).values_list("pk", flat=True)),
        names=["customer"],
    )
    assert emails(other_workspace, cond("tags", "has_tag", "customer")) == ["ann@acme.io"]
    assert segment_queryset(cond("tags", "has_tag", "customer"), people).count() == 2


def test_validation_errors_have_paths(people):
    rules = {
        "op": "xor",
        "rules": [
            {"field": "email", "operator": "eq", "value": "a"},
            {
                "op": "and",
                "rules": [
                    {"field": "nope", "operator": "eq", "value": 1},
                    {"field": "score", "operator": "contains", "value": 1},
                    {"field": "score", "operator": "gt", "value": "lots"},
                    {"field": "created_at", "operator": "between", "value": ["2026-02-01"]},
                    {"field": "lifecycle", "operator": "eq", "value": "alive"},
                    {"field": "custom.missing", "operator": "eq", "value": 1},
                    {"field": "created_at", "operator": "within_last_days", "value": -3},
                ],
            },
            {"op": "or", "rules": []},
        ],
    }
    errors = validate_rules(rules, people)
    assert set(errors) == {
        "op",
        "rules[1].rules[0].field",
        "rules[1].rules[1].operator",
        "rules[1].rules[2].value",
        "rules[1].rules[3].value",
        "rules[1].rules[4].value",
        "rules[1].rules[5].field",
        "rules[1].rules[6].value",
        "rules[2].rules",
    }
    with pytest.raises(SegmentRuleError) as exc:
        compile_rules(rules, people)
    assert exc.value.errors == errors


def test_not_a_dict_and_too_deep(workspace):
    assert validate_rules([], workspace) == {"rules": "Expected an object (a group or a condition)."}
    deep = {"field": "score", "operator": "gt", "value": 1}
    for _ in range(20):
        deep = {"op": "and", "rules": [deep]}
    assert any("nested" in m for m in validate_rules(deep, workspace).values())


# ---------------------------------------------------------------- property: compiled == Python oracle

WORDS = ["ann", "bob", "cy", "dee", "Ann", "BOB", ""]
TAGS = ["a", "b", "c"]


def _py_text(value, operator, target):
    v, t = value.lower(), target.lower() if isinstance(target, str) else target
    return {
        "eq": lambda: v == t,
        "neq": lambda: v != t,
        "contains": lambda: t in v,
        "not_contains": lambda: t not in v,
        "starts_with": lambda: v.startswith(t),
        "ends_with": lambda: v.endswith(t),
        "in": lambda: v in [x.lower() for x in target],
        "not_in": lambda: v not in [x.lower() for x in target],
        "empty": lambda: v == "",
        "not_empty": lambda: v != "",
    }[operator]()


def _py_number(value, operator, target):
    if operator == "empty":
        return value is None
    if operator == "not_empty":
        return value is not None
    if value is None:
        return operator in {"neq", "not_in"}
    return {
        "eq": lambda: value == target,
        "neq": lambda: value != target,
        "gt": lambda: value > target,
        "gte": lambda: value >= target,
        "lt": lambda: value < target,
        "lte": lambda: value <= target,
        "between": lambda: target[0] <= value <= target[1],
        "in": lambda: value in target,
        "not_in": lambda: value not in target,
    }[operator]()


def py_eval(node, row) -> bool:
    if "rules" in node:
        results = [py_eval(r, row) for r in node["rules"]]
        return all(results) if node["op"] == "and" else any(results)
    f, op, val = node["field"], node["operator"], node.get("value")
    if f == "first_name":
        return _py_text(row["first_name"], op, val)
    if f == "score":
        return _py_number(row["score"], op, val)
    if f == "custom.n":
        raw = row["n"]
        if op in {"empty", "not_empty"}:
            return _py_number(raw, op, val)
        # text ("abc", "7") and booleans under a numeric comparison are not numbers: they match nothing
        # positive and every negative operator, like a missing value
        number = raw if isinstance(raw, int | float) and not isinstance(raw, bool) else None
        return _py_number(number, op, val)
    if f == "custom.t":
        return _py_text(row["t"] or "", op, val)
    if f == "lifecycle":
        return row["lifecycle"] in val if op == "in" else (row["lifecycle"] == val) == (op == "eq")
    if f == "tags":
        return (val in row["tags"]) == (op == "has_tag")
    raise AssertionError(f)


number_ops = st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "empty", "not_empty"])
leaf = st.one_of(
    st.builds(
        lambda op, v: {"field": "first_name", "operator": op, "value": v},
        st.sampled_from(
            ["eq", "neq", "contains", "not_contains", "starts_with", "ends_with", "empty", "not_empty"]
        ),
        st.sampled_from(["an", "b", "ann", "Bo", "y"]),
    ),
    st.builds(
        lambda v: {"field": "first_name", "operator": "in", "value": v},
        st.lists(st.sampled_from(WORDS[:4]), min_size=1, max_size=3),
    ),
    st.builds(
        lambda op, v: {"field": "score", "operator": op, "value": v},
        number_ops.filter(lambda o: o not in {"empty", "not_empty"}),
        st.integers(0, 100),
    ),
    st.builds(
        lambda lo, span: {"field": "score", "operator": "between", "value": [lo, lo + span]},
        st.integers(0, 100),
        st.integers(0, 50),
    ),
    st.builds(
        lambda op, v: {"field": "custom.n", "operator": op, "value": v}, number_ops, st.integers(-5, 5)
    ),
    st.builds(
        lambda op, v: {"field": "custom.t", "operator": op, "value": v},
        st.sampled_from(["eq", "neq", "contains", "not_contains", "empty", "not_empty"]),
        st.sampled_from(["x", "xy", "Y"]),
    ),
    st.builds(
        lambda op, v: {"field": "lifecycle", "operator": op, "value": v},
        st.sampled_from(["eq", "neq"]),
        st.sampled_from(["new", "enriched", "engaged"]),
    ),
    st.builds(
        lambda op, v: {"field": "tags", "operator": op, "value": v},
        st.sampled_from(["has_tag", "lacks_tag"]),
        st.sampled_from(TAGS),
    ),
)
trees = st.recursive(
    leaf,
    lambda children: st.builds(
        lambda op, rules: {"op": op, "rules": rules},
        st.sampled_from(["and", "or"]),
        st.lists(children, min_size=1, max_size=4),
    ),
    max_leaves=12,
)


@pytest.fixture
def random_people(workspace):
    CustomFieldFactory(workspace=workspace, key="n", type="number")
    CustomFieldFactory(workspace=workspace, key="t", type="text")
    rnd = random.Random(42)
    rows = []
    for i in range(60):
        row = {
            "first_name": rnd.choice(WORDS),
            "score": rnd.randint(0, 100),
            "n": rnd.choice([None, -3, 0, 2, 5, 2.5, "abc", "7", "-3", "1e3", True, False]),
            "t": rnd.choice([None, "", "x", "xy", "zY"]),
            "lifecycle": rnd.choice(["new", "enriched", "engaged"]),
            "tags": set(rnd.sample(TAGS, rnd.randint(0, 2))),
        }
        custom = {k: row[k] for k in ("n", "t") if row[k] is not None}
        c = Contact.objects.create(
            workspace=workspace,
            email=f"p{i}@ex.com",
            first_name=row["first_name"],
            engagement_score=row["score"],
            lifecycle=row["lifecycle"],
            custom=custom,
        )
        for tag in row["tags"]:
            services.contacts_tag(workspace=workspace, contact_ids=[c.pk], names=[tag])
        rows.append(row)
    return workspace, rows


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees)
def test_compiled_count_matches_python_oracle(random_people, tree):
    ws, rows = random_people
    rules = tree if "rules" in tree else {"op": "and", "rules": [tree]}
    expected = sum(1 for row in rows if py_eval(rules, row))
    assert segment_queryset(rules, ws).count() == expected


BROKEN_LEAVES = [
    {"field": "custom.gone", "operator": "gt", "value": 1},
    {"field": "custom.n", "operator": "contains", "value": "x"},
    {"field": "custom.n", "operator": "gt", "value": "lots"},
    {"field": "score", "operator": "between", "value": [9]},
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees, broken=st.sampled_from(BROKEN_LEAVES), at=st.integers(0, 4))
def test_broken_rules_raise_the_one_rule_error_never_a_db_error(random_people, tree, broken, at):
    """A broken leaf anywhere in a valid tree: SegmentRuleError naming its path, on every database."""
    ws, _ = random_people
    rules = tree if "rules" in tree else {"op": "and", "rules": [tree]}
    index = min(at, len(rules["rules"]))
    rules = {**rules, "rules": [*rules["rules"][:index], broken, *rules["rules"][index:]]}
    with pytest.raises(SegmentRuleError) as exc:
        segment_queryset(rules, ws).count()
    assert any(path.startswith(f"rules[{index}].") for path in exc.value.errors)
    assert validate_rules(rules, ws) == exc.value.errors


def test_compile_is_relative_to_now(people):
    later = timezone.now() + dt.timedelta(days=3650)
    assert segment_queryset(cond("created_at", "within_last_days", 5), people, now=later).count() == 0


@pytest.mark.django_db
def test_the_builder_catalog_names_every_field_in_words(workspace):
    """The builder shows labels, never rule keys: every built-in field has one, custom fields their own."""
    from crm.segments import FIELD_LABELS, FIELDS, field_catalog

    assert set(FIELDS) <= set(FIELD_LABELS)
    CustomFieldFactory(
        workspace=workspace, key="plan", label="Subscription plan", type="choice", choices=["a"]
    )
    catalog = field_catalog(workspace)
    assert catalog["custom.plan"]["label"] == "Subscription plan"
    assert catalog["lifecycle"]["label"] == "Lifecycle stage"
    assert all(spec["label"] and spec["label"] != name for name, spec in catalog.items())
