"""Gateway API: tenant isolation, MANAGE for writes, credentials never returned, live health, query counts."""

from __future__ import annotations

import json
import re

import pytest

from aicmo.models import AuditEvent
from gateway import breaker
from gateway.capabilities import Capability
from gateway.models import AccountState, HealthCheck, ProviderAccount
from tests.gateway.factories import (  # noqa: F401
    HealthMinuteFactory,
    ProviderAccountFactory,
    fixture_gateway_fast,
    fixture_test_adapters,
)

BASE = "/api/v1/gateway"
SECRET = "secret-key-1234"


def no_secret(resp):
    body = resp.content.decode()
    assert SECRET not in body and "credentials_encrypted" not in body and '"credentials"' not in body


@pytest.fixture
def admin(api_client_for, gateway_fast):
    return api_client_for("admin")


def test_admin_creates_account_credentials_write_only_and_encrypted(admin, httpserver):
    resp = admin.post(
        f"{BASE}/accounts/",
        {
            "capability": "verify_email",
            "adapter": "test-verifier",
            "name": "Hunter main",
            "base_url": httpserver.url_for(""),
            "credentials": {"api_key": "sk-live-abcdef987654"},
            "rate_limit_per_second": 5,
            "rate_limit_burst": 2,
        },
        format="json",
    )
    assert resp.status_code == 201, resp.content
    data = resp.json()
    assert data["has_credentials"] is True and data["credentials_hint"] == "api_key ••••7654"
    assert "sk-live-abcdef987654" not in resp.content.decode() and "credentials" not in data
    account = ProviderAccount.objects.get(pk=data["id"])
    assert account.workspace == admin.workspace
    assert "sk-live" not in account.credentials_encrypted
    assert account.get_credentials() == {"api_key": "sk-live-abcdef987654"}
    event = AuditEvent.objects.get(verb="gateway.account_created")
    assert "sk-live" not in json.dumps(event.changes)
    for path in (f"{BASE}/accounts/", f"{BASE}/accounts/{account.pk}/"):
        got = admin.get(path)
        assert got.status_code == 200
        assert "sk-live-abcdef987654" not in got.content.decode()


def test_validation_unknown_adapter_wrong_capability_unsafe_url_unknown_credential(admin, settings):
    cases = [
        ({"adapter": "nope"}, "adapter"),
        ({"capability": "send_email"}, "adapter"),
        ({"credentials": {"password": "x"}}, "credentials"),
    ]
    for change, field in cases:
        body = {"capability": "verify_email", "adapter": "test-verifier", "name": "X"} | change
        resp = admin.post(f"{BASE}/accounts/", body, format="json")
        assert resp.status_code == 400, (change, resp.content)
        assert field in resp.json()["error"]["fields"], resp.json()
    resp = admin.post(
        f"{BASE}/accounts/",
        {
            "capability": "verify_email",
            "adapter": "test-verifier",
            "name": "Y",
            "base_url": "http://169.254.169.254/latest/",
        },
        format="json",
    )
    assert resp.status_code == 400 and "base_url" in resp.json()["error"]["fields"]


def test_duplicate_name_is_a_409_conflict(admin):
    """A name already used is the workspace's state, not a malformed request (aicmo.conflicts)."""
    ProviderAccountFactory(workspace=admin.workspace, name="Dup")
    resp = admin.post(
        f"{BASE}/accounts/",
        {"capability": "verify_email", "adapter": "test-verifier", "name": "Dup"},
        format="json",
    )
    assert resp.status_code == 409 and "name" in resp.json()["error"]["fields"], resp.content
    assert ProviderAccount.objects.filter(name="Dup").count() == 1


def _variants(schema, component):
    """(capability, adapter) -> variant of a request body component (`gateway.api.account_request_schema`)."""
    schemas = schema["components"]["schemas"]
    body = schemas[component]
    found = {}
    for ref in body.get("oneOf") or body.get("anyOf"):
        variant = schemas[ref["$ref"].rsplit("/", 1)[-1]] if "$ref" in ref else ref
        props = variant["properties"]
        if "allOf" not in props["capability"]:
            continue  # the PATCH variant of the stored adapter
        found[props["capability"]["allOf"][0]["enum"][0], props["adapter"]["allOf"][0]["enum"][0]] = variant
    return found


