"""Celery tasks: ids in, one service call, safe to re-run."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from aicmo.jobs import job_fail

from . import importing, services

MAX_PROVIDER_WAIT_SECONDS = 6 * 3600


@shared_task(bind=True, acks_late=True, max_retries=50)
def contact_run_lane_task(self, job_id: int, offset: int) -> int | None:
    """One lane of an enrichment/verification run; it re-enqueues itself for its next chunk.

    When every provider is unavailable the same chunk is retried at the gateway's `retry_at`; nothing is
    marked enriched meanwhile."""
    from gateway.errors import ProvidersUnavailable

    try:
        nxt = services.run_lane_step(job_id=job_id, offset=offset)
    except ProvidersUnavailable as exc:
        if self.request.retries >= self.max_retries:
            job_fail(job_id=job_id, message=f"Providers unavailable after {self.max_retries} retries: {exc}")
            return None
        countdown = 60
        if exc.retry_at is not None:
            countdown = int(
                max(1, min(MAX_PROVIDER_WAIT_SECONDS, (exc.retry_at - timezone.now()).total_seconds()))
            )
        raise self.retry(exc=exc, countdown=countdown) from exc
    if nxt is not None:
        contact_run_lane_task.delay(job_id, nxt)
    return nxt


@shared_task(acks_late=True)
def import_run_task(run_id: int) -> int:
    return importing.import_execute(run_id=run_id)
