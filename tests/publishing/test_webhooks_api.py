"""The webhooks API: admins manage endpoints (secret shown once, rotate, test) and retry deliveries;
marketers and reviewers read; viewers see nothing; bad input is a 400 naming the field; lists are flat in
queries; another workspace's ids are 404."""

from __future__ import annotations

import pytest
from django.utils import timezone

from aicmo.models import AuditEvent, Role
from gateway.capabilities import Capability
from gateway.models import ProviderAccount
from publishing.models import WebhookDelivery, WebhookEndpoint
from publishing.services import webhooks

pytestmark = pytest.mark.django_db
BASE = "/api/v1/publishing/webhooks/"
LOG = "/api/v1/publishing/webhook-deliveries/"


@pytest.fixture
def admin(api_client_for):
    return api_client_for(role=Role.ADMIN)


@pytest.fixture
def hook_url(httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=200)
    return httpserver.url_for("/hook")


def create(client, url, **extra):
    body = {"url": url, "event_types": ["email.opened", "email.clicked"], "description": "CRM sync"} | extra
    return client.post(BASE, body, format="json")


def test_create_shows_the_secret_once_and_sets_up_the_gateway_account(admin, hook_url):
    resp = create(admin, hook_url)

    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert body["secret"].startswith("whsec_") and body["secret_hint"].endswith(body["secret"][-4:])
    assert body["event_types"] == ["email.opened", "email.clicked"] and body["active"] is True
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert body["secret"] not in endpoint.secret_encrypted
    assert webhooks.endpoint_secret(endpoint) == body["secret"]
    assert "secret" not in admin.get(f"{BASE}{endpoint.pk}/").json()
    assert "secret" not in admin.get(BASE).json()["results"][0]
    account = ProviderAccount.objects.get(workspace=admin.workspace, capability=Capability.DISPATCH_WEBHOOK)
    assert account.adapter == "webhook" and account.timeout_seconds == webhooks.GATEWAY_TIMEOUT_SECONDS
    create(admin, hook_url)
    assert ProviderAccount.objects.filter(capability=Capability.DISPATCH_WEBHOOK).count() == 1
    assert AuditEvent.objects.filter(verb="publishing.webhook_created").count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://10.1.2.3/x"}, "url"),
        ({"url": "http://169.254.169.254/"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "x" * 2100}, "url"),
        ({"event_types": []}, "event_types"),
        ({"event_types": ["email.sent"]}, "event_types"),
        ({"event_types": "email.opened"}, "event_types"),
        ({"event_types": [["email.opened"]]}, "event_types"),
        ({"description": "d" * 201}, "description"),
        ({"active": "maybe"}, "active"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(admin, hook_url, body, field):
    resp = admin.post(BASE, {"url": hook_url, "event_types": ["email.opened"]} | body, format="json")

    assert resp.status_code == 400, resp.content
    assert field in str(resp.json()["error"])
    assert not WebhookEndpoint.objects.exists()


def test_update_rotate_test_and_delete(admin, hook_url, redis_client):
    endpoint_id = create(admin, hook_url).json()["id"]
    old = webhooks.endpoint_secret(WebhookEndpoint.objects.get(pk=endpoint_id))

    resp = admin.patch(f"{BASE}{endpoint_id}/", {"event_types": ["campaign.sent"]}, format="json")
    assert resp.status_code == 200 and resp.json()["event_types"] == ["campaign.sent"]
    resp = admin.patch(f"{BASE}{endpoint_id}/", {"url": "http://192.168.1.1/"}, format="json")
    assert resp.status_code == 400
    rotated = admin.post(f"{BASE}{endpoint_id}/rotate-secret/")
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (old, "")
    test = admin.post(f"{BASE}{endpoint_id}/test/")
    assert test.status_code == 202 and test.json()["event_type"] == "webhook.test"
    assert test.json()["status"] == "pending"
    log = admin.get(f"{BASE}{endpoint_id}/deliveries/")
    assert [d["id"] for d in log.json()["results"]] == [test.json()["id"]]
    assert admin.get(f"{BASE}{endpoint_id}/deliveries/", {"status": "nope"}).status_code == 400

    disabled = admin.patch(f"{BASE}{endpoint_id}/", {"active": False}, format="json").json()
    assert disabled["active"] is False and disabled["disabled_reason"]
    assert WebhookDelivery.objects.get().status == "discarded"
    assert admin.post(f"{BASE}{endpoint_id}/test/").status_code == 400
    assert admin.delete(f"{BASE}{endpoint_id}/").status_code == 204
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()


def test_retry_a_failed_delivery(admin, hook_url):
    endpoint, _ = webhooks.endpoint_create(
        workspace=admin.workspace, by=admin.user, url=hook_url, event_types=["email.opened"]
    )
    delivery = webhooks.endpoint_send_test(endpoint=endpoint)
    assert admin.post(f"{LOG}{delivery.pk}/retry/").status_code == 400  # still pending
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=9, last_error="HTTP 500")

    resp = admin.post(f"{LOG}{delivery.pk}/retry/")

    assert resp.status_code == 202
    assert (resp.json()["status"], resp.json()["attempts"]) == ("pending", 0)
    assert resp.json()["event_id"] == delivery.event_id


