"""Retention: history tables are pruned on a schedule so the database does not grow without bound.

``settings.AICMO_RETENTION`` lists dotted paths of prune functions; each takes no argument, reads its own
age limit from settings, deletes in batches and returns how many rows it removed. Any app joins by
adding its function to that list (publishing: raw engagement events older than
``AICMO_RETENTION_EVENTS_DAYS`` *once rolled up*; the rollup watermark, not the age alone, decides).
:func:`retention_run` calls them all: from the beat task ``aicmo.tasks.retention_run_task`` (every 6 hours,
``default`` queue) and from ``manage.py prune_history``.

Core entries: finished jobs (and their item errors) older than ``AICMO_RETENTION_JOBS_DAYS`` (90); audit
events older than ``AICMO_RETENTION_AUDIT_DAYS`` (365; 0 keeps them forever). A failing entry is logged
and reported as ``-1``; the others still run.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from .models import FINISHED_JOB_STATUSES, AuditEvent, Job

log = logging.getLogger(__name__)

BATCH = 5000


def delete_in_batches(queryset: QuerySet, batch: int = BATCH) -> int:
    """Delete ``queryset``'s rows ``batch`` primary keys at a time (short transactions, no long locks);
    returns the number of rows of the queryset's model deleted (cascaded rows not counted)."""
    model = queryset.model
    total = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return total
        with transaction.atomic():
            _count, per_model = model.objects.filter(pk__in=ids).delete()
        total += per_model.get(model._meta.label, 0)


def _cutoff(days: int):
    return timezone.now() - timedelta(days=days)


def prune_jobs() -> int:
    """Finished jobs whose ``finished_at`` is older than ``AICMO_RETENTION_JOBS_DAYS`` (0: keep all)."""
    days = settings.AICMO_RETENTION_JOBS_DAYS
    if days <= 0:
        return 0
    return delete_in_batches(
        Job.objects.filter(status__in=FINISHED_JOB_STATUSES, finished_at__lt=_cutoff(days))
    )


def prune_audit() -> int:
    """Audit events older than ``AICMO_RETENTION_AUDIT_DAYS`` (0: keep all)."""
    days = settings.AICMO_RETENTION_AUDIT_DAYS
    if days <= 0:
        return 0
    return delete_in_batches(AuditEvent.objects.filter(at__lt=_cutoff(days)))


def retention_run() -> dict[str, int]:
    """Run every prune function in ``AICMO_RETENTION``; ``{dotted path: rows deleted, or -1 on error}``."""
    results: dict[str, int] = {}
    for path in settings.AICMO_RETENTION:
        try:
            results[path] = int(import_string(path)())
        except Exception:  # noqa: BLE001 - one broken entry must not stop the others
            log.exception("retention entry %s failed", path)
            results[path] = -1
    log.info("retention run: %s", results)
    return results
