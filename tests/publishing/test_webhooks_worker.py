"""Webhooks through a live Celery worker on the ``webhooks`` queue: a receiver that hangs past the timeout
holds one attempt, not the worker — another endpoint's deliveries arrive while the hang is in progress —
and the hung attempt ends as a timeout scheduled for retry."""

from __future__ import annotations

import threading

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from gateway.capabilities import Capability
from gateway.models import ProviderAccount
from publishing.models import WebhookDelivery, WebhookDeliveryStatus
from publishing.services import webhooks
from tests.fixtures.services import wait_until

pytestmark = pytest.mark.slow
S = WebhookDeliveryStatus
TIMEOUT_SECONDS = 8.0  # the attempt's total deadline; far above what three healthy deliveries take


@pytest.fixture
def hanging_server(loopback_allow):
    """A receiver that answers only when ``release`` is set (or after a minute); ``started`` is set when
    a request came in and ``in_progress`` is true while one is being held."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.started, server.release, server.in_progress = threading.Event(), threading.Event(), False

    def hang(_request):
        server.in_progress = True
        server.started.set()
        server.release.wait(60)
        server.in_progress = False
        return Response("", status=200)

    server.expect_request("/hang", method="POST").respond_with_handler(hang)
    server.start()
    loopback_allow(server.host, server.port)
    yield server
    server.release.set()
    server.clear()
    if server.is_running():
        server.stop()


def test_a_hanging_receiver_does_not_block_other_deliveries(
    workspace, celery_worker_on, hanging_server, httpserver, redis_client
):
    arrivals: list[bool] = []  # for each healthy delivery: was the hanging request still held?

    def healthy(_request):
        arrivals.append(hanging_server.in_progress)
        return Response("", status=204)

    httpserver.expect_request("/ok", method="POST").respond_with_handler(healthy)
    hang, _ = webhooks.endpoint_create(
        workspace=workspace, by=None, url=hanging_server.url_for("/hang"), event_types=["email.opened"]
    )
    fine, _ = webhooks.endpoint_create(
        workspace=workspace, by=None, url=httpserver.url_for("/ok"), event_types=["email.opened"]
    )
    ProviderAccount.objects.filter(capability=Capability.DISPATCH_WEBHOOK).update(
        timeout_seconds=TIMEOUT_SECONDS
    )

    with celery_worker_on(["webhooks"], pool="threads", concurrency=2):
        stuck = webhooks.endpoint_send_test(endpoint=hang)
        wait_until(hanging_server.started.is_set, 60, "the hanging receiver got its request")
        sent = [webhooks.endpoint_send_test(endpoint=fine) for _ in range(3)]
        ids = [d.pk for d in sent]
        wait_until(
            lambda: WebhookDelivery.objects.filter(pk__in=ids, status=S.SUCCEEDED).count() == 3,
            60,
            "the healthy endpoint's deliveries succeeded",
            detail=lambda: list(WebhookDelivery.objects.values_list("pk", "status", "last_error")),
        )
        in_flight = WebhookDelivery.objects.get(pk=stuck.pk)
        assert in_flight.status == S.PENDING and in_flight.claimed_until is not None  # still held
        assert arrivals == [True, True, True]

        wait_until(
            lambda: WebhookDelivery.objects.get(pk=stuck.pk).status != S.PENDING,
            60,
            "the hung attempt timed out",
        )
        hanging_server.release.set()

    stuck.refresh_from_db()
    assert stuck.status == S.RETRYING and "Timeout" in stuck.last_error and stuck.attempts == 1
    assert stuck.next_attempt_at > stuck.last_attempt_at and stuck.claimed_until is None