def test_account_bodies_have_one_variant_per_registered_adapter_and_capability(admin, test_adapters):
    """Built from the registry: a registered adapter (here the tests' own) appears by itself, with only its
    options, its credential fields and its base URL schemes."""
    from gateway.adapters import ADAPTERS

    schema = admin.get("/api/schema/?format=json").json()
    pairs = {(str(c), key) for key, cls in ADAPTERS.items() for c in cls.capabilities}
    assert ("verify_email", "test-verifier") in pairs
    for component, partial in (("ProviderAccountRequest", False), ("PatchedProviderAccountRequest", True)):
        variants = _variants(schema, component)
        assert set(variants) == pairs
        for (_capability, key), variant in variants.items():
            cls = ADAPTERS[key]
            props = variant["properties"]
            assert set(props["options"]["properties"]) == set(cls.option_fields)
            assert props["options"]["additionalProperties"] is False
            if cls.credential_fields:
                assert set(props["credentials"]["properties"]) == set(cls.credential_fields)
                assert props["credentials"]["additionalProperties"] is False
            assert ("base_url" in variant["required"]) is cls.base_url_required
            assert ("name" in variant["required"]) is not partial
            for scheme in cls.url_schemes:
                assert re.fullmatch(props["base_url"]["pattern"], f"{scheme.upper()}://8.8.8.8/")
    # a PATCH without capability and adapter is left to the stored adapter
    assert any(
        "$ref" not in v for v in schema["components"]["schemas"]["PatchedProviderAccountRequest"]["anyOf"]
    )
    assert schema["components"]["schemas"]["ProviderAccountRequest"]["required"] == [
        "capability",
        "adapter",
        "name",
    ]


def test_a_body_fitting_its_variant_is_accepted_and_an_undeclared_option_refused(admin):
    body = {
        "capability": "enrich_person",
        "adapter": "dropcontact",
        "name": "Drop",
        "options": {"language": "fr"},
    }
    resp = admin.post(f"{BASE}/accounts/", body, format="json")
    assert resp.status_code == 201, resp.content
    resp = admin.post(
        f"{BASE}/accounts/", body | {"name": "Drop 2", "options": {"table": "x"}}, format="json"
    )
    assert resp.status_code == 400 and "options" in resp.json()["error"]["fields"]


@pytest.mark.parametrize("role", ["viewer", "marketer", "reviewer"])
def test_non_admins_read_but_cannot_write(api_client_for, gateway_fast, role):
    client = api_client_for(role)
    account = ProviderAccountFactory(workspace=client.workspace)
    assert client.get(f"{BASE}/accounts/").status_code == 200
    assert client.get(f"{BASE}/accounts/{account.pk}/").status_code == 200
    no_secret(client.get(f"{BASE}/accounts/{account.pk}/"))
    body = {
        "capability": "verify_email",
        "adapter": "test-verifier",
        "name": "N",
        "credentials": {"api_key": "k"},
    }
    assert client.post(f"{BASE}/accounts/", body, format="json").status_code == 403
    assert (
        client.patch(f"{BASE}/accounts/{account.pk}/", {"enabled": False}, format="json").status_code == 403
    )
    assert client.delete(f"{BASE}/accounts/{account.pk}/").status_code == 403
    assert client.post(f"{BASE}/accounts/{account.pk}/selfcheck/").status_code == 403
    assert client.post(f"{BASE}/accounts/selfcheck/").status_code == 403
    assert client.post(f"{BASE}/accounts/{account.pk}/reset-breaker/").status_code == 403
    assert client.get(f"{BASE}/health/").status_code == 200
    assert client.get(f"{BASE}/recommendations/").status_code == 200
    account.refresh_from_db()
    assert account.enabled


