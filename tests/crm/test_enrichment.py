"""Enrichment and verification runs through the real gateway (demo adapters on a real Redis)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from aicmo.models import Job, JobError, JobStatus
from crm import services, tasks
from crm.models import Contact, EnrichmentRecord, Lifecycle
from gateway.errors import ProvidersUnavailable
from gateway.models import ProviderAccount
from tests.crm.factories import ContactFactory


@pytest.fixture
def demo_accounts(workspace, redis_client):
    ProviderAccount.objects.create(
        workspace=workspace, capability="enrich_person", adapter="demo_enrichment", name="Demo enrichment"
    )
    ProviderAccount.objects.create(
        workspace=workspace, capability="verify_email", adapter="demo_verification", name="Demo verification"
    )
    return workspace


def drain(job_id: int) -> Job:
    """Run every lane's chunks in-process, in the order Celery would (each step returns the next offset)."""
    job = Job.objects.get(pk=job_id)
    lanes = job.params["lanes"]
    for lane in range(lanes):
        offset = lane * job.params["chunk"]
        while offset is not None and offset < len(job.params["contact_ids"]):
            offset = services.run_lane_step(job_id=job_id, offset=offset)
    return Job.objects.get(pk=job_id)


def test_enrichment_run_with_demo_provider(demo_accounts, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(services.runs, "ENRICH_CHUNK", 7)
    typed = services.contact_create(
        workspace=demo_accounts, data={"email": "jane.doe@acme.io", "title": "Boss"}
    )
    contacts = [typed, *ContactFactory.create_batch(29, workspace=demo_accounts, first_name="", last_name="")]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = services.enrichment_start(workspace=demo_accounts, contact_ids=[c.pk for c in contacts])
    assert len(callbacks) == 4  # bounded: 4 lanes, not one task per chunk
    job = drain(job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.done == 30 and job.failed == 0
    records = EnrichmentRecord.objects.filter(contact__in=contacts)
    assert records.count() == 30 and all(r.demo for r in records)
    typed.refresh_from_db()
    assert typed.title == "Boss" and typed.lifecycle == Lifecycle.ENRICHED
    assert typed.enrichment_conflicts.get(field="title").resolution == "kept_typed"
    matched = records.filter(matched=True).values_list("contact_id", flat=True)
    assert set(Contact.objects.filter(lifecycle=Lifecycle.ENRICHED).values_list("pk", flat=True)) == set(
        matched
    )
    unmatched = Contact.objects.filter(pk__in=[c.pk for c in contacts]).exclude(pk__in=matched)
    assert all(c.lifecycle == Lifecycle.NEW for c in unmatched)
    # a second run inside the TTL re-fetches nothing
    job2 = services.enrichment_start(workspace=demo_accounts, contact_ids=[c.pk for c in contacts])
    job2 = drain(job2.pk)
    assert job2.result["skipped_fresh"] == 30 and EnrichmentRecord.objects.count() == 30


def test_rerun_of_a_finished_chunk_is_harmless(demo_accounts):
    contacts = ContactFactory.create_batch(3, workspace=demo_accounts)
    job = services.enrichment_start(workspace=demo_accounts, contact_ids=[c.pk for c in contacts])
    services.run_lane_step(job_id=job.pk, offset=0)
    services.run_lane_step(job_id=job.pk, offset=0)  # redelivered task
    job.refresh_from_db()
    assert job.done == 3 and job.status == JobStatus.SUCCEEDED


def test_providers_unavailable_retries_later_and_marks_nothing(workspace, redis_client, monkeypatch):
    contacts = ContactFactory.create_batch(3, workspace=workspace)
    job = services.enrichment_start(workspace=workspace, contact_ids=[c.pk for c in contacts])
    retry_at = timezone.now() + dt.timedelta(seconds=120)

    def unavailable(**kwargs):
        raise ProvidersUnavailable("enrich_person", retry_at)

    monkeypatch.setattr(services.runs._gateway(), "enrich_people", unavailable)
    seen = {}

    class Retried(Exception):
        pass

    def fake_retry(exc=None, countdown=None, **kw):
        seen["countdown"] = countdown
        return Retried()

    monkeypatch.setattr(tasks.contact_run_lane_task, "retry", fake_retry)
    with pytest.raises(Retried):
        tasks.contact_run_lane_task.run(job.pk, 0)
    assert 100 <= seen["countdown"] <= 120
    assert not EnrichmentRecord.objects.exists()
    assert not Contact.objects.filter(lifecycle=Lifecycle.ENRICHED).exists()
    job.refresh_from_db()
    assert job.done == 0 and job.status == JobStatus.RUNNING


def test_no_account_configured_is_unavailable(workspace, redis_client):
    c = ContactFactory(workspace=workspace)
    job = services.enrichment_start(workspace=workspace, contact_ids=[c.pk])
    with pytest.raises(ProvidersUnavailable):
        services.run_lane_step(job_id=job.pk, offset=0)
    c.refresh_from_db()
    assert c.lifecycle == Lifecycle.NEW


def test_verification_run_normalises_verdicts(demo_accounts):
    contacts = [ContactFactory(workspace=demo_accounts, email=f"user{i}@example.com") for i in range(12)]
    contacts.append(ContactFactory(workspace=demo_accounts, email="info@example.com"))
    job = services.verification_start(workspace=demo_accounts, contact_ids=[c.pk for c in contacts])
    job = drain(job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.done == 13
    verdicts = dict(
        Contact.objects.filter(pk__in=[c.pk for c in contacts]).values_list("email", "verification")
    )
    assert verdicts["info@example.com"] == "risky"
    for contact in Contact.objects.filter(pk__in=[c.pk for c in contacts]):
        assert (contact.lifecycle == Lifecycle.VERIFIED) == (contact.verification == "valid")
    assert not JobError.objects.filter(job=job).exists()


def test_per_contact_provider_errors_are_job_errors(demo_accounts, monkeypatch):
    from gateway.capabilities import EnrichmentResult
    from gateway.errors import ErrorKind, ProviderError

    good = ContactFactory(workspace=demo_accounts, email="good@ex.com")
    bad = ContactFactory(workspace=demo_accounts, email="bad@ex.com")

    def enrich_people(*, workspace, queries):
        if any(q.email == "bad@ex.com" for q in queries):
            raise ProviderError(ErrorKind.BAD_INPUT, "vendor refused bad@ex.com", provider="apollo")
        return [EnrichmentResult(provider="apollo", matched=True, fields={"title": "CTO"}) for _ in queries]

    monkeypatch.setattr(services.runs._gateway(), "enrich_people", enrich_people)
    job = drain(services.enrichment_start(workspace=demo_accounts, contact_ids=[good.pk, bad.pk]).pk)
    assert (job.done, job.failed) == (1, 1)
    error = JobError.objects.get(job=job)
    assert error.item == "bad@ex.com" and "refused" in error.message
    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.lifecycle == Lifecycle.NEW and good.title == "CTO"


def test_lane_gives_up_visibly_after_max_retries(workspace, redis_client, monkeypatch):
    c = ContactFactory(workspace=workspace)
    job = services.enrichment_start(workspace=workspace, contact_ids=[c.pk])
    tasks.contact_run_lane_task.push_request(retries=tasks.contact_run_lane_task.max_retries)
    try:
        assert tasks.contact_run_lane_task.run(job.pk, 0) is None  # no provider account: unavailable
    finally:
        tasks.contact_run_lane_task.pop_request()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "Providers unavailable" in job.message
    c.refresh_from_db()
    assert c.lifecycle == Lifecycle.NEW
