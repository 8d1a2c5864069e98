"""Retention: old finished jobs (with their errors), old audit events and old provider health history are
deleted; recent rows, unfinished jobs and rows other tables point at survive; the beat schedule exists."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from aicmo import retention
from aicmo.models import AuditEvent, Job, JobError, JobStatus
from aicmo.tasks import retention_run_task
from crm.models import ImportRun
from gateway.models import HealthCheck, HealthMinute, ProviderAccount
from tests.factories import AuditEventFactory, JobFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def aged(model, obj, field, age):
    model.objects.filter(pk=obj.pk).update(**{field: timezone.now() - age})


@pytest.fixture
def history(settings):
    settings.AICMO_RETENTION_JOBS_DAYS = 90
    settings.AICMO_RETENTION_AUDIT_DAYS = 365
    settings.AICMO_RETENTION_HEALTH_DAYS = 30
    ws = WorkspaceFactory()
    jobs = {}
    for name, status, age in [
        ("old_done", JobStatus.SUCCEEDED, 91 * DAY),
        ("old_failed", JobStatus.FAILED, 200 * DAY),
        ("recent_done", JobStatus.SUCCEEDED, 89 * DAY),
        ("old_running", JobStatus.RUNNING, None),
    ]:
        job = JobFactory(workspace=ws, status=status)
        if age is not None:
            aged(Job, job, "finished_at", age)
        else:
            aged(Job, job, "created_at", 400 * DAY)
        JobError.objects.create(workspace=ws, job=job, item="row 1", message="bad")
        jobs[name] = job
    run = ImportRun.objects.create(workspace=ws, job=jobs["old_done"], original_name="old.csv")
    audits = {"old": AuditEventFactory(workspace=ws), "recent": AuditEventFactory(workspace=ws)}
    aged(AuditEvent, audits["old"], "at", 366 * DAY)
    aged(AuditEvent, audits["recent"], "at", 364 * DAY)
    account = ProviderAccount.objects.create(
        workspace=ws, capability="enrich_person", adapter="demo_enrichment"
    )
    now = timezone.now().replace(second=0, microsecond=0)
    HealthMinute.objects.create(workspace=ws, account=account, minute=now - 31 * DAY, calls=1)
    HealthMinute.objects.create(workspace=ws, account=account, minute=now - 29 * DAY, calls=1)
    HealthCheck.objects.create(workspace=ws, account=account, at=now - 31 * DAY, ok=True)
    return {"jobs": jobs, "audits": audits, "run": run}


def test_retention_deletes_exactly_what_is_past_its_age(history):
    results = retention.retention_run()

    assert results == {
        "aicmo.retention.prune_jobs": 2,
        "aicmo.retention.prune_audit": 1,
        "gateway.ops.prune_health": 2,
        "publishing.retention.prune_events": 0,  # tests/ops/test_event_retention.py
        "publishing.retention.prune_webhook_deliveries": 0,  # tests/publishing/test_webhooks_retention.py
    }
    jobs = history["jobs"]
    assert set(Job.objects.values_list("pk", flat=True)) == {jobs["recent_done"].pk, jobs["old_running"].pk}
    assert JobError.objects.count() == 2  # errors went with their jobs
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [history["audits"]["recent"].pk]
    assert HealthMinute.objects.count() == 1 and HealthCheck.objects.count() == 0
    # The import run keeps its own record (its job link is cleared, not the run deleted).
    assert ImportRun.objects.get(pk=history["run"].pk).job_id is None
    # A second run finds nothing more: the table stops growing at the age limit.
    assert set(retention.retention_run().values()) == {0}


def test_zero_days_keeps_everything(history, settings):
    settings.AICMO_RETENTION_JOBS_DAYS = 0
    settings.AICMO_RETENTION_AUDIT_DAYS = 0
    results = retention.retention_run()
    assert results["aicmo.retention.prune_jobs"] == 0 and results["aicmo.retention.prune_audit"] == 0
    assert Job.objects.count() == 4 and AuditEvent.objects.count() == 2


def test_batches_delete_everything_past_the_batch_size(history):
    old = [AuditEventFactory(workspace=history["audits"]["old"].workspace) for _ in range(3)]
    for event in old:
        aged(AuditEvent, event, "at", 400 * DAY)
    assert (
        retention.delete_in_batches(AuditEvent.objects.filter(at__lt=timezone.now() - 365 * DAY), batch=1)
        == 4
    )


def test_a_failing_entry_is_reported_and_the_others_still_run(history, settings):
    settings.AICMO_RETENTION = ["tests.ops.test_retention.broken_prune", "aicmo.retention.prune_audit"]
    assert retention.retention_run() == {
        "tests.ops.test_retention.broken_prune": -1,
        "aicmo.retention.prune_audit": 1,
    }


def broken_prune() -> int:
    raise RuntimeError("table missing")


def test_command_and_task_call_the_same_run(history, capsys):
    call_command("prune_history")
    out = capsys.readouterr().out
    assert "aicmo.retention.prune_jobs: 2 deleted" in out and "aicmo.retention.prune_audit: 1 deleted" in out
    assert retention_run_task() == {
        "aicmo.retention.prune_jobs": 0,
        "aicmo.retention.prune_audit": 0,
        "gateway.ops.prune_health": 0,
        "publishing.retention.prune_events": 0,
        "publishing.retention.prune_webhook_deliveries": 0,
    }


def test_beat_runs_retention_every_six_hours():
    task = PeriodicTask.objects.get(task="aicmo.tasks.retention_run_task")
    assert task.enabled and (task.interval.every, task.interval.period) == (6, "hours")