def test_other_workspace_accounts_are_404(admin, other_workspace):
    foreign = ProviderAccountFactory(workspace=other_workspace)
    for method, path in [
        ("get", f"{BASE}/accounts/{foreign.pk}/"),
        ("patch", f"{BASE}/accounts/{foreign.pk}/"),
        ("delete", f"{BASE}/accounts/{foreign.pk}/"),
        ("post", f"{BASE}/accounts/{foreign.pk}/selfcheck/"),
        ("post", f"{BASE}/accounts/{foreign.pk}/reset-breaker/"),
        ("get", f"{BASE}/accounts/{foreign.pk}/checks/"),
    ]:
        resp = getattr(admin, method)(path, {}, format="json")
        assert resp.status_code == 404, (method, path, resp.status_code)
    listing = admin.get(f"{BASE}/accounts/").json()["results"]
    assert foreign.pk not in [r["id"] for r in listing]
    assert foreign.pk not in [r["account"] for r in admin.get(f"{BASE}/health/").json()["results"]]
    assert not admin.get(f"{BASE}/recommendations/").json()["results"]
    assert ProviderAccount.objects.filter(pk=foreign.pk).exists()


def test_update_credentials_clears_needs_reauth_and_disabling(admin):
    account = ProviderAccountFactory(
        workspace=admin.workspace, state=AccountState.NEEDS_REAUTH, state_cause="HTTP 401"
    )
    resp = admin.patch(
        f"{BASE}/accounts/{account.pk}/", {"credentials": {"api_key": "fresh-key-0000"}}, format="json"
    )
    assert resp.status_code == 200 and resp.json()["state"] == "healthy"
    assert resp.json()["credentials_hint"] == "api_key ••••0000"
    resp = admin.patch(f"{BASE}/accounts/{account.pk}/", {"enabled": False}, format="json")
    assert resp.json()["state"] == "disabled"
    assert AuditEvent.objects.filter(verb="gateway.credentials_changed", target_id=str(account.pk)).exists()


def test_selfcheck_action_stores_history(admin, httpserver):
    account = ProviderAccountFactory(workspace=admin.workspace, base_url=httpserver.url_for(""))
    httpserver.expect_request("/v2/account").respond_with_json({"data": {}}, status=401)
    resp = admin.post(f"{BASE}/accounts/{account.pk}/selfcheck/")
    assert resp.status_code == 200
    assert resp.json()["ok"] is False and resp.json()["error_kind"] == "reauth"
    account.refresh_from_db()
    assert account.state == AccountState.NEEDS_REAUTH
    assert HealthCheck.objects.filter(account=account).count() == 1
    checks = admin.get(f"{BASE}/accounts/{account.pk}/checks/").json()["results"]
    assert len(checks) == 1
    recs = admin.get(f"{BASE}/recommendations/").json()["results"]
    assert recs[0]["severity"] == "critical" and "re-enter credentials" in recs[0]["message"]


def test_health_shows_rolling_stats_and_breaker(admin):
    account = ProviderAccountFactory(workspace=admin.workspace)
    from django.utils import timezone

    HealthMinuteFactory(
        account=account,
        minute=timezone.now().replace(second=0, microsecond=0),
        calls=10,
        successes=5,
        failures=5,
        latency_ms_sum=1000,
        latency_ms_max=300,
    )
    for _ in range(3):
        breaker.record(account.pk, ok=False, cause="HTTP 503", config=breaker.breaker_config())
    [row] = admin.get(f"{BASE}/health/").json()["results"]
    assert row["state"] == "cooling" and row["breaker"]["state"] == "open"
    assert row["last_15m"]["success_rate"] == 0.5 and row["last_15m"]["latency_ms_avg"] == 100
    no_secret(admin.get(f"{BASE}/health/"))


def test_list_query_counts_are_flat(api_client_for, gateway_fast, django_assert_max_num_queries):
    client = api_client_for("viewer")
    for i in range(30):
        ProviderAccountFactory(workspace=client.workspace, capability=Capability.VERIFY_EMAIL, name=f"A{i}")
    with django_assert_max_num_queries(8):
        assert len(client.get(f"{BASE}/accounts/?page_size=50").json()["results"]) == 30
    with django_assert_max_num_queries(10):
        assert len(client.get(f"{BASE}/health/").json()["results"]) == 30
    with django_assert_max_num_queries(10):
        assert client.get(f"{BASE}/recommendations/").status_code == 200


