"""The webhooks dashboard: admins add (secret shown once), edit, rotate, test, delete and retry; marketers
and reviewers read; viewers get 403; another workspace's rows are 404; receiver text is escaped."""

from __future__ import annotations

import pytest

from aicmo.models import Role
from publishing.models import WebhookDelivery, WebhookEndpoint
from publishing.services import webhooks

pytestmark = pytest.mark.django_db
HOSTILE = '"><img src=x onerror=alert(1)><script>alert(1)</script>'


@pytest.fixture
def hook_url(httpserver):
    return httpserver.url_for("/hook")


def form(url, **extra):
    return {
        "url": url,
        "description": "CRM",
        "event_types": ["email.opened", "campaign.sent"],
        "active": "on",
    } | extra


def test_admin_adds_an_endpoint_and_sees_the_secret_once(client_for, hook_url):
    client = client_for(role=Role.ADMIN)

    resp = client.post("/publishing/webhooks/new/", form(hook_url))

    endpoint = WebhookEndpoint.objects.get()
    assert resp.status_code == 302 and resp["Location"] == f"/publishing/webhooks/{endpoint.pk}/"
    assert endpoint.event_types == ["campaign.sent", "email.opened"] and endpoint.active
    first = client.get(resp["Location"]).content.decode()
    secret = webhooks.endpoint_secret(endpoint)
    assert secret in first and 'id="secret-once"' in first
    assert secret not in client.get(resp["Location"]).content.decode()

    client.post(f"/publishing/webhooks/{endpoint.pk}/rotate/")
    rotated = client.get(f"/publishing/webhooks/{endpoint.pk}/").content.decode()
    endpoint.refresh_from_db()
    assert webhooks.endpoint_secret(endpoint) in rotated and secret not in rotated


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "http://10.0.0.1/hook"}, "private address"),
        ({"url": "gopher://x.example/"}, "URLs are allowed"),
        ({"event_types": []}, "This field is required"),
        ({"event_types": ["email.sent"]}, "Select a valid choice"),
    ],
)
def test_bad_input_is_a_form_error(client_for, hook_url, data, message):
    client = client_for(role=Role.ADMIN)

    resp = client.post("/publishing/webhooks/new/", form(hook_url) | data)

    assert resp.status_code == 400 and message in resp.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_edit_test_retry_and_delete(client_for, hook_url):
    client = client_for(role=Role.ADMIN)
    endpoint, _ = webhooks.endpoint_create(
        workspace=client.workspace, by=None, url=hook_url, event_types=["email.opened"]
    )

    resp = client.post(f"/publishing/webhooks/{endpoint.pk}/", form(hook_url, description="Renamed"))
    assert resp.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.description == "Renamed"
    assert client.post(f"/publishing/webhooks/{endpoint.pk}/", form("http://127.0.0.2:1/")).status_code == 400
    client.post(f"/publishing/webhooks/{endpoint.pk}/test/")
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "webhook.test"
    WebhookDelivery.objects.update(status="failed", last_error=HOSTILE)
    page = client.get("/publishing/webhooks/").content.decode()
    assert HOSTILE not in page and "&lt;script&gt;" in page and ">Retry</button>" in page

    resp = client.post(f"/publishing/webhooks/deliveries/{delivery.pk}/retry/")
    assert resp.status_code == 302 and WebhookDelivery.objects.get().status == "pending"
    assert client.get(f"/publishing/webhooks/{endpoint.pk}/delete/").status_code == 200
    assert client.post(f"/publishing/webhooks/{endpoint.pk}/delete/").status_code == 302
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("role", "read", "manage"),
    [(Role.MARKETER, 200, 403), (Role.REVIEWER, 200, 403), (Role.VIEWER, 403, 403)],
)
def test_who_may_see_and_change(client_for, workspace, hook_url, role, read, manage):
    endpoint, _ = webhooks.endpoint_create(
        workspace=workspace, by=None, url=hook_url, event_types=["email.opened"]
    )
    delivery = webhooks.endpoint_send_test(endpoint=endpoint)
    WebhookDelivery.objects.update(status="failed")
    client = client_for(role=role)

    assert client.get("/publishing/webhooks/").status_code == read
    page = client.get(f"/publishing/webhooks/{endpoint.pk}/")
    assert page.status_code == read
    if read == 200:
        assert ">Retry</button>" not in page.content.decode() and "rotate-secret" not in page.content.decode()
    answers = [
        client.get("/publishing/webhooks/new/").status_code,
        client.post("/publishing/webhooks/new/", form(hook_url)).status_code,
        client.post(f"/publishing/webhooks/{endpoint.pk}/", form(hook_url)).status_code,
        client.post(f"/publishing/webhooks/{endpoint.pk}/rotate/").status_code,
        client.post(f"/publishing/webhooks/{endpoint.pk}/test/").status_code,
        client.post(f"/publishing/webhooks/{endpoint.pk}/delete/").status_code,
        client.post(f"/publishing/webhooks/deliveries/{delivery.pk}/retry/").status_code,
    ]
    assert answers == [manage] * 7
    assert WebhookEndpoint.objects.count() == 1 and WebhookDelivery.objects.get().status == "failed"


