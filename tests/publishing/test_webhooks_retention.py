"""Webhook delivery retention: finished deliveries go after their age (succeeded 30 days, failed and
discarded 90), waiting ones never; every workspace; in short batches; from the beat task's retention run."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aicmo.retention import delete_in_batches
from aicmo.tasks import retention_run_task
from publishing.models import WebhookDelivery, WebhookDeliveryStatus
from publishing.retention import prune_webhook_deliveries, webhook_deliveries_prunable
from publishing.services import webhooks

pytestmark = pytest.mark.django_db
S = WebhookDeliveryStatus
DAY = timedelta(days=1)
PATH = "publishing.retention.prune_webhook_deliveries"


@pytest.fixture
def ages(settings):
    settings.AICMO_RETENTION_WEBHOOKS_SUCCEEDED_DAYS = 30
    settings.AICMO_RETENTION_WEBHOOKS_FAILED_DAYS = 90


def endpoint_of(workspace):
    endpoint, _ = webhooks.endpoint_create(
        workspace=workspace, by=None, url="https://hooks.example/in", event_types=["email.opened"]
    )
    return endpoint


_ids = itertools.count()


def delivery(endpoint, status, age):
    """A delivery of ``endpoint`` in ``status``, finished ``age`` ago (created then too; waiting ones have
    no ``finished_at``)."""
    at = timezone.now() - age
    finished = status not in (S.PENDING, S.RETRYING)
    row = WebhookDelivery.objects.create(
        workspace_id=endpoint.workspace_id,
        endpoint=endpoint,
        event_id=f"evt_{next(_ids)}",
        event_type="email.opened",
        occurred_at=at,
        status=status,
        finished_at=at if finished else None,
        next_attempt_at=None if finished else at,
    )
    WebhookDelivery.objects.filter(pk=row.pk).update(created_at=at)
    return row


@pytest.mark.parametrize(
    ("status", "days", "pruned"),
    [
        (S.SUCCEEDED, 31, True),
        (S.SUCCEEDED, 29, False),
        (S.FAILED, 91, True),
        (S.FAILED, 89, False),
        (S.FAILED, 31, False),  # kept longer than a success
        (S.DISCARDED, 91, True),
        (S.DISCARDED, 89, False),
        (S.PENDING, 400, False),  # still waiting: never, however old
        (S.RETRYING, 400, False),
    ],
)
def test_each_status_and_age(workspace, ages, status, days, pruned):
    row = delivery(endpoint_of(workspace), status, days * DAY)
    assert prune_webhook_deliveries() == (1 if pruned else 0)
    assert WebhookDelivery.objects.filter(pk=row.pk).exists() is not pruned


def test_the_beat_tasks_retention_run_prunes_every_workspace(workspace, other_workspace, ages):
    mine, theirs = endpoint_of(workspace), endpoint_of(other_workspace)
    old = [delivery(e, S.SUCCEEDED, 40 * DAY) for e in (mine, theirs)]
    kept = [delivery(e, S.FAILED, 40 * DAY) for e in (mine, theirs)]

    results = retention_run_task.apply().get()

    assert results[PATH] == 2
    assert not WebhookDelivery.objects.filter(pk__in=[r.pk for r in old]).exists()
    assert WebhookDelivery.objects.filter(pk__in=[r.pk for r in kept]).count() == 2


@pytest.mark.parametrize(
    "setting", ["AICMO_RETENTION_WEBHOOKS_SUCCEEDED_DAYS", "AICMO_RETENTION_WEBHOOKS_FAILED_DAYS"]
)
def test_zero_days_keeps_that_kind(workspace, ages, settings, setting):
    setattr(settings, setting, 0)
    endpoint = endpoint_of(workspace)
    succeeded, failed = delivery(endpoint, S.SUCCEEDED, 500 * DAY), delivery(endpoint, S.FAILED, 500 * DAY)
    prune_webhook_deliveries()
    left = set(WebhookDelivery.objects.values_list("pk", flat=True))
    expected = {succeeded.pk} if setting.endswith("SUCCEEDED_DAYS") else {failed.pk}
    assert left == expected


def test_deletes_run_in_bounded_batches(workspace, ages):
    endpoint = endpoint_of(workspace)
    for _ in range(7):
        delivery(endpoint, S.SUCCEEDED, 40 * DAY)
    recent = delivery(endpoint, S.SUCCEEDED, DAY)

    with CaptureQueriesContext(connection) as queries:
        assert delete_in_batches(webhook_deliveries_prunable(), batch=3) == 7

    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE") and "webhookdelivery" in q["sql"]]
    assert len(deletes) == 3  # 3 + 3 + 1 rows, each in its own short transaction
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [recent.pk]
