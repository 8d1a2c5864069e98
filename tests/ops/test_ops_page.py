"""The staff operations page: queues, workers, beat, breakers and failed jobs of every workspace, with a
retry that goes through the same service as everything else; invisible (404) to everyone but staff."""

from __future__ import annotations

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from aicmo.celery import app
from aicmo.models import AuditEvent, Job, JobStatus, Role
from crm import services
from tests.crm.factories import ContactFactory
from tests.factories import JobFactory, MembershipFactory, UserFactory, WorkspaceFactory

QUEUES = {"default", "sending", "tracking", "enrichment", "imports", "rollups", "media", "webhooks"}

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="operator", is_staff=True))
    return client


def failed_job(workspace, kind="audit_export", **kwargs):
    return JobFactory(
        workspace=workspace,
        kind=kind,
        status=JobStatus.FAILED,
        finished_at=timezone.now(),
        message="boom",
        **kwargs,
    )


@pytest.mark.parametrize("who", ["anonymous", "admin member", "plain user"])
def test_page_and_retry_are_404_for_everyone_but_staff(client, who):
    ws = WorkspaceFactory()
    job = failed_job(ws)
    if who == "admin member":
        client.force_login(MembershipFactory(workspace=ws, role=Role.ADMIN).user)
    elif who != "anonymous":
        client.force_login(UserFactory())
    assert client.get("/ops/").status_code == 404
    assert client.post(f"/ops/jobs/{job.pk}/retry/").status_code == 404
    assert Job.objects.count() == 1


def test_staff_sees_queues_beat_breakers_and_failed_jobs_of_all_workspaces(
    staff_client, redis_broker, redis_client, django_assert_max_num_queries
):
    a, b = WorkspaceFactory(slug="ws-a"), WorkspaceFactory(slug="ws-b")
    for ws in (a, b):
        for _ in range(5):
            failed_job(ws)
    JobFactory(workspace=a, status=JobStatus.SUCCEEDED)
    for i in range(4):
        app.send_task("crm.tasks.import_run_task", args=[i])
    PeriodicTask.objects.filter(task="aicmo.tasks.retention_run_task").update(last_run_at=timezone.now())

    with django_assert_max_num_queries(12):
        resp = staff_client.get("/ops/")
    assert resp.status_code == 200
    page = resp.content.decode()
    queues = {q.name: q for q in resp.context["queues"]}
    assert set(queues) == QUEUES
    assert queues["imports"].depth == 4 and queues["sending"].depth == 0
    assert queues["imports"].oldest_age_seconds is not None
    assert {j.workspace.slug for j in resp.context["failed_jobs"]} == {"ws-a", "ws-b"}
    assert len(resp.context["failed_jobs"]) == 10 and page.count(">Retry</button>") == 10
    assert "aicmo: prune history (retention)" in page
    assert resp.context["workers"] == []  # nobody consumes this test broker


def test_page_survives_a_broker_outage(staff_client, settings):
    from tests.fixtures.services import _reset_celery_connections

    saved = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    _reset_celery_connections(app)
    try:
        resp = staff_client.get("/ops/")
    finally:
        app.conf.broker_url = saved
        _reset_celery_connections(app)
    assert resp.status_code == 200
    assert resp.context["queues_error"] == "queues unavailable (see the log)"


def test_retry_starts_the_same_run_again_and_is_audited(staff_client, redis_client):
    ws = WorkspaceFactory()
    contacts = ContactFactory.create_batch(3, workspace=ws)
    job = services.enrichment_start(workspace=ws, contact_ids=[c.pk for c in contacts])
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, finished_at=timezone.now())

    resp = staff_client.post(f"/ops/jobs/{job.pk}/retry/")

    assert resp.status_code == 302 and resp["Location"] == "/ops/"
    new = Job.objects.exclude(pk=job.pk).get()
    assert new.kind == "crm.enrichment" and new.params["contact_ids"] == [c.pk for c in contacts]
    assert new.workspace_id == ws.pk
    event = AuditEvent.objects.get(verb="job.retried")
    assert event.target_id == str(job.pk) and event.changes == {"new_job": new.pk}
    assert event.actor.username == "operator"


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.RUNNING])
def test_only_failed_jobs_of_retryable_kinds_are_retried(staff_client, status):
    ws = WorkspaceFactory()
    not_failed = JobFactory(workspace=ws, kind="audit_export", status=status)
    unknown_kind = failed_job(ws, kind="something.else")
    for job in (not_failed, unknown_kind):
        resp = staff_client.post(f"/ops/jobs/{job.pk}/retry/", follow=True)
        assert resp.status_code == 200 and "cannot be retried" in resp.content.decode()
    assert Job.objects.count() == 2 and not AuditEvent.objects.filter(verb="job.retried").exists()
    assert staff_client.post("/ops/jobs/999999/retry/").status_code == 404


def test_workers_panel_lists_a_live_worker_with_its_queues(live_celery_worker, client):
    client.force_login(UserFactory(username="operator2", is_staff=True))
    resp = client.get("/ops/")
    workers = resp.context["workers"]
    assert len(workers) == 1 and set(workers[0]["queues"]) == QUEUES
