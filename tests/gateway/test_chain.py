"""Failover scenarios against vendor-shaped local HTTP servers, with the real breaker and rate limit in Redis.

Every scenario checks what the caller sees (every result arrives, from the fallback when needed) and what
the gateway learnt (breaker state, account state, per-minute health rows).
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Response

from gateway import breaker, ratelimit, services
from gateway.capabilities import Capability, PersonQuery, Verdict
from gateway.chain import RetryBudget, backoff_delay, candidate_accounts, order_accounts
from gateway.errors import ErrorKind, ProviderError, ProvidersUnavailable
from gateway.health import health_flush
from gateway.models import AccountState, HealthMinute, ProviderAccount
from tests.gateway.factories import ProviderAccountFactory, fixture_gateway_fast, fixture_test_adapters  # noqa: F401

VERIFY = "/v2/email-verifier"


def ok_body(request):
    return Response(
        f'{{"data": {{"status": "valid", "email": "{request.args["email"]}"}}}}',
        content_type="application/json",
    )


@pytest.fixture
def fallback_server(loopback_allow):
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    loopback_allow(server.host, server.port)
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def closed_port(loopback_allow):
    """``closed_port()``: a loopback port nothing listens on, allowed through the SSRF guard."""

    def free() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        loopback_allow("127.0.0.1", port)
        return port

    return free


@pytest.fixture
def accounts(workspace, httpserver, fallback_server, gateway_fast):
    primary = ProviderAccountFactory(
        workspace=workspace, name="Primary", priority=1, base_url=httpserver.url_for("")
    )
    fallback = ProviderAccountFactory(
        workspace=workspace, name="Fallback", priority=2, base_url=fallback_server.url_for("")
    )
    fallback_server.expect_request(VERIFY).respond_with_handler(ok_body)
    return primary, fallback


def verify_many(workspace, n):
    return [services.verify_email(workspace=workspace, email=f"p{i}@example.com") for i in range(n)]


def minutes(account):
    health_flush(account_ids=[account.pk])
    return list(HealthMinute.objects.filter(account=account))


def totals(account) -> SimpleNamespace:
    """The account's counters summed over minute rows (a test may straddle a minute boundary)."""
    rows = minutes(account)
    assert rows, "no calls recorded"
    summed = {f: sum(getattr(r, f) for r in rows) for f in ("calls", "successes", "failures", "throttled")}
    return SimpleNamespace(**summed, latency_ms_max=max(r.latency_ms_max for r in rows))


def test_primary_answers_when_healthy(workspace, httpserver, accounts):
    primary, fallback = accounts
    httpserver.expect_request(VERIFY).respond_with_handler(ok_body)
    results = verify_many(workspace, 5)
    assert [r.verdict for r in results] == [Verdict.VALID] * 5
    assert len(httpserver.log) == 5
    row = totals(primary)
    assert (row.calls, row.successes, row.failures) == (5, 5, 0)
    assert not minutes(fallback)


def test_primary_down_fails_over_opens_breaker_and_closes_after_recovery(
    closed_port, workspace, httpserver, fallback_server, accounts
):
    primary, fallback = accounts
    primary.base_url = f"http://127.0.0.1:{closed_port()}"
    primary.save()
    results = verify_many(workspace, 8)
    assert [r.email for r in results] == [f"p{i}@example.com" for i in range(8)]
    assert all(r.verdict == Verdict.VALID for r in results)
    assert breaker.status(primary.pk).state == breaker.OPEN
    primary.refresh_from_db()
    assert primary.state == AccountState.COOLING and "circuit open" in primary.state_cause
    row = totals(primary)
    assert row.failures == 3 and row.calls == 3  # consecutive_failures=3, then it is skipped while open
    assert sum(r.calls for r in minutes(fallback)) == 8

    # the primary comes back: after the cool-down one probe closes the breaker and traffic returns to it
    primary.base_url = httpserver.url_for("")
    primary.save()
    httpserver.expect_request(VERIFY).respond_with_handler(ok_body)
    time.sleep(0.6)
    verify_many(workspace, 3)
    assert breaker.status(primary.pk).state == breaker.CLOSED
    assert len(httpserver.log) == 3
    primary.refresh_from_db()
    assert primary.state == AccountState.HEALTHY


