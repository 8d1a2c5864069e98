"""Every service that starts a Job sends its Celery task through `aicmo.jobs.job_enqueue`: after commit,
exactly once on the normal path, and with the broker unreachable the request still answers as usual while
the job reads failed with the reason (no 500, no job left queued for ever).

The broker is real in both directions: the test Redis (messages counted in its queue lists) and a closed
port (redis://127.0.0.1:1/0), set on the Celery app for the test and restored after."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from aicmo.celery import app
from aicmo.jobs import ENQUEUE_FAILED
from aicmo.models import Job, JobStatus, Role
from tests.crm.factories import ContactFactory
from tests.fixtures.services import _reset_celery_connections
from tests.media.conftest import make_image

pytestmark = pytest.mark.django_db

UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def broker(monkeypatch):
    """broker(url): point the Celery app's producer at ``url`` for this test; restored afterwards."""
    for name in ("CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL"):
        monkeypatch.delenv(name, raising=False)  # Celery prefers these over app.conf
    saved = app.conf.broker_url

    def use(url: str) -> None:
        app.conf.broker_url = url
        _reset_celery_connections(app)

    yield use
    app.conf.broker_url = saved
    _reset_celery_connections(app)


def _job_of(resp, path=()) -> int:
    data = resp.json()
    for key in path:
        data = data[key]
    return data["id"]


def _audit_export(client):
    resp = client.post("/api/v1/audit-events/export/")
    return resp, _job_of(resp)


def _order_import(client):
    file = io.BytesIO(
        b"Order ID,Customer Email,Order Date,Total,Currency\nD1,ann@example.com,2026-06-01,5,EUR\n"
    )
    file.name = "orders.csv"
    resp = client.post("/api/v1/analytics/orders/import/", {"file": file}, format="multipart")
    return resp, _job_of(resp)


def _lifetime_fit(client):
    body = {"observation_date": "2025-06-30", "months": 6, "monthly_discount": 0.02, "currency": "usd"}
    resp = client.post("/api/v1/analytics/lifetime-fits/", body, format="json")
    return resp, _job_of(resp)


def _scores_recompute(client):
    resp = client.patch("/api/v1/analytics/scores/settings/", {"half_life_days": 45}, format="json")
    return resp, _job_of(resp, ("job",))


def _contact_run(kind: str, count: int):
    def start(client):
        ids = [ContactFactory(workspace=client.workspace).pk for _ in range(count)]
        resp = client.post(f"/api/v1/crm/{kind}-runs/", {"contact_ids": ids}, format="json")
        return resp, _job_of(resp)

    return start


def _contact_import(client):
    upload = SimpleUploadedFile("m.csv", b"Mail,Vorname\nm@ex.com,Max\n")
    mapping = json.dumps({"Mail": "email", "Vorname": "first_name"})
    resp = client.post("/api/v1/crm/imports/", {"file": upload, "mapping": mapping}, format="multipart")
    return resp, _job_of(resp, ("job",)), resp.json()["id"]  # its task takes the run's id


def _media_upload(client):
    upload = SimpleUploadedFile("photo.jpg", make_image(), content_type="image/jpeg")
    resp = client.post("/api/v1/media/assets/", {"file": upload}, format="multipart")
    return resp, Job.objects.get(workspace=client.workspace, kind="media.renditions").pk


def _media_renditions(client):
    from media import services

    library = services.library_create(workspace=client.workspace, name="L")
    upload = SimpleUploadedFile("photo.jpg", make_image(), content_type="image/jpeg")
    asset = services.asset_upload(library=library, file=upload, request_renditions=False).asset
    resp = client.post(f"/api/v1/media/assets/{asset.pk}/renditions/", {"force": True}, format="json")
    return resp, _job_of(resp)


def _media_suggestions(client):
    resp = client.post("/api/v1/media/suggestions/refresh/")
    return resp, _job_of(resp)


@dataclass(frozen=True)
class Case:
    start: Callable
    role: str
    status: int  # what the starting request answers, broker or not
    messages: dict[str, int]  # queue -> messages one start sends


