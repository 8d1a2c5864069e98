"""Health rollups, state derivation, self-checks, recommendations and the beat schedule."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from gateway import breaker, selectors
from gateway.errors import ErrorKind, ProviderError
from gateway.health import (
    FAILURES_KEPT,
    call_failures,
    derive_state,
    health_flush,
    health_prune,
    record_call,
    refresh_states,
    rolling_stats,
    selfcheck_account,
)
from gateway.models import AccountState, HealthCheck, HealthMinute
from tests.gateway.factories import (  # noqa: F401
    HealthCheckFactory,
    HealthMinuteFactory,
    ProviderAccountFactory,
    fixture_gateway_fast,
    fixture_test_adapters,
)


def now_minute():
    return timezone.now().replace(second=0, microsecond=0)


def test_record_call_buffers_in_redis_and_flush_writes_one_row_per_minute(
    workspace, gateway_fast, django_assert_num_queries
):
    account = ProviderAccountFactory(workspace=workspace)
    at = timezone.now().replace(second=5)
    with django_assert_num_queries(0):  # the hot path never writes to the database
        record_call(account=account, kind=None, latency_ms=120, at=at)
        record_call(account=account, kind=ErrorKind.TRANSIENT, latency_ms=900, at=at + timedelta(seconds=20))
    record_call(account=account, kind=ErrorKind.THROTTLED, latency_ms=30, at=at + timedelta(seconds=30))
    record_call(account=account, kind=ErrorKind.NO_MATCH, latency_ms=50, at=at + timedelta(seconds=40))
    record_call(account=account, kind=None, latency_ms=10, at=at + timedelta(minutes=1))
    assert not HealthMinute.objects.exists()
    with django_assert_num_queries(2):  # account ids, one upsert for every pending minute
        assert health_flush() == 2
    rows = list(HealthMinute.objects.filter(account=account).order_by("minute"))
    assert len(rows) == 2
    first = rows[0]
    assert (first.calls, first.successes, first.failures, first.throttled) == (4, 2, 1, 1)
    assert (first.latency_ms_sum, first.latency_ms_max) == (1100, 900)
    assert first.minute == at.replace(second=0, microsecond=0) and first.workspace_id == workspace.pk
    stats = rolling_stats(workspace, window=timedelta(minutes=15))[account.pk]
    assert stats.calls == 5 and stats.success_rate == 0.6 and stats.throttled_share == 0.2

    assert health_flush() == 0  # nothing pending: no rows rewritten
    record_call(account=account, kind=None, latency_ms=2000, at=at + timedelta(seconds=50))
    assert health_flush() == 1  # absolute totals of that minute: idempotent, never double-counted
    first.refresh_from_db()
    assert (first.calls, first.successes, first.latency_ms_max) == (5, 3, 2000)
    assert HealthMinute.objects.filter(account=account).count() == 2


def test_flush_failure_keeps_the_minutes_pending(workspace, gateway_fast, monkeypatch):
    account = ProviderAccountFactory(workspace=workspace)
    record_call(account=account, kind=None, latency_ms=5)

    def broken(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(HealthMinute.objects, "bulk_create", broken)
    with pytest.raises(DatabaseError):
        health_flush()
    monkeypatch.undo()
    assert health_flush() == 1 and HealthMinute.objects.get(account=account).calls == 1


def test_failed_calls_are_kept_newest_first_capped_and_without_secrets(workspace, gateway_fast):
    account = ProviderAccountFactory(workspace=workspace, credentials={"api_key": "secret-key-1234"})
    start = timezone.now()
    for i in range(FAILURES_KEPT + 5):
        error = ProviderError(
            ErrorKind.TRANSIENT,
            f"call {i} to https://v.example/x?email=a@b.io&api_key=secret-key-1234 failed; "
            f"token=abc{i} " + "x" * 400,
            status=503,
            provider="test-verifier",
        )
        record_call(
            account=account,
            kind=error.kind,
            latency_ms=3,
            error=error,
            at=start + timedelta(milliseconds=i),
            capability="verify_email",
            method="verify_email",
        )
    record_call(
        account=account,
        kind=ErrorKind.NO_MATCH,
        latency_ms=3,
        error=ProviderError(ErrorKind.NO_MATCH, "none"),
    )
    record_call(account=account, kind=None, latency_ms=3)
    failures = call_failures([account])[account.pk]
    assert len(failures) == FAILURES_KEPT  # capped: the oldest five are gone
    newest = failures[0]
    assert newest.message.startswith(f"call {FAILURES_KEPT + 4} to ")
    assert failures[-1].message.startswith("call 5 to ")
    assert (newest.kind, newest.status, newest.capability, newest.method) == (
        "transient",
        503,
        "verify_email",
        "verify_email",
    )
    assert all("secret-key-1234" not in f.message and "abc" not in f.message for f in failures)
    assert "api_key=••••" in newest.message and len(newest.message) <= 300
    assert newest.at == start + timedelta(milliseconds=FAILURES_KEPT + 4)


def test_derive_state_priorities(workspace, gateway_fast):
    a = ProviderAccountFactory(workspace=workspace)
    closed = breaker.BreakerStatus("closed", None, 0, 0, 0, "")
    open_ = breaker.BreakerStatus("open", 0, 0, 0, 0, "HTTP 503")
    from gateway.health import RollingStats

    assert derive_state(a, closed, RollingStats(calls=10, successes=10))[0] == AccountState.HEALTHY
    state, cause = derive_state(a, closed, RollingStats(calls=10, successes=5))
    assert state == AccountState.DEGRADED and "50 %" in cause
    assert (
        derive_state(a, closed, RollingStats(calls=2, successes=0))[0] == AccountState.HEALTHY
    )  # too few calls
    state, cause = derive_state(a, open_, None)
    assert state == AccountState.COOLING and "HTTP 503" in cause
    a.state = AccountState.NEEDS_REAUTH
    assert derive_state(a, open_, None)[0] == AccountState.NEEDS_REAUTH
    a.enabled = False
    assert derive_state(a, open_, None)[0] == AccountState.DISABLED


def test_selfcheck_ok_and_transient_and_reauth(workspace, gateway_fast, httpserver):
    account = ProviderAccountFactory(workspace=workspace, base_url=httpserver.url_for(""))
    httpserver.expect_oneshot_request("/v2/account").respond_with_json({"data": {}})
    check = selfcheck_account(account=account)
    assert check.ok and check.latency_ms >= 0 and not check.error_kind
    httpserver.expect_oneshot_request("/v2/account").respond_with_json({}, status=502)
    check = selfcheck_account(account=account)
    account.refresh_from_db()
    assert check.error_kind == "transient" and account.state == AccountState.DEGRADED
    assert "self-check failed" in account.state_cause
    httpserver.expect_oneshot_request("/v2/account").respond_with_json({}, status=401)
    selfcheck_account(account=account)
    account.refresh_from_db()
    assert account.state == AccountState.NEEDS_REAUTH
    assert HealthCheck.objects.filter(account=account).count() == 3


def test_refresh_states_mirrors_the_breaker(workspace, gateway_fast):
    account = ProviderAccountFactory(workspace=workspace)
    for _ in range(3):
        breaker.record(account.pk, ok=False, cause="HTTP 500", config=breaker.breaker_config())
    assert refresh_states(workspace) == 1
    account.refresh_from_db()
    assert account.state == AccountState.COOLING
    breaker.reset(account.pk)
    refresh_states(workspace)
    account.refresh_from_db()
    assert account.state == AccountState.HEALTHY


def messages_of(workspace):
    return {(r.severity, r.code): r.message for r in selectors.recommendations(workspace)}


def test_recommendations_from_real_signals(workspace, gateway_fast):
    hunter = ProviderAccountFactory(workspace=workspace, name="Hunter")
    HealthMinuteFactory(account=hunter, minute=now_minute(), calls=10, successes=6, throttled=4)
    recs = messages_of(workspace)
    assert (
        recs[("warning", "throttled")]
        == "Hunter (Test verifier) is rate limited 40 % of calls: lower the rate or add a fallback"
    )
    assert recs[("warning", "single_provider")] == "only one provider for verify email: add a fallback"
    assert "succeeds on only 60 %" in recs[("warning", "degraded")]  # throttled calls are not successes

    apollo = ProviderAccountFactory(workspace=workspace, name="Apollo", state=AccountState.NEEDS_REAUTH)
    recs = messages_of(workspace)
    assert (
        recs[("critical", "needs_reauth")]
        == "Apollo (Test verifier) rejected the API key: re-enter credentials"
    )
    assert ("warning", "single_provider") not in recs  # two real accounts now
    ordered = selectors.recommendations(workspace)
    assert ordered[0].severity == "critical"
    assert apollo.pk in [r.account_id for r in ordered]


def test_degraded_and_demo_only_recommendations(workspace, gateway_fast):
    flaky = ProviderAccountFactory(workspace=workspace, name="Flaky")
    HealthMinuteFactory(account=flaky, minute=now_minute(), calls=20, successes=10, failures=10)
    ProviderAccountFactory(
        workspace=workspace, capability="enrich_person", adapter="test-demo", name="Demo", credentials={}
    )
    recs = messages_of(workspace)
    assert "succeeds on only 50 %" in recs[("warning", "degraded")]
    assert recs[("info", "demo_only")].startswith("Enrich person runs on the demo provider")


def test_old_health_history_is_pruned(workspace, gateway_fast):
    account = ProviderAccountFactory(workspace=workspace)
    HealthMinuteFactory(account=account, minute=now_minute() - timedelta(days=40), calls=1)
    HealthMinuteFactory(account=account, minute=now_minute(), calls=1)
    HealthCheckFactory(account=account, at=timezone.now() - timedelta(days=31))
    assert health_prune(keep_days=30) == 2
    assert HealthMinute.objects.count() == 1 and not HealthCheck.objects.exists()


def test_beat_schedule_created_by_migration(db):
    task = PeriodicTask.objects.get(task="gateway.tasks.selfcheck_all_task")
    assert task.enabled and task.interval.every == 5 and task.interval.period == "minutes"
    flush = PeriodicTask.objects.get(task="gateway.tasks.health_flush_task")
    assert flush.enabled and flush.interval.every == 1 and flush.interval.period == "minutes"


@pytest.mark.django_db(transaction=True)
def test_selfcheck_task_runs_on_a_real_worker(
    live_celery_worker, workspace, httpserver, settings, test_adapters, redis_url
):
    from gateway.tasks import selfcheck_workspace_task

    settings.REDIS_URL = redis_url
    account = ProviderAccountFactory(workspace=workspace, base_url=httpserver.url_for(""))
    httpserver.expect_request("/v2/account").respond_with_json({"data": {}})
    selfcheck_workspace_task.delay(workspace.pk)
    deadline = time.monotonic() + 30
    while not HealthCheck.objects.filter(account=account).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert HealthCheck.objects.get(account=account).ok


def test_every_recommendation_fires_from_calls_through_the_chain(
    workspace, other_workspace, gateway_fast, httpserver
):
    """The issue's operator recommendations, each produced by real provider answers (not by setting flags):
    a 401 → re-enter credentials; 429 on 40 % of calls → lower the rate or add a fallback; one real
    provider for a capability → add a fallback; a demo-only capability → configure a real provider."""
    from werkzeug import Response

    from gateway import services
    from gateway.capabilities import PersonQuery
    from gateway.errors import ProvidersUnavailable

    url = httpserver.url_for("").rstrip("/")
    hunter = ProviderAccountFactory(workspace=workspace, name="Hunter", priority=1, base_url=url)
    ProviderAccountFactory(workspace=workspace, name="Backup", priority=2, base_url=f"{url}/backup")
    apollo = ProviderAccountFactory(
        workspace=workspace, name="Apollo", capability="enrich_person", base_url=f"{url}/apollo"
    )
    answers = iter([200, 200, 429, 200, 429])  # 40 % throttled, never 50 % (the breaker would open)

    def hunter_vendor(request):
        status = next(answers)
        body = (
            '{"data": {"status": "valid"}}' if status == 200 else '{"errors": [{"id": "too_many_requests"}]}'
        )
        return Response(body, status=status, content_type="application/json")

    httpserver.expect_request("/v2/email-verifier").respond_with_handler(hunter_vendor)
    httpserver.expect_request("/backup/v2/email-verifier").respond_with_json({"data": {"status": "valid"}})
    httpserver.expect_request("/apollo/api/v1/people/match").respond_with_json(
        {"error": "Invalid API key"}, status=401
    )
    for i in range(5):
        assert services.verify_email(workspace=workspace, email=f"p{i}@example.com").verdict == "valid"
    with pytest.raises(ProvidersUnavailable):
        services.enrich_people(workspace=workspace, queries=[PersonQuery(email="ada@example.com")])
    ProviderAccountFactory(workspace=other_workspace, name="Sample", adapter="test-demo", credentials={})
    assert services.verify_email(workspace=other_workspace, email="a@example.com").demo

    health_flush()  # what the beat does every minute
    recs = messages_of(workspace)
    assert (
        recs[("critical", "needs_reauth")]
        == "Apollo (Test verifier) rejected the API key: re-enter credentials"
    )
    assert (
        recs[("warning", "throttled")]
        == "Hunter (Test verifier) is rate limited 40 % of calls: lower the rate or add a fallback"
    )
    assert recs[("warning", "single_provider")] == "only one provider for enrich person: add a fallback"
    assert ("info", "demo_only") not in recs  # verify_email has two real providers
    by_code = {r.code: r for r in selectors.recommendations(workspace)}
    assert by_code["needs_reauth"].account_id == apollo.pk and by_code["throttled"].account_id == hunter.pk
    # throttled calls are not successes either: 3 of 5 is under the degraded threshold
    assert set(by_code) == {"needs_reauth", "throttled", "degraded", "single_provider"}
    assert by_code["degraded"].account_id == hunter.pk
    assert messages_of(other_workspace) == {
        (
            "info",
            "demo_only",
        ): "Verify email runs on the demo provider (sample data only): configure a real provider"
    }
