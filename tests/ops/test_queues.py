"""Task routing: every task lands in a declared queue, and a flooded send queue does not hold back
enrichment (a worker pool per queue, one Redis broker)."""

from __future__ import annotations

import pytest
from django.conf import settings

from aicmo.celery import app
from crm import services
from gateway.models import ProviderAccount
from tests.crm.factories import ContactFactory
from tests.crm.test_celery import wait_finished
from tests.factories import WorkspaceFactory


def queue_of(task_name: str) -> str:
    """The queue Celery's own router picks for a task name (QueueNotFound for an undeclared queue)."""
    return app.amqp.router.route({}, task_name)["queue"].name


@pytest.mark.parametrize(
    ("task_name", "queue"),
    [
        ("crm.tasks.contact_run_lane_task", "enrichment"),
        ("crm.tasks.enrichment_start_task", "enrichment"),
        ("crm.tasks.import_run_task", "imports"),
        ("media.tasks.build_renditions_task", "media"),
        ("media.tasks.refresh_all_suggestions_task", "media"),
        ("publishing.tasks.campaign_send_task", "sending"),
        ("publishing.tasks.delivery_send_batch_task", "sending"),
        ("publishing.tasks.tracking_flush_task", "tracking"),
        ("publishing.tasks.engagement_flush_task", "tracking"),
        ("analytics.tasks.rollup_task", "rollups"),
        ("publishing.tasks.webhook_deliver_task", "webhooks"),
        ("publishing.tasks.webhook_dispatch_due_task", "webhooks"),
        ("gateway.tasks.health_flush_task", "default"),
        ("aicmo.tasks.invitation_send_task", "default"),
        ("celery.ping", "default"),
    ],
)
def test_tasks_are_routed_by_name(task_name, queue):
    assert queue_of(task_name) == queue


def test_every_registered_task_goes_to_a_declared_queue():
    app.loader.import_default_modules()
    names = [name for name in app.tasks if not name.startswith("celery.")]
    assert "crm.tasks.contact_run_lane_task" in names  # the registry really is loaded
    for name in names:
        assert queue_of(name) in settings.AICMO_QUEUES, name


def test_a_worker_without_queue_option_consumes_every_queue():
    """`make run`'s single worker (Procfile.dev, no -Q) must see every queue the routes use."""
    assert {q.name for q in app.amqp.queues.values()} == set(settings.AICMO_QUEUES)


FLOOD = 500


def test_flooded_send_queue_does_not_delay_enrichment(celery_worker_on, redis_client, monkeypatch):
    monkeypatch.setattr(services.runs, "ENRICH_CHUNK", 5)
    ws = WorkspaceFactory(slug="flood")
    ProviderAccount.objects.create(
        workspace=ws, capability="enrich_person", adapter="demo_enrichment", name="Demo"
    )
    contacts = ContactFactory.create_batch(12, workspace=ws)
    with celery_worker_on(["enrichment"]):
        broker = app.backend.client  # the worker's Redis database (broker and results share it)
        with app.producer_or_acquire() as producer:
            for i in range(FLOOD):
                app.send_task("publishing.tasks.campaign_send_task", args=[i], producer=producer)
        assert broker.llen("sending") == FLOOD

        job = services.enrichment_start(workspace=ws, contact_ids=[c.pk for c in contacts])
        job = wait_finished(job.pk)

        assert job.status == "succeeded" and job.done == 12
        # Enrichment finished while every one of the sends queued before it is still waiting.
        assert broker.llen("sending") == FLOOD
        assert broker.llen("enrichment") == 0
