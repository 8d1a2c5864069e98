"""The real fan-out: Celery lanes on a real worker and Redis, import task too."""

from __future__ import annotations

import io
import time

from aicmo.models import Job, JobStatus
from crm import importing, services
from crm.models import Contact, EnrichmentRecord, ImportRun
from gateway.models import ProviderAccount
from tests.crm.factories import ContactFactory
from tests.factories import WorkspaceFactory


def wait_finished(job_id: int, timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {Job.objects.get(pk=job_id).__dict__}")


def test_enrichment_and_import_run_on_a_real_worker(live_celery_worker, redis_client, monkeypatch, settings):
    monkeypatch.setattr(services.runs, "ENRICH_CHUNK", 5)
    ws = WorkspaceFactory(slug="celery-crm")
    ProviderAccount.objects.create(
        workspace=ws, capability="enrich_person", adapter="demo_enrichment", name="Demo"
    )
    contacts = ContactFactory.create_batch(23, workspace=ws)
    job = services.enrichment_start(workspace=ws, contact_ids=[c.pk for c in contacts])
    job = wait_finished(job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.done == 23
    assert EnrichmentRecord.objects.filter(contact__workspace=ws).count() == 23

    run = importing.import_create(
        workspace=ws, fh=io.BytesIO(b"email,first name\nw1@ex.com,W\nbad,B\n"), name="w.csv"
    )
    job = wait_finished(run.job_id)
    run = ImportRun.objects.get(pk=run.pk)
    assert job.status == JobStatus.SUCCEEDED and (run.created, run.failed) == (1, 1)
    assert Contact.objects.filter(workspace=ws, email="w1@ex.com").exists()
