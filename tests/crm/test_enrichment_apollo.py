"""Enrichment end to end against a local server speaking Apollo's API, through a real gateway ProviderAccount
(adapter "apollo"): the chain, the Redis breaker and rate limit, the CRM merge and provenance."""

from __future__ import annotations

import json

import pytest
from werkzeug import Response

from aicmo.models import Job, JobStatus
from crm import services, tasks
from crm.models import Contact, EnrichmentRecord, Lifecycle
from gateway.models import ProviderAccount
from tests.crm.factories import ContactFactory
from tests.gateway.factories import ProviderAccountFactory

KEY = "apollo-key-9876"


def person(email: str) -> dict:
    local = email.split("@")[0]
    return {
        "id": f"ap-{local}",
        "first_name": local.title(),
        "last_name": "Lovelace",
        "title": "CTO",
        "email": email,
        "email_status": "verified",
        "organization": {"name": "Analytical", "primary_domain": "analytical.io"},
        "phone_numbers": [{"raw_number": "+44 20 1234", "sanitized_number": "+44201234"}],
    }


@pytest.fixture
def apollo_account(workspace, httpserver, redis_client):
    return ProviderAccountFactory(
        workspace=workspace,
        capability="enrich_person",
        adapter="apollo",
        name="Apollo",
        base_url=httpserver.url_for("/"),
        credentials={"api_key": KEY},
    )


def drain(job_id: int) -> Job:
    """Every lane's chunks through the real Celery task body, in the order the lanes would run them."""
    job = Job.objects.get(pk=job_id)
    for lane in range(job.params["lanes"]):
        offset = lane * job.params["chunk"]
        while offset is not None and offset < len(job.params["contact_ids"]):
            offset = tasks.contact_run_lane_task.run(job_id, offset)
    return Job.objects.get(pk=job_id)


def test_contacts_enriched_from_apollo_with_provenance(apollo_account, httpserver, monkeypatch):
    monkeypatch.setattr(tasks.contact_run_lane_task, "delay", lambda *a: None)  # drain() runs the lanes
    seen: list[dict] = []

    def bulk_match(request):
        assert request.headers.get("X-Api-Key") == KEY
        details = request.get_json()["details"]
        seen.append({"n": len(details)})
        matches = [None if d["email"].startswith("ghost") else person(d["email"]) for d in details]
        return Response(
            json.dumps({"status": "success", "matches": matches}), content_type="application/json"
        )

    httpserver.expect_request("/api/v1/people/bulk_match", method="POST").respond_with_handler(bulk_match)
    typed = services.contact_create(
        workspace=apollo_account.workspace, data={"email": "ada@analytical.io", "title": "Countess"}
    )
    others = [
        ContactFactory(workspace=apollo_account.workspace, email=f"user{i}@analytical.io", first_name="")
        for i in range(11)
    ]
    ghost = ContactFactory(workspace=apollo_account.workspace, email="ghost@analytical.io", first_name="")
    ids = [typed.pk, *(c.pk for c in others), ghost.pk]

    job = drain(services.enrichment_start(workspace=apollo_account.workspace, contact_ids=ids).pk)

    assert job.status == JobStatus.SUCCEEDED and (job.done, job.failed) == (13, 0)
    assert (
        sum(call["n"] for call in seen) == 13 and max(call["n"] for call in seen) <= 10
    )  # bulk, ≤ 10 a call
    user = Contact.objects.select_related("company").get(pk=others[0].pk)
    assert (user.first_name, user.title, user.phone) == ("User0", "CTO", "+44201234")
    assert user.lifecycle == Lifecycle.ENRICHED and user.company.domain == "analytical.io"
    for name in ("first_name", "title", "phone"):
        assert (
            user.provenance[name]["provider"] == "apollo" and user.provenance[name]["source"] == "enrichment"
        )
    assert not user.provenance["title"].get("demo")
    record = EnrichmentRecord.objects.get(contact=user)
    assert record.provider == "apollo" and record.matched and record.credits_used == 1
    typed.refresh_from_db()
    assert typed.title == "Countess" and typed.first_name == "Ada"  # typed value kept, blank filled
    assert typed.provenance["first_name"]["provider"] == "apollo"
    ghost.refresh_from_db()
    assert ghost.lifecycle == Lifecycle.NEW and ghost.enriched_at is None  # no match: never "enriched"


def test_apollo_401_leaves_contacts_alone_and_the_job_shows_the_error(apollo_account, httpserver):
    httpserver.expect_request("/api/v1/people/bulk_match", method="POST").respond_with_json(
        {"error": "Invalid access credentials."}, status=401
    )
    contacts = ContactFactory.create_batch(3, workspace=apollo_account.workspace, first_name="")
    job = services.enrichment_start(workspace=apollo_account.workspace, contact_ids=[c.pk for c in contacts])

    assert tasks.contact_run_lane_task.run(job.pk, 0) is None  # stops: no retry can fix credentials

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "Apollo needs re-authentication" in job.message and "HTTP 401" in job.message
    assert job.done == 0
    assert not EnrichmentRecord.objects.exists()
    for contact in Contact.objects.filter(pk__in=[c.pk for c in contacts]):
        assert contact.lifecycle == Lifecycle.NEW and contact.first_name == "" and contact.provenance == {}
    apollo_account.refresh_from_db()
    assert apollo_account.state == "needs_reauth"
    # a run started while the account still needs re-authentication stops the same way, without a call
    calls = len(httpserver.log)
    job2 = services.enrichment_start(workspace=apollo_account.workspace, contact_ids=[contacts[0].pk])
    assert tasks.contact_run_lane_task.run(job2.pk, 0) is None
    job2.refresh_from_db()
    assert job2.status == JobStatus.FAILED and "re-authentication" in job2.message
    assert len(httpserver.log) == calls
    assert ProviderAccount.objects.get(pk=apollo_account.pk).state == "needs_reauth"


def test_run_page_shows_the_failed_run(apollo_account, httpserver, client_for):
    httpserver.expect_request("/api/v1/people/bulk_match", method="POST").respond_with_json({}, status=401)
    client = client_for("marketer", workspace_=apollo_account.workspace)
    contact = ContactFactory(workspace=apollo_account.workspace)
    job = services.enrichment_start(workspace=apollo_account.workspace, contact_ids=[contact.pk])
    tasks.contact_run_lane_task.run(job.pk, 0)
    page = client.get(f"/crm/runs/{job.pk}/").content.decode()
    assert 'data-status="failed"' in page and "re-authentication" in page
