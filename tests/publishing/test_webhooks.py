"""Outbound webhooks against real HTTP receivers (pytest-httpserver): the Standard Webhooks signature as
the reference library verifies it, what each receiver answer does to the delivery and the endpoint, the
retry schedule, the SSRF guard at save and connect time, and events fanned out only on commit."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook
from werkzeug import Response

from gateway.capabilities import Capability
from gateway.models import AccountState, ProviderAccount
from publishing.models import (
    Delivery,
    EngagementKind,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEventType,
)
from publishing.services import campaigns, conversions, tracking, webhooks
from publishing.services.event_buffer import events_insert

from .conftest import make_campaign

pytestmark = pytest.mark.django_db
S = WebhookDeliveryStatus
ALL_TYPES = list(WebhookEventType.values)


def make_endpoint(workspace, url, types=None) -> tuple[WebhookEndpoint, str]:
    return webhooks.endpoint_create(workspace=workspace, by=None, url=url, event_types=types or ALL_TYPES)


def attempt(delivery: WebhookDelivery) -> WebhookDelivery:
    """Make the delivery due now and run one attempt, as the worker does."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    webhooks.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


def answer(httpserver, status, headers=None, path="/hook"):
    httpserver.expect_request(path, method="POST").respond_with_data("", status=status, headers=headers or {})
    return httpserver.url_for(path)


@pytest.fixture
def one_delivery(workspace):
    """A campaign whose one recipient's Delivery row exists (frozen audience, nothing sent)."""
    campaign = make_campaign(workspace, n=1)
    campaigns.campaign_send_now(campaign=campaign)
    return Delivery.objects.get(campaign=campaign)


def test_signature_verifies_with_the_reference_library(workspace, httpserver, redis_client):
    url = answer(httpserver, 200)
    endpoint, secret = make_endpoint(workspace, url)
    delivery = attempt(webhooks.endpoint_send_test(endpoint=endpoint))

    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (S.SUCCEEDED, 1, 200)
    request = httpserver.log[0][0]
    payload = Webhook(secret).verify(request.get_data(), dict(request.headers))
    assert payload["type"] == "webhook.test" and payload["data"]["endpoint"] == {"id": endpoint.pk}
    assert request.headers["webhook-id"] == delivery.event_id
    with pytest.raises(Exception, match="signature"):
        Webhook(webhooks.endpoint_rotate_secret(endpoint=endpoint, by=None)).verify(
            request.get_data(), dict(request.headers)
        )


def test_a_retry_carries_the_same_webhook_id_and_timestamped_envelope(workspace, httpserver, redis_client):
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("", status=500)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("", status=200)
    endpoint, secret = make_endpoint(workspace, httpserver.url_for("/hook"))
    delivery = webhooks.endpoint_send_test(endpoint=endpoint)

    assert attempt(delivery).status == S.RETRYING
    assert attempt(delivery).status == S.SUCCEEDED
    first, second = (request for request, _ in httpserver.log)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.event_id
    assert json.loads(first.get_data()) == json.loads(second.get_data())  # same envelope, same timestamp
    Webhook(secret).verify(second.get_data(), dict(second.headers))


def _within(delivery, seconds: float, slack: float = 5.0) -> bool:
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    return seconds - slack <= wait <= seconds + slack


@pytest.mark.parametrize(
    ("status", "headers", "expected", "code"),
    [
        (200, {}, S.SUCCEEDED, 200),
        (204, {}, S.SUCCEEDED, 204),
        (400, {}, S.FAILED, 400),
        (401, {}, S.FAILED, 401),
        (403, {}, S.FAILED, 403),
        (404, {}, S.FAILED, 404),
        (422, {}, S.FAILED, 422),
        (408, {}, S.RETRYING, 408),
        (500, {}, S.RETRYING, 500),
        (502, {}, S.RETRYING, 502),
        (503, {}, S.RETRYING, 503),
        (429, {}, S.RETRYING, 429),
        (301, {"Location": "https://elsewhere.example/hook"}, S.RETRYING, 301),
        (307, {"Location": "http://169.254.169.254/latest"}, S.RETRYING, 307),
    ],
)
def test_each_receiver_answer_decides_the_delivery(
    workspace, httpserver, redis_client, status, headers, expected, code
):
    endpoint, _ = make_endpoint(workspace, answer(httpserver, status, headers))
    delivery = attempt(webhooks.endpoint_send_test(endpoint=endpoint))

    assert (delivery.status, delivery.last_status_code, delivery.attempts) == (expected, code, 1)
    assert len(httpserver.log) == 1  # a redirect is never followed
    if expected == S.RETRYING:
        assert _within(delivery, webhooks.RETRY_BASE_SECONDS, slack=webhooks.RETRY_BASE_SECONDS * 0.2 + 1)
    else:
        assert delivery.next_attempt_at is None and delivery.finished_at is not None
    if "Location" in headers:
        assert headers["Location"] in delivery.last_error and "not followed" in delivery.last_error
    account = ProviderAccount.objects.get(workspace=workspace, capability=Capability.DISPATCH_WEBHOOK)
    assert account.state == AccountState.HEALTHY  # a receiver's 401/403 is not our credentials' fault
    endpoint.refresh_from_db()
    assert endpoint.active