def test_naming_the_adapter_gives_its_whole_configuration(admin):
    """A PUT, or a PATCH naming the adapter, without options or base_url: they return to their defaults,
    so another adapter never inherits the old one's (the old vendor's host, options it refuses), and the
    same request gets the same answer whatever is stored."""
    body = {
        "capability": "send_email",
        "adapter": "smtp",
        "name": "Mail",
        "base_url": "smtp://8.8.8.8:587",
        "options": {"verify_tls": True},
    }
    resp = admin.post(f"{BASE}/accounts/", body, format="json")
    assert resp.status_code == 201, resp.content
    pk = resp.json()["id"]
    account = ProviderAccount.objects.get(pk=pk)
    # naming neither keeps them
    resp = admin.patch(f"{BASE}/accounts/{pk}/", {"name": "Mail 2"}, format="json")
    assert resp.status_code == 200, resp.content
    account.refresh_from_db()
    assert (account.options, account.base_url) == ({"verify_tls": True}, "smtp://8.8.8.8:587")
    # the same adapter again, without its base URL: refused as for a new account
    bare = {k: body[k] for k in ("capability", "adapter", "name")}
    resp = admin.put(f"{BASE}/accounts/{pk}/", bare, format="json")
    assert resp.status_code == 400 and "base_url" in resp.json()["error"]["fields"], resp.content
    resp = admin.patch(
        f"{BASE}/accounts/{pk}/", {"capability": "send_email", "adapter": "demo_email"}, format="json"
    )
    assert resp.status_code == 200, resp.content
    account.refresh_from_db()
    assert (account.adapter, account.options, account.base_url) == ("demo_email", {}, "")


@pytest.mark.parametrize(
    ("change", "cleared"),
    [
        ({"base_url": "moved"}, True),
        ({"adapter": "test-demo"}, True),
        ({"base_url": "moved", "credentials": {"api_key": "sk-new-key-2222"}}, False),
        ({"name": "Renamed", "rate_limit_per_second": 3}, False),
        ({"base_url": "same"}, False),
    ],
)
def test_credentials_go_only_to_the_destination_they_were_given_for(admin, httpserver, change, cleared):
    """Moving an account to another vendor or server without giving credentials again clears the stored
    ones: the old key is never sent to the new destination (a host the caller may control)."""
    old_key = "sk-old-key-1111"
    resp = admin.post(
        f"{BASE}/accounts/",
        {
            "capability": "verify_email",
            "adapter": "test-verifier",
            "name": "Verifier",
            "base_url": httpserver.url_for("/first"),
            "credentials": {"api_key": old_key},
        },
        format="json",
    )
    assert resp.status_code == 201, resp.content
    pk = resp.json()["id"]
    body = dict(change)
    if "base_url" in body:
        body["base_url"] = httpserver.url_for("/moved" if body["base_url"] == "moved" else "/first")
    resp = admin.patch(f"{BASE}/accounts/{pk}/", body, format="json")
    assert resp.status_code == 200, resp.content
    assert resp.json()["has_credentials"] is not cleared
    assert (
        AuditEvent.objects.filter(verb="gateway.credentials_cleared", target_id=str(pk)).exists() is cleared
    )
    httpserver.expect_request(re.compile(r".*/v2/account")).respond_with_json({"data": {}})
    admin.post(f"{BASE}/accounts/{pk}/selfcheck/")
    sent = [
        f"{request.url} {dict(request.headers)} {request.get_data(as_text=True)}"
        for request, _ in httpserver.log
    ]
    if change.get("base_url") == "moved" or "adapter" in change:
        assert not any(old_key in line for line in sent), sent
    else:
        assert any(old_key in line for line in sent), sent  # the same destination still gets its key
    account = ProviderAccount.objects.get(pk=pk)
    expected = {} if cleared else {"api_key": change.get("credentials", {}).get("api_key", old_key)}
    assert account.get_credentials() == expected