@pytest.mark.parametrize(
    ("role", "read", "manage"),
    [
        (Role.ADMIN, 200, True),
        (Role.REVIEWER, 200, False),
        (Role.MARKETER, 200, False),
        (Role.VIEWER, 403, False),
    ],
)
def test_admins_manage_marketers_and_reviewers_read_viewers_see_nothing(
    api_client_for, workspace, hook_url, role, read, manage
):
    endpoint, _ = webhooks.endpoint_create(
        workspace=workspace, by=None, url=hook_url, event_types=["email.opened"]
    )
    delivery = webhooks.endpoint_send_test(endpoint=endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed")
    client = api_client_for(role=role)

    assert client.get(BASE).status_code == read
    assert client.get(f"{BASE}{endpoint.pk}/deliveries/").status_code == read
    assert client.get(LOG).status_code == read
    writes = [
        client.post(BASE, {"url": hook_url, "event_types": ["email.opened"]}, format="json"),
        client.patch(f"{BASE}{endpoint.pk}/", {"description": "x"}, format="json"),
        client.post(f"{BASE}{endpoint.pk}/rotate-secret/"),
        client.post(f"{BASE}{endpoint.pk}/test/"),
        client.post(f"{LOG}{delivery.pk}/retry/"),
    ]
    expected = [201, 200, 200, 202, 202] if manage else [403] * 5
    assert [r.status_code for r in writes] == expected


def test_lists_are_flat_in_queries(admin, hook_url, django_assert_max_num_queries):
    for n in range(8):
        endpoint, _ = webhooks.endpoint_create(
            workspace=admin.workspace,
            by=None,
            url=hook_url,
            event_types=["email.opened"],
            description=f"E{n}",
        )
        for _ in range(3):
            webhooks.endpoint_send_test(endpoint=endpoint)

    with django_assert_max_num_queries(8):
        assert len(admin.get(BASE, {"page_size": 50}).json()["results"]) == 8
    with django_assert_max_num_queries(8):
        assert len(admin.get(LOG, {"page_size": 50}).json()["results"]) == 24


def test_another_workspaces_endpoints_and_deliveries_are_404(admin, other_workspace, hook_url):
    theirs, _ = webhooks.endpoint_create(
        workspace=other_workspace, by=None, url=hook_url, event_types=["email.opened"]
    )
    delivery = webhooks.endpoint_send_test(endpoint=theirs)
    before = (theirs.secret_encrypted, delivery.status, timezone.now())

    answers = [
        admin.get(f"{BASE}{theirs.pk}/").status_code,
        admin.patch(f"{BASE}{theirs.pk}/", {"active": False}, format="json").status_code,
        admin.post(f"{BASE}{theirs.pk}/rotate-secret/").status_code,
        admin.post(f"{BASE}{theirs.pk}/test/").status_code,
        admin.get(f"{BASE}{theirs.pk}/deliveries/").status_code,
        admin.post(f"{LOG}{delivery.pk}/retry/").status_code,
        admin.get(f"{LOG}{delivery.pk}/").status_code,
        admin.delete(f"{BASE}{theirs.pk}/").status_code,
    ]

    assert answers == [404] * 8
    theirs.refresh_from_db()
    delivery.refresh_from_db()
    assert (theirs.secret_encrypted, delivery.status) == before[:2] and theirs.active
    assert admin.get(LOG).json()["results"] == [] and admin.get(BASE).json()["results"] == []
    assert admin.get(LOG, {"endpoint": theirs.pk}).status_code in (200, 400)
