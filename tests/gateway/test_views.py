"""Gateway dashboard: content, tenant isolation, self-check button for admins only, query counts."""

from __future__ import annotations

from django.utils import timezone

from gateway import breaker
from gateway.errors import ErrorKind, ProviderError
from gateway.models import AccountState, HealthCheck
from tests.gateway.factories import (  # noqa: F401
    HealthCheckFactory,
    HealthMinuteFactory,
    ProviderAccountFactory,
    fixture_gateway_fast,
    fixture_test_adapters,
)


def test_dashboard_shows_states_rates_breaker_failures_and_recommendations(client_for, gateway_fast):
    client = client_for("viewer")
    ws = client.workspace
    healthy = ProviderAccountFactory(workspace=ws, name="Hunter main", priority=1)
    reauth = ProviderAccountFactory(
        workspace=ws,
        name="Apollo key",
        state=AccountState.NEEDS_REAUTH,
        state_cause="HTTP 401 from test-verifier",
    )
    cooling = ProviderAccountFactory(workspace=ws, name="Backup verifier")
    for _ in range(3):
        breaker.record(cooling.pk, ok=False, cause="HTTP 503", config=breaker.breaker_config())
    HealthMinuteFactory(
        account=healthy,
        minute=timezone.now().replace(second=0, microsecond=0),
        calls=20,
        successes=19,
        failures=1,
        latency_ms_sum=2000,
        latency_ms_max=400,
    )
    HealthCheckFactory(
        account=reauth, at=timezone.now(), ok=False, error_kind="reauth", message="HTTP 401 nope"
    )
    resp = client.get("/gateway/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "Hunter main" in html and "95 %" in html and "100 / 400 ms" in html
    assert (
        'data-state="needs_reauth"' in html
        and 'data-state="cooling"' in html
        and 'data-state="healthy"' in html
    )
    assert "rejected the API key: re-enter credentials" in html
    assert "HTTP 401 nope" in html
    assert "secret-key-1234" not in html
    assert "Run self-check" not in html  # viewers cannot run checks


def test_other_workspace_is_invisible_and_selfcheck_404(client_for, other_workspace, gateway_fast):
    client = client_for("admin")
    foreign = ProviderAccountFactory(workspace=other_workspace, name="Globex secret vendor")
    assert "Globex secret vendor" not in client.get("/gateway/").content.decode()
    assert client.post(f"/gateway/accounts/{foreign.pk}/selfcheck/").status_code == 404
    assert not HealthCheck.objects.exists()


def test_selfcheck_button_admin_only(client_for, gateway_fast, httpserver):
    client = client_for("marketer")
    account = ProviderAccountFactory(workspace=client.workspace, base_url=httpserver.url_for(""))
    assert client.post(f"/gateway/accounts/{account.pk}/selfcheck/").status_code == 403
    httpserver.expect_request("/v2/account").respond_with_json({"data": {"calls": 1}})
    admin = client_for("admin")
    assert "Run self-check" in admin.get("/gateway/").content.decode()
    resp = admin.post(f"/gateway/accounts/{account.pk}/selfcheck/")
    assert resp.status_code == 302
    check = HealthCheck.objects.get(account=account)
    assert check.ok


def test_dashboard_query_count_is_flat(client_for, gateway_fast, django_assert_max_num_queries):
    client = client_for("viewer")
    for i in range(25):
        account = ProviderAccountFactory(workspace=client.workspace, name=f"A{i}")
        HealthCheckFactory(
            account=account, at=timezone.now(), ok=i % 2 == 0, error_kind="" if i % 2 == 0 else "transient"
        )
    with django_assert_max_num_queries(16):
        assert client.get("/gateway/").status_code == 200


def test_anonymous_is_sent_to_login(client):
    resp = client.get("/gateway/")
    assert resp.status_code == 302 and "/login/" in resp["Location"]


def test_dashboard_survives_redis_outage(client_for, test_adapters, settings):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    client = client_for("viewer")
    ProviderAccountFactory(workspace=client.workspace, name="Hunter main")
    resp = client.get("/gateway/")
    assert (
        resp.status_code == 200
        and "Hunter main" in resp.content.decode()
        and "unknown" in resp.content.decode()
        and "failure log (Redis) cannot be reached" in resp.content.decode()
    )


def test_recent_failures_of_real_calls_on_dashboard_and_health_api(
    client_for, api_client_for, other_workspace, gateway_fast, httpserver
):
    """A failing primary's calls (made through the chain) appear in the dashboard and the health API;
    another workspace's failures never do."""
    from gateway import services
    from gateway.health import record_call

    client = client_for("viewer")
    ws = client.workspace
    primary = ProviderAccountFactory(
        workspace=ws, name="Hunter main", priority=1, base_url=httpserver.url_for("")
    )
    fallback = ProviderAccountFactory(
        workspace=ws, name="Verifier B", priority=3, base_url=httpserver.url_for("/b").rstrip("/")
    )
    httpserver.expect_request("/v2/email-verifier").respond_with_json(
        {"errors": [{"details": "upstream down"}]}, status=503
    )
    httpserver.expect_request("/b/v2/email-verifier").respond_with_json({"data": {"status": "valid"}})
    assert services.verify_email(workspace=ws, email="a@example.com").provider == "test-verifier"
    foreign = ProviderAccountFactory(workspace=other_workspace, name="Globex vendor")
    record_call(
        account=foreign,
        kind=ErrorKind.REAUTH,
        latency_ms=1,
        error=ProviderError(ErrorKind.REAUTH, "globex-only failure", status=401),
    )

    html = client.get("/gateway/").content.decode()
    section = html[html.index('id="failures-title"') : html.index('id="checks-title"')]
    assert "Hunter main" in section and 'data-failure-kind="transient"' in section and "503" in section
    assert (
        "Verify email" in section
        and "verify_email" not in section
        and "globex-only failure" not in html
        and "secret-key-1234" not in html
    )

    api = api_client_for("viewer", ws)
    rows = {r["name"]: r for r in api.get("/api/v1/gateway/health/").json()["results"]}
    [failure] = rows["Hunter main"]["recent_failures"]
    assert failure["kind"] == "transient" and failure["status"] == 503
    assert failure["capability"] == "verify_email" and failure["account"] == primary.pk
    assert rows[fallback.name]["recent_failures"] == []
    assert "globex-only failure" not in api.get("/api/v1/gateway/health/").content.decode()


def test_breaker_states_in_words(client_for, gateway_fast):
    client = client_for("viewer")
    fine = ProviderAccountFactory(workspace=client.workspace, name="Fine")
    tripped = ProviderAccountFactory(workspace=client.workspace, name="Tripped")
    for _ in range(3):
        breaker.record(tripped.pk, ok=False, cause="HTTP 503", config=breaker.breaker_config())
    html = client.get("/gateway/").content.decode()
    assert html.count('data-breaker="closed">Calls flow') == 1 and fine.name in html
    assert 'data-breaker="open">Paused after failures' in html