def test_half_of_primary_calls_fail_caller_still_gets_every_result(workspace, httpserver, accounts, settings):
    settings.GATEWAY_BREAKER = settings.GATEWAY_BREAKER | {"consecutive_failures": 100, "min_calls": 1000}
    primary, fallback = accounts
    counter = itertools.count()

    def flaky(request):
        if next(counter) % 2 == 0:
            return Response("upstream exploded", status=503)
        return ok_body(request)

    httpserver.expect_request(VERIFY).respond_with_handler(flaky)
    results = verify_many(workspace, 20)
    assert [r.email for r in results] == [f"p{i}@example.com" for i in range(20)]
    row = totals(primary)
    assert row.calls == 20 and row.failures == 10 and row.successes == 10
    assert sum(r.calls for r in minutes(fallback)) == 10  # each failed call answered by the fallback


def test_breaker_opens_on_failure_rate(workspace, httpserver, accounts):
    primary, _ = accounts
    counter = itertools.count()

    def flaky(request):
        if next(counter) % 2 == 0:
            return Response("no", status=500)
        return ok_body(request)

    httpserver.expect_request(VERIFY).respond_with_handler(flaky)
    verify_many(workspace, 6)
    assert breaker.status(primary.pk).state == breaker.OPEN  # 2 of 4 failed = 50 % with min_calls=4


def test_timeouts_fail_over(workspace, fallback_server, gateway_fast, settings, loopback_allow):
    slow = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    slow.start()
    loopback_allow(slow.host, slow.port)
    try:
        slow.expect_request(VERIFY).respond_with_handler(lambda r: (time.sleep(0.6), ok_body(r))[1])
        primary = ProviderAccountFactory(
            workspace=workspace, priority=1, base_url=slow.url_for(""), timeout_seconds=0.2
        )
        fallback = ProviderAccountFactory(
            workspace=workspace, priority=2, base_url=fallback_server.url_for("")
        )
        fallback_server.expect_request(VERIFY).respond_with_handler(ok_body)
        results = verify_many(workspace, 4)
        assert all(r.verdict == Verdict.VALID for r in results)
        row = totals(primary)
        assert row.failures == 3 and row.latency_ms_max >= 200
        assert breaker.status(primary.pk).state == breaker.OPEN
        assert sum(r.calls for r in minutes(fallback)) == 4
    finally:
        slow.clear()
        slow.stop()


def test_429_with_retry_after_holds_the_account_and_uses_fallback(workspace, httpserver, accounts):
    primary, fallback = accounts
    httpserver.expect_request(VERIFY).respond_with_response(
        Response('{"errors": [{"id": "too_many_requests"}]}', status=429, headers={"Retry-After": "60"})
    )
    results = verify_many(workspace, 5)
    assert all(r.verdict == Verdict.VALID for r in results)
    # held for 60 s: not asked again (a 2 s hold expired under load before the 5 calls were done)
    assert len(httpserver.log) == 1
    row = totals(primary)
    assert row.throttled == 1 and row.calls == 1
    assert sum(r.calls for r in minutes(fallback)) == 5


def test_single_account_429_waits_for_retry_after_within_bound(workspace, httpserver, gateway_fast):
    ProviderAccountFactory(workspace=workspace, base_url=httpserver.url_for(""))
    httpserver.expect_oneshot_request(VERIFY).respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "1"})
    )
    httpserver.expect_request(VERIFY).respond_with_handler(ok_body)
    started = time.monotonic()
    result = services.verify_email(workspace=workspace, email="a@example.com")
    assert result.verdict == Verdict.VALID
    # at least the 1 s asked for; the upper bound only catches an unbounded wait (a margin load cannot eat)
    assert 0.9 < time.monotonic() - started < 15


def test_retry_after_beyond_the_wait_bound_raises_with_retry_at(workspace, httpserver, gateway_fast):
    ProviderAccountFactory(workspace=workspace, base_url=httpserver.url_for(""))
    httpserver.expect_request(VERIFY).respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "30"})
    )
    before = time.time()
    with pytest.raises(ProvidersUnavailable) as info:
        services.verify_email(workspace=workspace, email="a@example.com")
    assert info.value.retry_at.timestamp() == pytest.approx(before + 30, abs=2)
    assert len(httpserver.log) == 1


