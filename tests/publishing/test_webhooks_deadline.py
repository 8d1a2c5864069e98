"""A receiver that trickles its answer (headers at once, then a byte at a time; or even the status line a
byte at a time) never trips a per-read timeout. The gateway's total deadline ends the attempt anyway, and
the delivery is scheduled for retry with the deadline named in its error; an endless body is read only up to
the webhook adapter's cap."""

from __future__ import annotations

import time

import pytest

from gateway.capabilities import Capability
from gateway.models import ProviderAccount
from publishing.models import WebhookDeliveryStatus, WebhookEventType
from publishing.services import webhooks

from .test_webhooks import attempt

pytestmark = pytest.mark.django_db
S = WebhookDeliveryStatus
DEADLINE = 1.0  # the account's timeout: far above any single gap between the receiver's bytes
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 200\r\n\r\n"


def endpoint_for(workspace, url):
    endpoint, _ = webhooks.endpoint_create(
        workspace=workspace, by=None, url=url, event_types=list(WebhookEventType.values)
    )
    ProviderAccount.objects.filter(workspace=workspace, capability=Capability.DISPATCH_WEBHOOK).update(
        timeout_seconds=DEADLINE
    )
    return endpoint


@pytest.mark.parametrize(
    ("what", "trickle_head"), [("the body", False), ("the status line and headers", True)]
)
def test_a_trickling_receiver_is_cut_at_the_total_deadline(
    workspace, trickle_server, redis_client, what, trickle_head
):
    server = trickle_server(head=HEAD, body=b"x" * 200, interval=0.05, trickle_head=trickle_head)
    assert server.full_answer_seconds > 10 * DEADLINE  # each gap is 20x shorter than the read timeout
    endpoint = endpoint_for(workspace, server.url_for("/hook"))

    started = time.monotonic()
    delivery = attempt(webhooks.endpoint_send_test(endpoint=endpoint))
    took = time.monotonic() - started

    assert delivery.status == S.RETRYING and delivery.attempts == 1 and delivery.next_attempt_at is not None
    assert f"exceeded the {DEADLINE:g} s total deadline" in delivery.last_error
    assert delivery.last_status_code is None
    assert took < server.full_answer_seconds / 2  # it ended long before the receiver would have
    assert server.finished == 0


def test_an_endless_body_is_read_only_up_to_the_cap(workspace, trickle_server, redis_client):
    """Only the status decides a delivery: a 200 with a body that never ends succeeds once the cap is read,
    instead of filling memory or running into the deadline."""
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    server = trickle_server(head=head, body=None, interval=0, step=8192)
    endpoint = endpoint_for(workspace, server.url_for("/hook"))

    delivery = attempt(webhooks.endpoint_send_test(endpoint=endpoint))

    assert (delivery.status, delivery.last_status_code, delivery.last_error) == (S.SUCCEEDED, 200, "")
