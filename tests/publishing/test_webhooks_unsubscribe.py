"""``contact.unsubscribed`` comes from crm's consent service, the one place an opt-out is decided: each way
a contact opts out (one-click link, confirm page, ``mailto:``, API, dashboard, import with an opt-out
column, a spam complaint) fans out exactly one event, a repeat none, a rollback none, another workspace's
endpoint none; a bounce or a manual block is not an opt-out."""

from __future__ import annotations

import io

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from crm import services as crm_services
from crm.importing import import_create, import_execute
from crm.models import Contact, Suppression
from publishing.models import WebhookDelivery, WebhookEventType
from publishing.services import inbound, tracking, webhooks

from .conftest import MAILGUN_KEY, mailgun_body, send_to_one
from .test_webhooks import one_delivery  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
UNSUBSCRIBED = WebhookEventType.CONTACT_UNSUBSCRIBED


@pytest.fixture
def receiver(workspace):
    """An endpoint subscribed to contact.unsubscribed only (nothing is sent: the rows are what counts)."""
    endpoint, _ = webhooks.endpoint_create(
        workspace=workspace, by=None, url="https://hooks.example/aicmo", event_types=[UNSUBSCRIBED]
    )
    return endpoint


def events(contact_id=None):
    rows = WebhookDelivery.objects.filter(event_type=UNSUBSCRIBED).order_by("pk")
    if contact_id is not None:
        rows = [r for r in rows if (r.payload.get("contact") or {}).get("id") == contact_id]
    return list(rows)


def make_contact(workspace, email="jane@example.com"):
    return Contact.objects.create(workspace=workspace, email=email)


@pytest.mark.parametrize("source", ["one-click", "link", "mailto"])
def test_a_campaign_unsubscribe_is_one_event_with_its_campaign(workspace, receiver, one_delivery, source):  # noqa: F811
    token = tracking.unsubscribe_token(one_delivery)
    for _ in range(2):
        tracking.unsubscribe(token=token, source=source)

    (event,) = events()
    assert event.endpoint_id == receiver.pk
    assert event.payload == {
        "occurred_at": event.payload["occurred_at"],
        "channel": "email",
        "campaign": {"id": one_delivery.campaign_id},
        "delivery": {"id": one_delivery.pk},
        "contact": {"id": one_delivery.contact_id, "email": one_delivery.email},
        "reason": "unsubscribed",
        "source": source,
    }