def test_401_marks_needs_reauth_and_new_credentials_clear_it(workspace, httpserver, accounts, admin_user):
    primary, fallback = accounts
    httpserver.expect_request(VERIFY).respond_with_response(Response('{"errors": []}', status=401))
    verify_many(workspace, 3)
    assert len(httpserver.log) == 1
    primary.refresh_from_db()
    assert primary.state == AccountState.NEEDS_REAUTH and "401" in primary.state_cause
    assert [a.pk for a in candidate_accounts(workspace, Capability.VERIFY_EMAIL)[0]] == [fallback.pk]

    services.account_set_credentials(account=primary, by=admin_user, credentials={"api_key": "new-key-5678"})
    primary.refresh_from_db()
    assert primary.state == AccountState.HEALTHY and primary.get_credentials() == {"api_key": "new-key-5678"}
    httpserver.clear()
    httpserver.expect_request(VERIFY).respond_with_handler(ok_body)
    verify_many(workspace, 1)
    assert httpserver.log[-1][0].args["api_key"] == "new-key-5678"


def test_bad_input_is_raised_at_once_and_never_trips_the_breaker(workspace, httpserver, accounts):
    primary, fallback = accounts
    httpserver.expect_request(VERIFY).respond_with_response(Response('{"errors": ["bad email"]}', status=400))
    for _ in range(5):
        with pytest.raises(ProviderError) as info:
            services.verify_email(workspace=workspace, email="not-an-email")
        assert info.value.kind == ErrorKind.BAD_INPUT
    assert breaker.status(primary.pk).state == breaker.CLOSED
    assert not minutes(fallback)
    row = totals(primary)
    assert row.calls == 5 and row.failures == 0


def test_everything_down_raises_providers_unavailable_never_fake_success(
    closed_port, workspace, gateway_fast
):
    for priority in (1, 2):
        ProviderAccountFactory(
            workspace=workspace, priority=priority, base_url=f"http://127.0.0.1:{closed_port()}"
        )
    with pytest.raises(ProvidersUnavailable) as info:
        services.verify_email(workspace=workspace, email="a@example.com")
    assert len(info.value.errors) == 2
    assert all(e.kind == ErrorKind.TRANSIENT for e in info.value.errors.values())


def test_all_open_waits_for_the_soonest_then_raises_with_retry_at(
    closed_port, workspace, gateway_fast, settings
):
    settings.GATEWAY_BREAKER = settings.GATEWAY_BREAKER | {"cooldown_seconds": 20}
    account = ProviderAccountFactory(workspace=workspace, base_url=f"http://127.0.0.1:{closed_port()}")
    for _ in range(3):
        breaker.record(account.pk, ok=False, config=breaker.breaker_config())
    started = time.time()
    with pytest.raises(ProvidersUnavailable) as info:
        services.verify_email(workspace=workspace, email="a@example.com")
    # 20 s is beyond the 1 s wait bound: no waiting. Waiting would take the full 1 s; anything shorter is
    # this call's own work, however slow a loaded machine makes it.
    assert time.time() - started < 0.95
    assert info.value.retry_at.timestamp() == pytest.approx(started + 20, abs=1)


def test_demo_only_when_no_real_account(closed_port, workspace, httpserver, gateway_fast):
    demo = ProviderAccountFactory(workspace=workspace, adapter="test-demo", name="Demo", credentials={})
    result = services.verify_email(workspace=workspace, email="a@example.com")
    assert result.demo is True
    real = ProviderAccountFactory(
        workspace=workspace, priority=500, base_url=f"http://127.0.0.1:{closed_port()}"
    )
    assert [a.pk for a in candidate_accounts(workspace, Capability.VERIFY_EMAIL)[0]] == [real.pk]
    with pytest.raises(ProvidersUnavailable):
        services.verify_email(workspace=workspace, email="a@example.com")  # never the demo as a fallback
    assert sum(r.calls for r in minutes(demo)) == 1


def test_no_account_at_all_is_a_clear_error(workspace, gateway_fast):
    with pytest.raises(ProvidersUnavailable, match="no provider account is configured"):
        services.verify_email(workspace=workspace, email="a@example.com")


def test_order_is_health_then_priority(workspace, gateway_fast):
    a = ProviderAccountFactory(workspace=workspace, priority=1)
    b = ProviderAccountFactory(workspace=workspace, priority=2, state=AccountState.DEGRADED)
    c = ProviderAccountFactory(workspace=workspace, priority=3)
    for _ in range(3):
        breaker.record(a.pk, ok=False, config=breaker.breaker_config())
    assert [x.pk for x in order_accounts([a, b, c])] == [c.pk, b.pk, a.pk]