def test_410_disables_the_endpoint_and_discards_what_waits(workspace, httpserver, redis_client):
    endpoint, _ = make_endpoint(workspace, answer(httpserver, 410))
    waiting = webhooks.endpoint_send_test(endpoint=endpoint)
    delivery = attempt(webhooks.endpoint_send_test(endpoint=endpoint))

    endpoint.refresh_from_db()
    waiting.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == (S.FAILED, 410)
    assert not endpoint.active and "410" in endpoint.disabled_reason and endpoint.disabled_at
    assert waiting.status == S.DISCARDED and "410" in waiting.last_error
    assert webhooks.delivery_attempt(delivery_id=waiting.pk) == "skipped"
    assert len(httpserver.log) == 1
    with pytest.raises(ValidationError):
        webhooks.endpoint_send_test(endpoint=endpoint)


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [
        ("120", 120),
        (lambda: format_datetime(datetime.now(UTC) + timedelta(minutes=30), usegmt=True), 1800),
        (str(2 * 24 * 3600), webhooks.RETRY_AFTER_CAP_SECONDS),  # capped
        ("0", 1),
    ],
)
def test_retry_after_sets_the_next_attempt(workspace, httpserver, redis_client, status, retry_after, seconds):
    value = retry_after() if callable(retry_after) else retry_after
    endpoint, _ = make_endpoint(workspace, answer(httpserver, status, {"Retry-After": value}))
    delivery = attempt(webhooks.endpoint_send_test(endpoint=endpoint))

    assert delivery.status == S.RETRYING and delivery.last_status_code == status
    assert _within(delivery, seconds)


def test_a_429_of_one_receiver_does_not_hold_the_others(workspace, httpserver, redis_client):
    """The chain used to turn a receiver's Retry-After into a hold on the workspace's one webhook account,
    so every other endpoint waited (or was refused) too."""
    slow, _ = make_endpoint(workspace, answer(httpserver, 429, {"Retry-After": "300"}, path="/slow"))
    fine, _ = make_endpoint(workspace, answer(httpserver, 200, path="/fine"))

    assert attempt(webhooks.endpoint_send_test(endpoint=slow)).status == S.RETRYING
    assert attempt(webhooks.endpoint_send_test(endpoint=fine)).status == S.SUCCEEDED


def test_timeouts_and_refused_connections_are_retried(workspace, httpserver, redis_client, loopback_allow):
    def hang(_request):
        time.sleep(1.5)
        return Response("late", status=200)

    httpserver.expect_request("/hang", method="POST").respond_with_handler(hang)
    hanging, _ = make_endpoint(workspace, httpserver.url_for("/hang"))
    ProviderAccount.objects.filter(capability=Capability.DISPATCH_WEBHOOK).update(timeout_seconds=0.3)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    loopback_allow("127.0.0.1", closed_port)
    refused, _ = make_endpoint(workspace, f"http://127.0.0.1:{closed_port}/hook")

    timed_out = attempt(webhooks.endpoint_send_test(endpoint=hanging))
    no_answer = attempt(webhooks.endpoint_send_test(endpoint=refused))

    assert timed_out.status == S.RETRYING and "Timeout" in timed_out.last_error
    assert no_answer.status == S.RETRYING and timed_out.last_status_code is None
    assert "Connect" in no_answer.last_error


def test_retry_schedule_spans_about_a_day_then_fails(workspace, httpserver, redis_client):
    endpoint, _ = make_endpoint(workspace, answer(httpserver, 500))
    delivery = webhooks.endpoint_send_test(endpoint=endpoint)
    waits = []
    for n in range(1, webhooks.MAX_ATTEMPTS):
        delivery = attempt(delivery)
        assert delivery.status == S.RETRYING
        waits.append((delivery.next_attempt_at - delivery.last_attempt_at).total_seconds())
        base = min(webhooks.RETRY_MAX_SECONDS, webhooks.RETRY_BASE_SECONDS * webhooks.RETRY_FACTOR ** (n - 1))
        assert base * 0.8 - 1 <= waits[-1] <= base * 1.2 + 1
    delivery = attempt(delivery)

    assert delivery.status == S.FAILED and delivery.attempts == webhooks.MAX_ATTEMPTS
    assert "Gave up after 9 attempts" in delivery.last_error
    assert 18 * 3600 <= sum(waits) <= 30 * 3600
    assert len([r for r, _ in httpserver.log if r.path == "/hook"]) == webhooks.MAX_ATTEMPTS