def test_the_one_click_url_itself(workspace, receiver, one_delivery, settings):  # noqa: F811
    url = tracking.unsubscribe_url(one_delivery).split("://", 1)[1].split("/", 1)[1]
    response = Client(enforce_csrf_checks=True).post(f"/{url}", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert [e.payload["source"] for e in events()] == ["one-click"]


def test_the_api_unsubscribe(workspace, receiver, api_client_for):
    contact = make_contact(workspace)
    client = api_client_for(role="marketer")
    for _ in range(2):
        assert client.post(f"/api/v1/crm/contacts/{contact.pk}/unsubscribe/", {}).status_code == 200
    (event,) = events()
    assert event.payload["contact"] == {"id": contact.pk, "email": contact.email}
    assert (event.payload["source"], event.payload["campaign"], event.payload["reason"]) == (
        "api",
        None,
        "unsubscribed",
    )


def test_the_dashboard_unsubscribe_and_a_second_one_after_resubscribing(workspace, receiver, client_for):
    contact = make_contact(workspace)
    client = client_for(role="marketer")
    url = f"/crm/contacts/{contact.pk}/subscription/"
    assert client.post(url, {"channel": "email", "action": "unsubscribe"}).status_code == 302
    assert client.post(url, {"channel": "email", "action": "unsubscribe"}).status_code == 302
    assert len(events()) == 1 and events()[0].payload["source"] == "dashboard"

    client.post(url, {"channel": "email", "action": "resubscribe"})
    client.post(url, {"channel": "email", "action": "unsubscribe"})
    first, second = events()
    assert first.event_id != second.event_id  # a new opt-out is a new fact


def test_an_import_with_an_opt_out_column(workspace, receiver):
    already = make_contact(workspace, "old@example.com")
    crm_services.contact_unsubscribe(contact=already, source="api")
    assert len(events()) == 1
    csv = (
        b"Email,First Name,Email Opt Out\n"
        b"a@example.com,A,true\n"
        b"b@example.com,B,false\n"
        b"c@example.com,C,\n"
        b"d@example.com,D,Yes\n"
        b"old@example.com,Old,1\n"
        b"e@example.com,E,maybe\n"
        b"a@example.com,A again,no\n"
    )
    run = import_create(workspace=workspace, fh=io.BytesIO(csv), name="people.csv", enqueue=False)
    assert run.mapping["Email Opt Out"] == "unsubscribed"
    import_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.failed == 1  # "maybe" is a row error, not a guess
    opted = {e.payload["contact"]["email"]: e.payload for e in events()[1:]}
    assert set(opted) == {"a@example.com", "d@example.com"}  # old@ was unsubscribed already
    assert {p["source"] for p in opted.values()} == {f"import:{run.pk}"}
    assert set(
        Suppression.objects.filter(reason="unsubscribed").values_list("contact__email", flat=True)
    ) == {"a@example.com", "d@example.com", "old@example.com"}

    import_execute(run_id=run.pk)  # a re-run (resumed worker) adds nothing
    rerun = import_create(workspace=workspace, fh=io.BytesIO(csv), name="again.csv", enqueue=False)
    import_execute(run_id=rerun.pk)  # nor does importing the same file again
    assert len(events()) == 3


def test_a_spam_complaint_opts_out_once_an_earlier_unsubscribe_is_not_doubled(
    workspace, receiver, smtp_sink, fast_gateway
):
    delivery, _ = send_to_one(workspace, smtp_sink)
    hook = inbound.hook_create(workspace=workspace, provider="mailgun", secret=MAILGUN_KEY)
    url = reverse("publishing:inbound-webhook", args=[hook.provider, hook.key])
    body = mailgun_body(delivery.message_id, event="complained", severity="")
    assert Client().post(url, data=body, content_type="application/json").status_code == 200

    (event,) = events()
    assert (event.payload["reason"], event.payload["source"]) == ("complained", "mailgun")
    assert event.payload["campaign"] == {"id": delivery.campaign_id}

    contact = make_contact(workspace, "x@example.com")
    crm_services.contact_unsubscribe(contact=contact, source="api")
    crm_services.contact_suppress(contact=contact, reason="complained", source="mailgun")
    assert len(events(contact.pk)) == 1 and events(contact.pk)[0].payload["reason"] == "unsubscribed"


@pytest.mark.parametrize(("reason", "kept"), [("bounced", "bounced"), ("manual", "unsubscribed")])
@pytest.mark.parametrize("bulk", [False, True])
def test_a_bounce_or_a_manual_block_is_not_an_opt_out_but_a_later_unsubscribe_is(
    workspace, receiver, reason, kept, bulk
):
    """The block itself sends nothing. The person's unsubscribe on the blocked channel was dropped ("blocked
    already"): lifting the operator's block later would have mailed a person who had opted out. Now it is
    logged and sent once; it replaces an operator's block, a hard bounce stays (never resubscribed)."""
    from crm.models import ConsentEvent

    contact = make_contact(workspace)
    crm_services.contact_suppress(contact=contact, reason=reason, source="test")
    assert events() == []
    for _ in range(2):
        if bulk:
            crm_services.contacts_unsubscribe(
                workspace_id=workspace.pk, contact_ids=[contact.pk], source="import"
            )
        else:
            crm_services.contact_unsubscribe(contact=contact, source="api")
    assert [e.payload["reason"] for e in events()] == ["unsubscribed"]
    assert Suppression.objects.get(contact=contact).reason == kept
    log = ConsentEvent.objects.filter(contact=contact).order_by("pk").values_list("kind", flat=True)
    assert list(log) == [f"email:{reason}", "email:unsubscribed"]


def test_a_rolled_back_unsubscribe_emits_nothing(workspace, receiver, django_capture_on_commit_callbacks):
    contact = make_contact(workspace)

    def unsubscribe_then_fail():
        with transaction.atomic():
            crm_services.contact_unsubscribe(contact=contact, source="api")
            raise RuntimeError("rolled back")

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
        unsubscribe_then_fail()
    assert callbacks == [] and events() == [] and not Suppression.objects.exists()


def test_another_workspace_gets_nothing(workspace, other_workspace, receiver):
    webhooks.endpoint_create(
        workspace=other_workspace, by=None, url="https://other.example/hook", event_types=[UNSUBSCRIBED]
    )
    crm_services.contact_unsubscribe(contact=make_contact(workspace), source="api")
    (event,) = events()
    assert event.endpoint_id == receiver.pk and event.workspace_id == workspace.pk


def test_a_bulk_opt_out_costs_a_few_queries_not_one_per_contact(workspace, receiver):
    """Imports opt out a batch at a time: the consent service's cost grows only with the insert batches
    (SQLite splits a bulk insert at its 999-parameter limit), not with the contacts."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for n, prefix in ((2, "small"), (200, "large")):
        ids = [make_contact(workspace, f"{prefix}{i}@example.com").pk for i in range(n)]
        with CaptureQueriesContext(connection) as queries:
            assert (
                crm_services.contacts_unsubscribe(workspace_id=workspace.pk, contact_ids=ids, source="t") == n
            )
        counts.append(len(queries))
    assert counts[0] <= 12 and counts[1] <= counts[0] + 3 * 2  # three bulk inserts, one more batch each
    assert len(events()) == 202
