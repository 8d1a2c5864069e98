from celery import shared_task

from .jobs import JobCancelled, job_fail


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def audit_export_task(self, job_id: int) -> None:
    from .exports import audit_export_run

    try:
        audit_export_run(job_id=job_id)
    except JobCancelled:
        return
    except Exception as exc:
        if not self.retries_database_lock(exc):  # a retried attempt is not a failed job
            job_fail(job_id=job_id, message=f"Export failed: {exc.__class__.__name__}: {exc}")
        raise