CASES = {
    "audit export": Case(_audit_export, Role.ADMIN, 202, {"default": 1}),
    "order import": Case(_order_import, Role.MARKETER, 202, {"rollups": 1}),
    "lifetime fit": Case(_lifetime_fit, Role.MARKETER, 202, {"rollups": 1}),
    "scores recompute": Case(_scores_recompute, Role.ADMIN, 200, {"rollups": 1}),
    "enrichment run, one lane": Case(_contact_run("enrichment", 1), Role.MARKETER, 202, {"enrichment": 1}),
    # 120 contacts in chunks of 50: three lanes, three sends for one job
    "enrichment run, three lanes": Case(
        _contact_run("enrichment", 120), Role.MARKETER, 202, {"enrichment": 3}
    ),
    "verification run": Case(_contact_run("verification", 2), Role.MARKETER, 202, {"enrichment": 1}),
    "contact import": Case(_contact_import, Role.MARKETER, 202, {"imports": 1}),
    # the upload also sends the asset's suggestions task (no job of its own)
    "media upload renditions": Case(_media_upload, Role.MARKETER, 201, {"media": 2}),
    # (its set-up upload, inside the same capture, sends the asset's suggestions task too)
    "media renditions rebuild": Case(_media_renditions, Role.MARKETER, 202, {"media": 2}),
    "media suggestions refresh": Case(_media_suggestions, Role.MARKETER, 202, {"media": 1}),
}


