from celery import shared_task
from django.utils import timezone

from .invitations import InvitationSendDeferred
from .jobs import JobCancelled, failure_is_final, job_fail


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def audit_export_task(self, job_id: int) -> None:
    from .exports import audit_export_run

    try:
        audit_export_run(job_id=job_id)
    except JobCancelled:
        return
    except Exception as exc:
        if failure_is_final(exc):  # a retried attempt is not a failed job
            job_fail(job_id=job_id, message=f"Export failed: {exc.__class__.__name__}: {exc}")
        raise


INVITATION_RETRY_MAX_SECONDS = (
    3600  # below CELERY_VISIBILITY_TIMEOUT (2 h), so a waiting retry is not redelivered
)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=8)
def invitation_send_task(self, invitation_id: int) -> bool:
    """Mail an invitation's current link; a re-run after success, revoke or acceptance does nothing. When no
    provider answered, retry when the gateway says one may (``retry_at``), else after 1, 2, 4 … 60 minutes."""
    from .invitations import invitation_deliver

    try:
        return invitation_deliver(invitation_id=invitation_id)
    except InvitationSendDeferred as exc:
        backoff = 60 * 2**self.request.retries
        if exc.retry_at is not None:
            backoff = (exc.retry_at - timezone.now()).total_seconds()
        raise self.retry(exc=exc, countdown=min(max(backoff, 1), INVITATION_RETRY_MAX_SECONDS)) from exc


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def password_reset_send_task(user_id: int) -> bool:
    """Mail a password reset link (ids only). Not retried when no provider answers: the person is waiting
    for it now, and asking again sends a fresh link."""
    from .password_reset import password_reset_deliver

    return password_reset_deliver(user_id=user_id)


@shared_task(acks_late=True, ignore_result=True)
def retention_run_task() -> dict:
    """Beat entry point (every 6 hours): prune history tables (aicmo.retention)."""
    from .retention import retention_run

    return retention_run()
