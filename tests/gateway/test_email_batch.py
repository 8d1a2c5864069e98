"""EmailBatch: send_email for a run of messages reads the workspace's accounts once, and still fails over,
skips an account that needs re-authentication and reports every-provider-down like send_email."""

from __future__ import annotations

import socket

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aicmo.localredis import free_port
from gateway.capabilities import Capability, OutgoingEmail
from gateway.errors import ProvidersUnavailable
from gateway.models import AccountState, ProviderAccount
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
