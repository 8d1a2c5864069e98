"""Gateway dashboard: content, tenant isolation, self-check button for admins only, query counts."""

from __future__ import annotations

from django.utils import timezone

from gateway import breaker
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
    )