def test_retry_delay_stays_within_its_jitter_band():
    for attempts in range(1, 30):
        base = min(
            webhooks.RETRY_MAX_SECONDS, webhooks.RETRY_BASE_SECONDS * webhooks.RETRY_FACTOR ** (attempts - 1)
        )
        delays = [webhooks.retry_delay(attempts) for _ in range(50)]
        assert all(base * 0.8 <= d <= base * 1.2 for d in delays)
        assert len(set(delays)) > 1  # jittered


def test_failed_deliveries_in_a_row_disable_the_endpoint_a_success_resets(
    workspace, httpserver, redis_client
):
    endpoint, _ = make_endpoint(workspace, answer(httpserver, 400))
    for _ in range(webhooks.DISABLE_AFTER_FAILED_DELIVERIES - 1):
        assert attempt(webhooks.endpoint_send_test(endpoint=endpoint)).status == S.FAILED
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)  # as a success does
    for _ in range(webhooks.DISABLE_AFTER_FAILED_DELIVERIES - 1):
        attempt(webhooks.endpoint_send_test(endpoint=endpoint))
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.consecutive_failures == webhooks.DISABLE_AFTER_FAILED_DELIVERIES - 1

    attempt(webhooks.endpoint_send_test(endpoint=endpoint))

    endpoint.refresh_from_db()
    assert not endpoint.active and "in a row failed" in endpoint.disabled_reason
    webhooks.endpoint_update(endpoint=endpoint, by=None, active=True)
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.consecutive_failures == 0 and endpoint.disabled_reason == ""


def test_a_success_resets_the_failure_count(workspace, httpserver, redis_client):
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("", status=400)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("", status=200)
    endpoint, _ = make_endpoint(workspace, httpserver.url_for("/hook"))
    attempt(webhooks.endpoint_send_test(endpoint=endpoint))
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1
    attempt(webhooks.endpoint_send_test(endpoint=endpoint))
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:9/hook",  # loopback, not on the allow-list
        "http://[::1]:9/hook",
        "http://2130706433/hook",
        "http://user:pw@hooks.example/x",
        "ftp://hooks.example/x",
        "javascript:alert(1)",
        "",
    ],
)
def test_unsafe_urls_are_refused_at_save(workspace, url):
    with pytest.raises(ValidationError) as err:
        make_endpoint(workspace, url)
    assert "url" in err.value.message_dict
    assert not WebhookEndpoint.objects.exists()


def test_the_guard_refuses_at_connect_time_too(workspace, httpserver, redis_client, settings):
    endpoint, _ = make_endpoint(workspace, answer(httpserver, 200))
    settings.GATEWAY_LOOPBACK_ALLOW = []  # the operator withdrew the allow-list entry

    delivery = attempt(webhooks.endpoint_send_test(endpoint=endpoint))

    assert delivery.status == S.FAILED and "loopback" in delivery.last_error
    assert not httpserver.log


def test_events_are_fanned_out_on_commit_and_never_from_a_rolled_back_transaction(
    workspace, one_delivery, httpserver, django_capture_on_commit_callbacks
):
    make_endpoint(workspace, answer(httpserver, 200), [WebhookEventType.EMAIL_REPLIED])

    def record_then_fail():
        with transaction.atomic():
            tracking.event_record(delivery=one_delivery, kind=EngagementKind.REPLY)
            raise RuntimeError("rolled back")

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
        record_then_fail()
    assert callbacks == [] and not WebhookDelivery.objects.exists()

    with django_capture_on_commit_callbacks() as callbacks:
        tracking.event_record(delivery=one_delivery, kind=EngagementKind.REPLY)
    assert len(callbacks) == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "email.replied"
    assert delivery.payload["contact"] == {"id": one_delivery.contact_id, "email": one_delivery.email}
    assert delivery.payload["campaign"] == {"id": one_delivery.campaign_id}


