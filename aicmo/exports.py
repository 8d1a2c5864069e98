"""Audit-log export: a Job that a Celery worker fills in chunks, writing a CSV to file storage."""

from __future__ import annotations

import csv
import io

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from .audit import audit_record
from .jobs import (
    job_advance,
    job_check_cancelled,
    job_enqueue,
    job_finish,
    job_mark_running,
    job_set_total,
    job_start,
)
from .models import AuditEvent, Job, Workspace

CHUNK = 500
COLUMNS = ["at", "actor", "verb", "target_type", "target_id", "target", "changes"]


def neutralize_cell(value: str) -> str:
    """Spreadsheet-formula injection guard: a cell whose first visible character starts a formula."""
    stripped = value.lstrip(" \t\r\n\x00\x0b\x0c")
    if stripped[:1] in {"=", "+", "-", "@"} or value[:1] in {"\t", "\r"}:
        return "'" + value
    return value


def audit_export_start(*, workspace: Workspace, by) -> Job:
    from .tasks import audit_export_task

    with transaction.atomic():
        job = job_start(
            workspace=workspace,
            kind="audit_export",
            by=by,
            label="Audit log export",
            params={"download_permission": "manage"},
        )
        audit_record(workspace=workspace, actor=by, verb="audit.export_started", target=job)
        job_enqueue(audit_export_task, job.pk, job_id=job.pk)
    return job


def audit_export_run(*, job_id: int) -> None:
    """Idempotent: a redelivered task rewrites the file from scratch for a job that has not finished."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or not job_mark_running(job_id=job_id):
        return
    events = AuditEvent.objects.for_workspace(job.workspace_id).order_by("id")
    job_set_total(job_id=job_id, total=events.count())
    Job.objects.filter(pk=job_id).update(done=0, failed=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    last_id = 0
    while True:
        job_check_cancelled(job_id)
        chunk = list(events.filter(id__gt=last_id)[:CHUNK])
        if not chunk:
            break
        for e in chunk:
            writer.writerow(
                [
                    neutralize_cell(str(v))
                    for v in (
                        e.at.isoformat(),
                        e.actor_label,
                        e.verb,
                        e.target_type,
                        e.target_id,
                        e.target_repr,
                        e.changes,
                    )
                ]
            )
        last_id = chunk[-1].id
        job_advance(job_id=job_id, done=len(chunk))
    name = default_storage.save(
        f"exports/{job.workspace_id}/audit-{job_id}.csv", ContentFile(buffer.getvalue().encode())
    )
    job_finish(job_id=job_id, result={"file": name})


def audit_export_retry(*, job: Job, by) -> Job:
    """Retry entry (``AICMO_JOB_RETRY``): a fresh export of the same workspace."""
    return audit_export_start(workspace=job.workspace, by=by)
