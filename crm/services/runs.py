"""CRM writes: enrichment and verification runs: selection, limits, lanes of chunks through the gateway."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction

from aicmo.audit import audit_record
from aicmo.jobs import ItemError, job_advance, job_enqueue, job_finish, job_mark_running, job_start
from aicmo.models import Job, JobStatus, Workspace

from ..models import (
    Contact,
)
from ..selectors import contacts_for_selection
from .enrichment import contacts_needing_enrichment, enrichment_apply
from .lifecycle import contact_set_verification

ENRICH_CHUNK = 50
ENRICH_LANES = 4


@dataclass(frozen=True)
class ChunkOutcome:
    done: int
    failed: int
    skipped: int
    errors: list = field(default_factory=list)  # ItemError of the failed contacts


MAX_RUN_CONTACTS = 100_000  # a run keeps its contact ids in Job.params (docs/CRM.md, known limits)


class RunTooLarge(ValueError):
    """The selection holds more contacts than one run takes."""


def enrichment_start(
    *,
    workspace: Workspace,
    contact_ids: Sequence[int] | None = None,
    list_id: int | None = None,
    segment_id: int | None = None,
    by=None,
    label: str = "",
) -> Job:
    """Start an enrichment run over ticked contacts, a list or a segment (resolved now, once): a Job whose
    contacts are processed by `ENRICH_LANES` Celery lanes in chunks. Raises RunTooLarge, SegmentRuleError."""
    ids = _run_contact_ids(workspace, contact_ids=contact_ids, list_id=list_id, segment_id=segment_id)
    return _run_start(
        workspace=workspace, kind="crm.enrichment", ids=ids, by=by, label=label or "Enrichment run"
    )


def verification_start(
    *,
    workspace: Workspace,
    contact_ids: Sequence[int] | None = None,
    list_id: int | None = None,
    segment_id: int | None = None,
    by=None,
) -> Job:
    """Start an email verification run; the same selection and limits as `enrichment_start`."""
    ids = _run_contact_ids(workspace, contact_ids=contact_ids, list_id=list_id, segment_id=segment_id)
    return _run_start(
        workspace=workspace, kind="crm.verification", ids=ids, by=by, label="Email verification"
    )


def _run_contact_ids(workspace, *, contact_ids, list_id, segment_id) -> list[int]:
    if contact_ids is None and list_id is None and segment_id is None:
        raise ValueError("A run needs contact ids, a list or a segment.")
    ids = list(
        contacts_for_selection(
            workspace=workspace, contact_ids=contact_ids, list_id=list_id, segment_id=segment_id
        )
        .filter(erased_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)[: MAX_RUN_CONTACTS + 1]
    )
    if len(ids) > MAX_RUN_CONTACTS:
        raise RunTooLarge(f"A run takes at most {MAX_RUN_CONTACTS:,} contacts; narrow the selection.")
    return ids


def _run_start(*, workspace, kind, ids, by, label) -> Job:
    from ..tasks import contact_run_lane_task

    with transaction.atomic():
        job = job_start(
            workspace=workspace,
            kind=kind,
            total=len(ids),
            by=by,
            label=label,
            params={"contact_ids": ids, "chunk": ENRICH_CHUNK, "lanes": ENRICH_LANES},
        )
        audit_record(
            workspace=workspace, actor=by, verb=f"{kind}.started", target=job, changes={"count": len(ids)}
        )
        if not ids:
            job_mark_running(job_id=job.pk)
            return job_finish(job_id=job.pk, status=JobStatus.SUCCEEDED, message="Nothing to do.")
        lanes = min(ENRICH_LANES, (len(ids) + ENRICH_CHUNK - 1) // ENRICH_CHUNK)
        for lane in range(lanes):
            job_enqueue(contact_run_lane_task, job.pk, lane * ENRICH_CHUNK, job_id=job.pk)
    return job


def run_lane_step(*, job_id: int, offset: int) -> int | None:
    """Process the chunk at `offset`; return the next offset for this lane or None when the lane is done.

    Raises gateway ProvidersUnavailable untouched so the task can retry this same chunk later."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.is_finished:
        return None
    job_mark_running(job_id=job_id)
    ids = job.params.get("contact_ids", [])
    chunk, lanes = job.params.get("chunk", ENRICH_CHUNK), job.params.get("lanes", ENRICH_LANES)
    batch = ids[offset : offset + chunk]
    progress = job.result.get("offsets_done", []) if job.result else []
    if batch and offset not in progress:
        if job.kind == "crm.enrichment":
            outcome = enrichment_process_chunk(job_id=job_id, contact_ids=batch)
        else:
            outcome = verification_process_chunk(job_id=job_id, contact_ids=batch)
        _mark_chunk_done(job_id, offset, outcome)
    nxt = offset + chunk * lanes
    if nxt < len(ids):
        return nxt
    _finish_if_complete(job_id)
    return None