def test_only_subscribed_active_endpoints_of_the_workspace_get_an_event(
    workspace, other_workspace, one_delivery, httpserver
):
    url = answer(httpserver, 200)
    opens, _ = make_endpoint(workspace, url, [WebhookEventType.EMAIL_OPENED])
    clicks, _ = make_endpoint(workspace, url, [WebhookEventType.EMAIL_CLICKED])
    off, _ = make_endpoint(workspace, url, [WebhookEventType.EMAIL_OPENED])
    webhooks.endpoint_update(endpoint=off, by=None, active=False)
    theirs, _ = make_endpoint(other_workspace, url, [WebhookEventType.EMAIL_OPENED])
    record = {
        "token": one_delivery.token,
        "kind": "open",
        "ua": "Mozilla/5.0 (X11)",
        "at": time.time(),
        "key": "k1",
    }

    events_insert([record])
    events_insert([record])  # a re-drained batch: same key, same webhook-id, not doubled

    assert list(WebhookDelivery.objects.values_list("endpoint_id", "event_type", "event_id")) == [
        (opens.pk, "email.opened", "evt_k1")
    ]
    assert clicks and theirs


def test_conversions_and_campaign_schedules_are_events(workspace, one_delivery, httpserver):
    make_endpoint(workspace, answer(httpserver, 200))
    contact = one_delivery.contact
    conversions.conversion_record(
        workspace=workspace, order_id="A-1", value="12.50", currency="EUR", email=contact.email
    )
    conversions.conversion_record(  # the same order again: no second event
        workspace=workspace, order_id="A-1", value="12.50", currency="EUR", email=contact.email
    )
    first = one_delivery.campaign
    campaign = campaigns.campaign_create(
        workspace=workspace, name="Later", content=first.content, audience=first.audience
    )
    campaigns.campaign_schedule(campaign=campaign, when=datetime(2099, 1, 1, 9, 0))

    rows = {d.event_type: d for d in WebhookDelivery.objects.all()}
    assert set(rows) == {"conversion.recorded", "campaign.scheduled"}
    conversion = rows["conversion.recorded"].payload
    assert (
        conversion["order_id"] == "A-1" and conversion["value"] == "12.50" and conversion["currency"] == "EUR"
    )
    assert conversion["contact"] == {"id": contact.pk, "email": contact.email}
    scheduled = rows["campaign.scheduled"].payload["campaign"]
    assert scheduled["id"] == campaign.pk and scheduled["status"] == "scheduled"
    assert scheduled["scheduled_at"].startswith("2099-01-01")


def test_a_sent_campaign_is_an_event_with_its_counts(workspace, one_delivery, httpserver):
    from publishing.models import DeliveryStatus
    from publishing.services.sending import campaign_finish_if_complete

    make_endpoint(
        workspace, answer(httpserver, 200), [WebhookEventType.CAMPAIGN_SENT, WebhookEventType.CAMPAIGN_FAILED]
    )
    Delivery.objects.filter(pk=one_delivery.pk).update(status=DeliveryStatus.FAILED)

    campaign_finish_if_complete(campaign_id=one_delivery.campaign_id)

    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "campaign.failed"
    assert (
        delivery.payload["deliveries"]["failed"] == 1 and delivery.payload["campaign"]["status"] == "failed"
    )


def test_manual_retry_starts_a_fresh_schedule_with_the_same_id(workspace, httpserver, redis_client):
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("", status=400)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("", status=200)
    endpoint, _ = make_endpoint(workspace, httpserver.url_for("/hook"))
    delivery = attempt(webhooks.endpoint_send_test(endpoint=endpoint))
    assert delivery.status == S.FAILED

    webhooks.delivery_retry(delivery=delivery, by=None)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (S.PENDING, 0)
    with pytest.raises(ValidationError):
        webhooks.delivery_retry(delivery=delivery, by=None)  # still waiting
    delivery = attempt(delivery)

    assert delivery.status == S.SUCCEEDED
    ids = {request.headers["webhook-id"] for request, _ in httpserver.log}
    assert ids == {delivery.event_id}


def test_due_deliveries_are_queued_once_until_their_lease_expires(workspace, httpserver):
    endpoint, _ = make_endpoint(workspace, answer(httpserver, 200))
    webhooks.endpoint_send_test(endpoint=endpoint)
    later = webhooks.endpoint_send_test(endpoint=endpoint)
    WebhookDelivery.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))

    assert webhooks.deliveries_dispatch_due() == 1
    assert webhooks.deliveries_dispatch_due() == 0  # queued already
    assert webhooks.deliveries_dispatch_due(now=timezone.now() + timedelta(minutes=11)) == 1
    assert webhooks.deliveries_dispatch_due(now=timezone.now() + timedelta(hours=2)) == 2  # and the later one


def test_an_unreadable_secret_fails_the_delivery_instead_of_looping(workspace, httpserver, redis_client):
    endpoint, _ = make_endpoint(workspace, answer(httpserver, 200))
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret_encrypted="gAAAAAnot-a-fernet-token")

    delivery = attempt(webhooks.endpoint_send_test(endpoint=endpoint))

    assert delivery.status == S.FAILED and "rotate the secret" in delivery.last_error
    assert delivery.claimed_until is None and not httpserver.log