def test_another_workspaces_endpoint_is_404(client_for, other_workspace, hook_url):
    theirs, _ = webhooks.endpoint_create(
        workspace=other_workspace, by=None, url=hook_url, event_types=["email.opened"]
    )
    delivery = webhooks.endpoint_send_test(endpoint=theirs)
    client = client_for(role=Role.ADMIN)

    answers = [
        client.get(f"/publishing/webhooks/{theirs.pk}/").status_code,
        client.post(f"/publishing/webhooks/{theirs.pk}/", form(hook_url)).status_code,
        client.get(f"/publishing/webhooks/{theirs.pk}/delete/").status_code,
        client.post(f"/publishing/webhooks/{theirs.pk}/delete/").status_code,
        client.post(f"/publishing/webhooks/{theirs.pk}/rotate/").status_code,
        client.post(f"/publishing/webhooks/{theirs.pk}/test/").status_code,
        client.post(f"/publishing/webhooks/deliveries/{delivery.pk}/retry/").status_code,
    ]

    assert answers == [404] * 7
    assert theirs.url not in client.get("/publishing/webhooks/").content.decode()
    assert WebhookDelivery.objects.count() == 1


def test_the_list_page_is_flat_in_queries(client_for, hook_url, django_assert_max_num_queries):
    client = client_for(role=Role.ADMIN)
    for n in range(6):
        endpoint, _ = webhooks.endpoint_create(
            workspace=client.workspace,
            by=None,
            url=hook_url,
            event_types=["email.opened"],
            description=f"E{n}",
        )
        for _ in range(4):
            webhooks.endpoint_send_test(endpoint=endpoint)

    with django_assert_max_num_queries(12):
        resp = client.get("/publishing/webhooks/")
    assert resp.status_code == 200 and resp.content.decode().count("data-delivery=") == 24


def test_admin_site_creates_through_the_service_shows_the_secret_once_and_retries(
    staff_for, workspace, other_workspace, hook_url
):
    client = staff_for(Role.ADMIN)
    resp = client.post(
        "/admin/publishing/webhookendpoint/add/",
        {
            "workspace": workspace.pk,
            "url": hook_url,
            "description": "Zap",
            "event_types": ["email.opened"],
            "active": "on",
        },
        follow=True,
    )
    assert resp.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    shown = " ".join(str(m) for m in resp.context["messages"])
    assert webhooks.endpoint_secret(endpoint) in shown and endpoint.secret_hint
    refused = client.post(
        "/admin/publishing/webhookendpoint/add/",
        {"workspace": workspace.pk, "url": "http://10.9.9.9/", "event_types": ["email.opened"]},
    )
    assert refused.status_code == 200 and "private address" in refused.content.decode()
    assert WebhookEndpoint.objects.count() == 1

    delivery = webhooks.endpoint_send_test(endpoint=endpoint)
    WebhookDelivery.objects.update(status="failed")
    client.post(
        "/admin/publishing/webhookdelivery/",
        {"action": "retry", "_selected_action": [delivery.pk]},
    )
    assert WebhookDelivery.objects.get().status == "pending"
    theirs, _ = webhooks.endpoint_create(
        workspace=other_workspace, by=None, url=hook_url, event_types=["email.opened"]
    )
    assert client.get(f"/admin/publishing/webhookendpoint/{theirs.pk}/change/").status_code == 404
