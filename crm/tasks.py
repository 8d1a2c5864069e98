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
        if _needs_reauth(exc):
            names = [n for n in exc.errors if n != "gateway"] if isinstance(exc.errors, dict) else []
            who = f"provider account {', '.join(names)}" if names else "the provider account"
            job_fail(
                job_id=job_id,
                message=f"Stopped: {who} needs re-authentication ({exc}). Fix its credentials under Providers "
                "and start the run again; no contact was changed by the failed calls.",
            )
            return None
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


def _needs_reauth(exc) -> bool:
    """Unavailable because credentials were refused (HTTP 401/403 → the gateway's `reauth`), not because of
    an outage: waiting cannot fix that, so the run stops with the reason instead of retrying for hours.
    Either this call was refused, or (retry_at unknown) every account was already flagged by an earlier one."""
    from gateway.errors import ErrorKind

    errors = list(exc.errors.values() if isinstance(exc.errors, dict) else exc.errors)
    if errors and all(getattr(e, "kind", None) == ErrorKind.REAUTH for e in errors):
        return True
    return exc.retry_at is None and any("needs re-authentication" in str(e) for e in errors)


@shared_task(acks_late=True)
def import_run_task(run_id: int) -> int:
    return importing.import_execute(run_id=run_id)
