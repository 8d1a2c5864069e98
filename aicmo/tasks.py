from celery import shared_task

from .invitations import InvitationSendDeferred
from .jobs import JobCancelled, job_fail


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def audit_export_task(job_id: int) -> None:
    from .exports import audit_export_run

    try:
        audit_export_run(job_id=job_id)
    except JobCancelled:
        return
    except Exception as exc:
        job_fail(job_id=job_id, message=f"Export failed: {exc.__class__.__name__}: {exc}")
        raise


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(InvitationSendDeferred,),
    retry_backoff=60,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=8,
)
def invitation_send_task(invitation_id: int) -> bool:
    """Mail an invitation's current link; a re-run after success, revoke or acceptance does nothing."""
    from .invitations import invitation_deliver

    return invitation_deliver(invitation_id=invitation_id)