def test_other_workspaces_accounts_are_never_used(workspace, other_workspace, httpserver, gateway_fast):
    ProviderAccountFactory(workspace=other_workspace, base_url=httpserver.url_for(""))
    httpserver.expect_request(VERIFY).respond_with_handler(ok_body)
    with pytest.raises(ProvidersUnavailable):
        services.verify_email(workspace=workspace, email="a@example.com")
    assert not httpserver.log


def test_enrich_people_batches_and_keeps_order(workspace, httpserver, gateway_fast):
    ProviderAccountFactory(
        workspace=workspace, capability=Capability.ENRICH_PERSON, base_url=httpserver.url_for("")
    )

    def match(request):
        email = request.get_json()["email"]
        person = None if email.startswith("nobody") else {"email": email, "title": "CTO"}
        return Response(__import__("json").dumps({"person": person}), content_type="application/json")

    httpserver.expect_request("/api/v1/people/match", method="POST").respond_with_handler(match)
    queries = [PersonQuery(email=f"{'nobody' if i % 3 == 0 else 'p'}{i}@example.com") for i in range(23)]
    results = services.enrich_people(workspace=workspace, queries=queries)
    assert [r.query for r in results] == queries
    assert [r.matched for r in results] == [i % 3 != 0 for i in range(23)]


def test_chain_waits_for_the_rate_limit_instead_of_exceeding_it(workspace, httpserver, gateway_fast):
    """10 per second with burst 1: every call is served, and the limiter granted the six tokens at least
    0.1 s apart. The grant times are the bucket's own (Redis ``TIME``, written with each grant), not
    arrival times at the vendor: a loaded machine may delay a request after its grant, never the grant."""
    account = ProviderAccountFactory(
        workspace=workspace, base_url=httpserver.url_for(""), rate_limit_per_second=10, rate_limit_burst=1
    )
    httpserver.expect_request(VERIFY).respond_with_handler(ok_body)
    bucket = ratelimit.keys_of(account.pk)[0]
    grants: list[float] = []
    for i in range(6):
        result = services.verify_email(workspace=workspace, email=f"p{i}@example.com")
        assert result.verdict == Verdict.VALID
        # The call ended with its grant: the bucket's timestamp is that grant's time, its tokens are spent.
        assert float(gateway_fast.hget(bucket, "tokens")) < 1
        grants.append(float(gateway_fast.hget(bucket, "ts")))
    assert len(httpserver.log) == 6
    # Each token after the first needs 0.1 s of refill; Lua's tostring keeps 0.1 ms of the timestamp.
    assert min(b - a for a, b in itertools.pairwise(grants)) >= 0.1 - 0.0002


def redis_seconds(client) -> float:
    """Redis's clock (``TIME``), the one the token bucket refills by."""
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


class RateLimitedVendor:
    """A Hunter-shaped verifier on a threaded server that enforces its own limit: more than ``limit``
    requests in any sliding second get a 429, as a real vendor would answer."""

    def __init__(self, limit: int, latency: float = 0.02) -> None:
        self.limit, self.latency = limit, latency
        self.stamps: list[float] = []
        self.refused = 0
        self.lock = threading.Lock()

    def __call__(self, request):
        now = time.monotonic()
        with self.lock:
            self.stamps.append(now)
            recent = sum(1 for t in self.stamps if now - t < 1.0)
            if recent > self.limit:
                self.refused += 1
                return Response(
                    '{"errors": [{"id": "too_many_requests"}]}', status=429, headers={"Retry-After": "1"}
                )
        time.sleep(self.latency)
        return ok_body(request)

    def peak(self, window: float = 1.0) -> int:
        stamps = sorted(self.stamps)
        return max(
            (sum(1 for t in stamps[i:] if t - start < window) for i, start in enumerate(stamps)), default=0
        )


