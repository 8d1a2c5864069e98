"""EmailBatch: send_email for a run of messages reads the workspace's accounts once, and still fails over,
skips an account that needs re-authentication and reports every-provider-down like send_email."""

from __future__ import annotations

import socket

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aicmo.localredis import free_port
from gateway import breaker
from gateway.capabilities import Capability, OutgoingEmail
from gateway.errors import ProvidersUnavailable
from gateway.health import health_flush
from gateway.models import AccountState, HealthMinute, ProviderAccount
from gateway.services import EmailBatch, account_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def fast_gateway(settings, redis_client):
    """Real Redis for the breaker and a short retry budget."""
    settings.GATEWAY_RETRY = {"max_attempts": 4, "max_seconds": 3, "base_delay": 0.01, "max_delay": 0.02}
    return redis_client


def account(workspace, port: int, *, name: str, priority: int) -> ProviderAccount:
    """An SMTP send_email account at ``port`` on loopback, made through the gateway's own service."""
    return account_create(
        workspace=workspace,
        by=None,
        capability=Capability.SEND_EMAIL,
        adapter="smtp",
        name=name,
        priority=priority,
        base_url=f"smtp+plain://127.0.0.1:{port}",
        options={"from_email": "news@acme.example"},
        credentials={"username": "mailer", "password": "pw"},
    )


def message(i: int) -> OutgoingEmail:
    return OutgoingEmail(to=f"p{i}@example.com", subject="Hi", text="Hello")


def closed_port(loopback_allow) -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    loopback_allow("127.0.0.1", port)
    return port


def test_accounts_are_read_once_per_batch(workspace, smtp_sink, fast_gateway):
    account(workspace, smtp_sink.port, name="Sink", priority=1)
    batch = EmailBatch(workspace=workspace)
    with CaptureQueriesContext(connection) as ctx:
        results = [batch.send(message(i)) for i in range(5)]
    lookups = [q for q in ctx.captured_queries if 'FROM "gateway_provideraccount"' in q["sql"]]
    assert len(lookups) == 1
    assert [r.to for r in results] == [f"p{i}@example.com" for i in range(5)]
    assert len(smtp_sink.wait_for(5)) == 5


def test_a_down_primary_fails_over_for_every_message(workspace, smtp_sink, fast_gateway, loopback_allow):
    account(workspace, closed_port(loopback_allow), name="Down", priority=1)
    account(workspace, smtp_sink.port, name="Sink", priority=2)
    batch = EmailBatch(workspace=workspace)
    for i in range(4):
        assert batch.send(message(i)).provider == "smtp"
    assert sorted(m["To"] for m in smtp_sink.wait_for(4)) == [f"p{i}@example.com" for i in range(4)]


class _RejectingLogin:
    def __init__(self) -> None:
        self.auth_attempts = 0

    async def handle_AUTH(self, server, session, envelope, args):  # noqa: N802 - aiosmtpd's hook name
        self.auth_attempts += 1
        return "535 5.7.8 Authentication credentials invalid"


def test_an_account_rejecting_its_credentials_is_left_out_of_the_rest_of_the_batch(
    workspace, smtp_sink, fast_gateway, loopback_allow
):
    handler, port = _RejectingLogin(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    try:
        loopback_allow("127.0.0.1", port)
        primary = account(workspace, port, name="Bad login", priority=1)
        account(workspace, smtp_sink.port, name="Sink", priority=2)
        batch = EmailBatch(workspace=workspace)
        for i in range(3):
            batch.send(message(i))
    finally:
        controller.stop()
    assert handler.auth_attempts == 1
    primary.refresh_from_db()
    assert primary.state == AccountState.NEEDS_REAUTH
    assert len(smtp_sink.wait_for(3)) == 3


def test_no_account_is_providers_unavailable(workspace, fast_gateway):
    with pytest.raises(ProvidersUnavailable) as info:
        EmailBatch(workspace=workspace).send(message(0))
    assert "no provider account is configured" in str(info.value)


def test_every_outcome_is_recorded_by_the_time_the_batch_closes(workspace, smtp_sink, fast_gateway):
    # Given an account and a batch of five messages (successes wait for the next message's gate)
    sink = account(workspace, smtp_sink.port, name="Sink", priority=1)
    with EmailBatch(workspace=workspace) as batch:
        for i in range(5):
            batch.send(message(i))
    # Then once closed, the breaker window and the health minute count all five
    assert breaker.status(sink.pk).window_calls == 5
    health_flush(account_ids=[sink.pk])
    totals = HealthMinute.objects.filter(account=sink).aggregate(calls=Sum("calls"), ok=Sum("successes"))
    assert totals == {"calls": 5, "ok": 5}


def test_failures_after_buffered_successes_still_open_the_breaker(
    workspace, smtp_sink, fast_gateway, settings, loopback_allow
):
    # Given a breaker that opens after 3 consecutive failures, and an account that worked, then went away
    settings.GATEWAY_BREAKER = {"consecutive_failures": 3, "min_calls": 100, "cooldown_seconds": 60}
    settings.GATEWAY_RETRY = {"max_attempts": 1, "max_seconds": 3, "base_delay": 0.01, "max_delay": 0.02}
    sink = account(workspace, smtp_sink.port, name="Sink", priority=1)
    with EmailBatch(workspace=workspace) as batch:
        for i in range(3):
            batch.send(message(i))
        moved = f"smtp+plain://127.0.0.1:{closed_port(loopback_allow)}"
        ProviderAccount.objects.filter(pk=sink.pk).update(base_url=moved, updated_at=timezone.now())
    with EmailBatch(workspace=workspace) as batch:
        for i in range(3):
            with pytest.raises(ProvidersUnavailable):
                batch.send(message(10 + i))
    # Then the breaker saw the three successes first and the failures after them, and opened
    status = breaker.status(sink.pk)
    assert status.state == breaker.OPEN
    assert HealthMinute.objects.count() == 0 and health_flush(account_ids=[sink.pk]) >= 1
    totals = HealthMinute.objects.filter(account=sink).aggregate(calls=Sum("calls"), ok=Sum("successes"))
    assert totals == {"calls": 6, "ok": 3}


def test_a_buffered_success_that_opens_the_breaker_is_noted_on_the_account(
    workspace, smtp_sink, fast_gateway, settings
):
    # Given a window one call short of min_calls, at the failure-rate threshold
    settings.GATEWAY_BREAKER = {"min_calls": 4, "failure_rate": 0.5, "consecutive_failures": 100}
    sink = account(workspace, smtp_sink.port, name="Sink", priority=1)
    for ok in (False, True, False):
        breaker.record(sink.pk, ok=ok, cause="HTTP 503", config=breaker.breaker_config())
    # When one message succeeds in a batch (its record waits for the batch's close)
    with EmailBatch(workspace=workspace) as batch:
        batch.send(message(1))
    # Then 2 failures in 4 calls opened the breaker, and the account shows it
    assert breaker.status(sink.pk).state == breaker.OPEN
    sink.refresh_from_db()
    assert sink.state == AccountState.COOLING