@transaction.atomic
def _mark_chunk_done(job_id: int, offset: int, outcome: ChunkOutcome) -> None:
    """Count the chunk's progress and mark it done in one transaction: a worker killed before this commits
    leaves the chunk uncounted (its redelivery counts it), and a second delivery of a chunk already marked
    counts nothing."""
    job = Job.objects.select_for_update().get(pk=job_id)
    if offset in (job.result or {}).get("offsets_done", []):
        return
    job_advance(
        job_id=job_id, done=outcome.done + outcome.skipped, failed=outcome.failed, errors=outcome.errors
    )
    result = dict(job.result or {})
    result["offsets_done"] = sorted({*result.get("offsets_done", []), offset})
    result["skipped_fresh"] = result.get("skipped_fresh", 0) + outcome.skipped
    job.result = result
    job.save(update_fields=["result", "updated_at"])


def _finish_if_complete(job_id: int) -> None:
    job = Job.objects.get(pk=job_id)
    ids, chunk = job.params.get("contact_ids", []), job.params.get("chunk", ENRICH_CHUNK)
    expected = set(range(0, len(ids), chunk))
    if expected <= set(job.result.get("offsets_done", [])):
        job_finish(job_id=job_id, result=job.result)


def _gateway():
    from gateway import services as gateway_services

    return gateway_services


def enrichment_process_chunk(*, job_id: int, contact_ids: Sequence[int]) -> ChunkOutcome:
    from gateway.capabilities import PersonQuery
    from gateway.errors import ProviderError

    job = Job.objects.get(pk=job_id)
    todo = contacts_needing_enrichment(list(contact_ids))
    skipped = len(contact_ids) - len(todo)
    contacts = list(
        Contact.objects.filter(pk__in=todo, workspace_id=job.workspace_id).select_related("company")
    )
    queries = [
        PersonQuery(
            email=c.email,
            first_name=c.first_name,
            last_name=c.last_name,
            domain=c.company.domain if c.company else "",
            company=c.company.name if c.company else "",
        )
        for c in contacts
    ]
    done = failed = 0
    errors: list[ItemError] = []
    gw = _gateway()
    try:
        results = gw.enrich_people(workspace=job.workspace, queries=queries) if queries else []
        pairs = list(zip(contacts, results, strict=True))
    except ProviderError:
        pairs = []
        for contact, query in zip(contacts, queries, strict=True):
            try:
                pairs.append((contact, gw.enrich_people(workspace=job.workspace, queries=[query])[0]))
            except ProviderError as exc:
                failed += 1
                errors.append(
                    ItemError(
                        item=contact.email,
                        message=str(exc),
                        details={"contact_id": contact.pk, "kind": str(getattr(exc, "kind", ""))},
                    )
                )
    for contact, result in pairs:
        enrichment_apply(
            contact=contact,
            provider=result.provider,
            fields=dict(result.fields or {}),
            matched=result.matched,
            credits_used=result.credits_used,
            demo=result.demo,
            raw_id=result.raw_id,
        )
        done += 1
    return ChunkOutcome(done=done, failed=failed, skipped=skipped, errors=errors)


def verification_process_chunk(*, job_id: int, contact_ids: Sequence[int]) -> ChunkOutcome:
    from gateway.errors import ProviderError

    job = Job.objects.get(pk=job_id)
    done = failed = 0
    errors = []
    gw = _gateway()
    for contact in Contact.objects.filter(pk__in=contact_ids, workspace_id=job.workspace_id):
        try:
            result = gw.verify_email(workspace=job.workspace, email=contact.email)
        except ProviderError as exc:
            failed += 1
            errors.append(ItemError(item=contact.email, message=str(exc), details={"contact_id": contact.pk}))
            continue
        contact_set_verification(contact=contact, verdict=str(result.verdict), provider=result.provider)
        done += 1
    return ChunkOutcome(done=done, failed=failed, skipped=0, errors=errors)


def run_retry(*, job: Job, by=None) -> Job:
    """Retry entry for the operations page (``AICMO_JOB_RETRY``): a new run of the same kind over the failed
    run's contacts (those erased meanwhile are left out)."""
    start = verification_start if job.kind == "crm.verification" else enrichment_start
    return start(workspace=job.workspace, contact_ids=job.params.get("contact_ids", []), by=by)