@pytest.mark.django_db(transaction=True)
def test_concurrent_callers_all_get_results_and_the_shared_limit_holds(
    workspace, gateway_fast, settings, loopback_allow
):
    """8 threads x 3 calls through the chain on one account limited to 10/s (burst 2): every caller gets its
    own result, the vendor never sees more than the bucket allows (so it never has to refuse), and the
    Redis-buffered health counters count every call exactly (no database write per call, so no
    "database is locked" from threads sharing SQLite)."""
    threads, per_thread, rate, burst = 8, 3, 10, 2
    total = threads * per_thread
    settings.GATEWAY_RETRY = {**settings.GATEWAY_RETRY, "max_seconds": 30}
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    loopback_allow(server.host, server.port)
    # The token bucket bounds any 1 s window of grants to burst + rate. The vendor counts arrivals on its
    # own clock in another thread, where a loaded machine can delay a request well after its grant, so it
    # tolerates a full second of such delay (rate more); the pacing itself is checked on the limiter's clock.
    vendor = RateLimitedVendor(limit=burst + 2 * rate)
    server.expect_request(VERIFY).respond_with_handler(vendor)
    account = ProviderAccountFactory(
        workspace=workspace,
        base_url=server.url_for(""),
        rate_limit_per_second=rate,
        rate_limit_burst=burst,
    )
    results: dict[str, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def caller(k: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                email = f"t{k}-{i}@example.com"
                result = services.verify_email(workspace=workspace, email=email)
                results[email] = f"{result.email}:{result.verdict}"
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=caller, args=(k,)) for k in range(threads)]
    began = redis_seconds(gateway_fast)
    try:
        for t in pool:
            t.start()
        for t in pool:
            t.join(60)
    finally:
        server.clear()
        server.stop()
    ended = redis_seconds(gateway_fast)
    assert not errors, errors
    assert results == {
        f"t{k}-{i}@example.com": f"t{k}-{i}@example.com:{Verdict.VALID}"
        for k in range(threads)
        for i in range(per_thread)
    }
    assert len(vendor.stamps) == total and vendor.refused == 0
    assert vendor.peak() <= vendor.limit
    # The bucket really paced them: every grant fell between `began` and `ended` (Redis time, the clock
    # the bucket refills by), and 22 tokens beyond the burst take 2.2 s at 10/s.
    assert ended - began >= (total - burst) / rate - 0.001
    health_flush(account_ids=[account.pk])
    rows = HealthMinute.objects.filter(account=account)
    assert sum(r.calls for r in rows) == total and sum(r.successes for r in rows) == total


@pytest.fixture
def admin_user(workspace, member_factory):
    return member_factory(workspace, "admin")


def test_provider_account_is_scoped(workspace, other_workspace):
    ProviderAccountFactory(workspace=other_workspace)
    assert not ProviderAccount.objects.for_workspace(workspace).exists()


def test_redis_down_defers_the_work_instead_of_calling_unguarded(
    closed_port, workspace, httpserver, test_adapters, settings
):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    ProviderAccountFactory(workspace=workspace, base_url=httpserver.url_for(""))
    httpserver.expect_request(VERIFY).respond_with_handler(ok_body)
    before = time.time()
    with pytest.raises(ProvidersUnavailable, match="breaker store unavailable") as info:
        services.verify_email(workspace=workspace, email="a@example.com")
    assert info.value.retry_at.timestamp() == pytest.approx(before + 30, abs=5)
    assert not httpserver.log


def test_real_hunter_accounts_fail_over_on_429_and_401(workspace, httpserver, fallback_server, gateway_fast):
    """The same scenarios with the production Hunter adapter speaking Hunter's error bodies."""
    primary = ProviderAccountFactory(
        workspace=workspace, adapter="hunter", name="Hunter A", priority=1, base_url=httpserver.url_for("")
    )
    ProviderAccountFactory(
        workspace=workspace,
        adapter="hunter",
        name="Hunter B",
        priority=2,
        base_url=fallback_server.url_for(""),
    )
    fallback_server.expect_request(VERIFY).respond_with_json(
        {"data": {"status": "valid", "email": "ada@example.com", "score": 97}}
    )
    httpserver.expect_oneshot_request(VERIFY).respond_with_json(
        {"errors": [{"id": "too_many_requests", "code": 429, "details": "You have reached the rate limit"}]},
        status=429,
        headers={"Retry-After": "60"},
    )
    results = verify_many(workspace, 3)
    assert all(r.verdict == Verdict.VALID and r.score == 97 and r.provider == "hunter" for r in results)
    assert len(httpserver.log) == 1 and minutes(primary)[0].throttled == 1

    # An operator ends the hold (a hold's expiry by time is test_single_account_429_waits_…; a 1 s hold
    # here expired under load before the three calls were done): the primary is asked again and now
    # rejects the key.
    services.account_reset_breaker(account=primary, by=None)
    httpserver.expect_request(VERIFY).respond_with_json(
        {
            "errors": [
                {"id": "authentication_failed", "code": 401, "details": "No user found for the API key"}
            ]
        },
        status=401,
    )
    assert verify_many(workspace, 2)[0].verdict == Verdict.VALID
    primary.refresh_from_db()
    assert primary.state == AccountState.NEEDS_REAUTH and "No user found" in primary.state_cause
    assert len(httpserver.log) == 2