@pytest.fixture
def started(api_client_for, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path / "media"

    def run(case: Case):
        client = api_client_for(role=case.role)
        with django_capture_on_commit_callbacks(execute=True):
            resp, job_id, *task_arg = case.start(client)
        return client, resp, job_id, (task_arg or [job_id])[0]

    return run


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_unreachable_broker_answers_as_usual_and_fails_the_job(case, broker, started):
    broker(UNREACHABLE)
    client, resp, job_id, _ = started(case)
    assert resp.status_code == case.status, resp.content
    job = client.get(f"/api/v1/jobs/{job_id}/").json()
    assert job["status"] == JobStatus.FAILED
    assert job["message"] == ENQUEUE_FAILED  # the broker's address stays in the log
    assert Job.objects.get(pk=job_id).finished_at is not None


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_reachable_broker_gets_each_send_exactly_once(case, broker, started, redis_server):
    from redis import Redis

    url = redis_server.url_for_db(1)
    queues = Redis.from_url(url)
    queues.flushdb()
    broker(url)
    client, resp, job_id, task_arg = started(case)
    assert resp.status_code == case.status, resp.content
    waiting = {q: queues.llen(q) for q in ("default", "rollups", "enrichment", "imports", "media")}
    assert waiting == {q: case.messages.get(q, 0) for q in waiting}
    sent = [json.loads(raw) for q in case.messages for raw in queues.lrange(q, 0, -1)]
    assert any(task_arg in json.loads(_body(m))[0] for m in sent)  # the job's own task is among them
    assert Job.objects.get(pk=job_id).status == JobStatus.QUEUED
    queues.flushdb()


def _body(message: dict) -> str:
    import base64

    return base64.b64decode(message["body"]).decode()


# Tasks without a job of their own: what the person who started them sees when the broker is down.


def test_unreachable_broker_leaves_the_invitation_standing_with_the_reason(
    broker, api_client_for, django_capture_on_commit_callbacks
):
    from aicmo.invitations import SEND_NOT_QUEUED

    broker(UNREACHABLE)
    client = api_client_for(Role.ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(
            "/api/v1/invitations/", {"email": "new@a.example", "role": "viewer"}, format="json"
        )
    assert resp.status_code == 201, resp.content  # before: a 500 after the invitation was committed
    listed = client.get("/api/v1/invitations/").json()["results"]
    assert [(i["email"], i["send_error"]) for i in listed] == [("new@a.example", SEND_NOT_QUEUED)]


def test_unreachable_broker_answers_a_password_reset_as_for_any_address(
    broker, client, member_factory, workspace, django_capture_on_commit_callbacks
):
    member_factory(workspace, Role.VIEWER, email="known@a.example")
    broker(UNREACHABLE)
    answers = []
    for email in ("known@a.example", "unknown@a.example"):
        with django_capture_on_commit_callbacks(execute=True):
            resp = client.post("/password/reset/", {"email": email}, follow=True)
        answers.append((resp.status_code, resp.redirect_chain))
    assert answers[0] == answers[1] == (200, [("/password/reset/sent/", 302)])  # before: a 500 for "known"


def test_unreachable_broker_answers_a_self_check_of_every_account_503(broker, api_client_for):
    from aicmo.jobs import QUEUE_UNAVAILABLE_CODE

    broker(UNREACHABLE)
    resp = api_client_for(Role.ADMIN).post("/api/v1/gateway/accounts/selfcheck/")
    assert resp.status_code == 503, resp.content  # before: a 500
    assert resp.json()["error"]["code"] == QUEUE_UNAVAILABLE_CODE
    assert int(resp["Retry-After"]) > 0


def test_a_self_check_of_every_account_is_sent_once(broker, api_client_for, redis_server):
    from redis import Redis

    url = redis_server.url_for_db(1)
    queues = Redis.from_url(url)
    queues.flushdb()
    broker(url)
    client = api_client_for(Role.ADMIN)
    resp = client.post("/api/v1/gateway/accounts/selfcheck/")
    assert resp.status_code == 202 and resp.json() == {"queued": True}
    [message] = [json.loads(raw) for raw in queues.lrange("default", 0, -1)]
    assert message["headers"]["task"] == "gateway.tasks.selfcheck_workspace_task"
    assert json.loads(_body(message))[0] == [client.workspace.pk]
    queues.flushdb()


def test_unreachable_broker_fails_the_contact_import_itself_too(broker, started):
    """The import run has a status of its own, which stayed `pending` for ever beside the failed job."""
    broker(UNREACHABLE)
    client, resp, job_id, run_id = started(CASES["contact import"])
    assert resp.status_code == 202
    run = client.get(f"/api/v1/crm/imports/{run_id}/").json()
    assert (run["status"], run["job"]["status"]) == ("failed", JobStatus.FAILED), run
    assert run["finished_at"] is not None


def test_unreachable_broker_leaves_a_one_click_unsubscribe_answered_and_its_webhook_due(
    broker, workspace, django_capture_on_commit_callbacks
):
    """The opt-out's `contact.unsubscribed` fan-out sent its dispatch task on commit with a bare `.delay`:
    the person who clicked got a 500 although the opt-out was committed. Now the delivery waits, due, for
    beat's 15-second dispatch."""
    from crm.models import Contact, Suppression
    from publishing.models import WebhookDelivery, WebhookEventType
    from publishing.services import webhooks

    webhooks.endpoint_create(
        workspace=workspace,
        by=None,
        url="https://hooks.example/aicmo",
        event_types=[WebhookEventType.CONTACT_UNSUBSCRIBED],
    )
    contact = Contact.objects.create(workspace=workspace, email="jane@example.com")
    broker(UNREACHABLE)
    from crm import services as crm_services

    with django_capture_on_commit_callbacks(execute=True):
        crm_services.contact_unsubscribe(contact=contact, source="one-click")
    assert Suppression.objects.filter(contact=contact).exists()
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.status in ("pending", "retrying") and delivery.attempts == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.deliveries_dispatch_due() == 1  # beat's tick: the send fails, logged, the lease holds


def test_unreachable_broker_still_saves_a_workspace_time_zone(
    broker, client_for, workspace, django_capture_on_commit_callbacks
):
    """The zone-change hook queued the rollup rebuild with a bare `.delay` after commit: a 500 on the
    settings page although the zone was saved."""
    admin = client_for(Role.ADMIN)
    broker(UNREACHABLE)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin.post("/settings/", {"action": "time-zone", "time_zone": "Asia/Tokyo"})
    assert response.status_code == 302 and callbacks  # the zone-change hook ran
    workspace.refresh_from_db()
    assert workspace.time_zone == "Asia/Tokyo"