def test_retry_budget_bounds_attempts_and_time(workspace, httpserver, gateway_fast, settings):
    settings.GATEWAY_BREAKER = settings.GATEWAY_BREAKER | {"consecutive_failures": 100, "min_calls": 1000}
    settings.GATEWAY_RETRY = settings.GATEWAY_RETRY | {
        "max_attempts": 4,
        "base_delay": 0.05,
        "max_delay": 0.2,
    }
    ProviderAccountFactory(workspace=workspace, base_url=httpserver.url_for(""))
    httpserver.expect_request(VERIFY).respond_with_response(Response("down", status=503))
    started = time.monotonic()
    with pytest.raises(ProvidersUnavailable, match="HTTP 503") as info:
        services.verify_email(workspace=workspace, email="a@example.com")
    assert len(httpserver.log) == 4  # retried on the only account, with backoff, then gave up
    # 3 backoffs of at most 0.2 s: the bound only catches delays escaping max_delay (a margin load cannot eat)
    assert time.monotonic() - started < 10
    assert info.value.retry_at is not None


@given(round_no=st.integers(min_value=0, max_value=40), base=st.floats(0.001, 2), cap=st.floats(0.01, 30))
def test_backoff_is_full_jitter_within_the_cap(round_no, base, cap):
    budget = RetryBudget(base_delay=base, max_delay=cap)
    delay = backoff_delay(round_no, budget)
    assert 0 <= delay <= min(cap, base * 2**round_no)


WORKER_SCRIPT = """
import os, sys
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
call_command("migrate", verbosity=0)
from tests.gateway.factories import register_test_adapters
register_test_adapters()
settings.GATEWAY_BREAKER = {"consecutive_failures": 3, "min_calls": 100, "cooldown_seconds": 30}
settings.GATEWAY_RETRY = {"base_delay": 0.01, "max_delay": 0.02}
from aicmo.models import Workspace
from gateway import breaker, ratelimit, services
from gateway.crypto import encrypt_credentials
from gateway.models import ProviderAccount
pk, dead_url, fallback_url = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ws = Workspace.objects.create(name="w", slug="w")
creds = encrypt_credentials({"api_key": "k"})
ProviderAccount.objects.create(pk=pk, workspace=ws, capability="verify_email", adapter="test-verifier",
                               name="Primary", priority=1, base_url=dead_url, credentials_encrypted=creds)
ProviderAccount.objects.create(workspace=ws, capability="verify_email", adapter="test-verifier",
                               name="Fallback", priority=2, base_url=fallback_url, credentials_encrypted=creds)
for i in range(4):
    services.verify_email(workspace=ws, email=f"w{i}@example.com")
print(breaker.status(pk).state)
"""


def test_breaker_opened_by_another_worker_process_steers_this_one(
    closed_port, workspace, httpserver, fallback_server, gateway_fast, redis_url, tmp_path, settings
):
    """A separate OS process (own interpreter, own DB connection) sees the primary fail and opens its
    breaker; this process then skips the primary without ever calling it, through the shared Redis."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    primary = ProviderAccountFactory(
        workspace=workspace, name="Primary", priority=1, base_url=httpserver.url_for("")
    )
    ProviderAccountFactory(
        workspace=workspace, name="Fallback", priority=2, base_url=fallback_server.url_for("")
    )
    fallback_server.expect_request(VERIFY).respond_with_handler(ok_body)
    httpserver.expect_request(VERIFY).respond_with_handler(ok_body)  # alive here: must still not be called
    dead = f"http://127.0.0.1:{closed_port()}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "aicmo.settings",
        "AICMO_ENV": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'worker.sqlite3'}",
        "REDIS_URL": redis_url,
        "AICMO_GATEWAY_LOOPBACK_ALLOW": ",".join(settings.GATEWAY_LOOPBACK_ALLOW),
    }
    out = subprocess.run(
        [sys.executable, "-c", WORKER_SCRIPT, str(primary.pk), dead, fallback_server.url_for("")],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-1] == "open"
    results = verify_many(workspace, 3)
    assert all(r.verdict == Verdict.VALID for r in results)
    assert not httpserver.log  # the breaker opened in the other process kept us away from the primary
    assert breaker.status(primary.pk).state == breaker.OPEN
