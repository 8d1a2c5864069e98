"""Job services: the one API apps use to start, advance, finish and cancel long operations.

Counters are advanced with F() expressions so concurrent Celery workers never lose an update.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .audit import audit_record
from .models import FINISHED_JOB_STATUSES, Job, JobError, JobStatus, Workspace

MAX_ERRORS_PER_JOB = 10_000

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemError:
    item: str
    message: str
    details: dict | None = None


class JobCancelled(Exception):
    """Raised inside job work when an operator cancelled the job; the worker stops cleanly."""


def job_start(
    *,
    workspace: Workspace,
    kind: str,
    total: int = 0,
    by=None,
    label: str = "",
    params: dict | None = None,
) -> Job:
    user = by if getattr(by, "is_authenticated", False) else None
    return Job.objects.create(
        workspace=workspace,
        kind=kind,
        total=max(0, total),
        started_by=user,
        label=label[:200],
        params=params or {},
    )


ENQUEUE_FAILED = (
    "Could not queue the work: the task queue (broker) is unreachable. Start it again once it is back."
)


class QueueUnavailable(Exception):  # noqa: N818 - named for what the client is told
    """Raised by a request that could not queue its task and wrote nothing: answered 503 with
    Retry-After (``aicmo.dblocks.transient_error``)."""


QUEUE_UNAVAILABLE_CODE = "queue_unavailable"
QUEUE_UNAVAILABLE_MESSAGE = "The task queue is unavailable; nothing was queued. Retry the request shortly."
QUEUE_UNAVAILABLE_RETRY_AFTER_SECONDS = 15


def task_send(task, *args, on_failure: Callable[[], None] | None = None) -> bool:
    """Send ``task.delay(*args)`` now. True when the broker took it; on any broker or transport error
    (e.g. Redis unreachable after Celery's publish retries: ``task_publish_retry_policy``, web processes
    keep the default 3 tries in about 0.6 s) the error is logged (it names the broker's host and port, so
    it goes to the log only, as on /readyz), ``on_failure()`` runs, and the answer is False. Never raises
    for the broker."""
    try:
        task.delay(*args)
    except Exception as exc:  # noqa: BLE001 - any broker/transport error
        logger.error("could not enqueue %s%r: %s", task.name, args, exc)
        if on_failure is not None:
            on_failure()
        return False
    return True


def task_enqueue(task, *args, on_failure: Callable[[], None] | None = None) -> None:
    """:func:`task_send` once the current transaction commits (at once outside one), so the worker finds
    the committed rows. A broker error never turns a request whose rows are committed into a 500:
    ``on_failure`` records what the caller's users should see instead."""
    transaction.on_commit(lambda: task_send(task, *args, on_failure=on_failure))


def job_enqueue(task, *args, job_id: int | None = None, on_failure: Callable[[], None] | None = None) -> None:
    """:func:`task_enqueue` for the task of Job ``job_id``: when the send fails, the committed rows
    stand and that job is marked failed with ``ENQUEUE_FAILED``, so the request that started it answers
    as usual and the client and the job page show why it will not run (start it again once the queue is
    back); then ``on_failure()`` runs (a row with a status of its own marks itself failed too). Without
    ``job_id`` the error is only logged."""

    def failed() -> None:
        if job_id is not None:
            job_fail(job_id=job_id, message=ENQUEUE_FAILED)
        if on_failure is not None:
            on_failure()

    task_enqueue(task, *args, on_failure=failed)


def job_mark_running(*, job_id: int) -> bool:
    """queued → running (idempotent). False when the job is already finished (e.g. cancelled)."""
    now = timezone.now()
    Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(status=JobStatus.RUNNING, started_at=now)
    return Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).exists()


def job_set_total(*, job_id: int, total: int) -> None:
    Job.objects.filter(pk=job_id).update(total=max(0, total))


def job_set_progress(*, job_id: int, done: int, failed: int = 0) -> None:
    """Set the done/failed counters to absolute values: for a task that recounts its progress from the
    state it finds (a redelivered task whose killed first run had already counted part of the work)."""
    Job.objects.filter(pk=job_id).update(done=max(0, done), failed=max(0, failed), updated_at=timezone.now())


def job_advance(*, job_id: int, done: int = 0, failed: int = 0, errors: Iterable[ItemError] = ()) -> None:
    """Add to the done/failed counters and record per-item errors."""
    errors = list(errors)
    with transaction.atomic():
        Job.objects.filter(pk=job_id).update(
            done=F("done") + done, failed=F("failed") + failed, updated_at=timezone.now()
        )
        if errors:
            job = Job.objects.only("workspace_id").get(pk=job_id)
            room = MAX_ERRORS_PER_JOB - JobError.objects.filter(job_id=job_id).count()
            if room > 0:
                JobError.objects.bulk_create(
                    [
                        JobError(
                            workspace_id=job.workspace_id,
                            job_id=job_id,
                            item=str(e.item)[:255],
                            message=e.message,
                            details=e.details or {},
                        )
                        for e in errors[:room]
                    ]
                )


def job_is_cancelled(job_id: int) -> bool:
    return Job.objects.filter(pk=job_id, status=JobStatus.CANCELLED).exists()


def job_check_cancelled(job_id: int) -> None:
    if job_is_cancelled(job_id):
        raise JobCancelled(job_id)


def job_finish(
    *, job_id: int, status: str | None = None, message: str = "", result: dict | None = None
) -> Job:
    """running → succeeded/failed. A cancelled job stays cancelled. Default: failed if every item failed."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status in FINISHED_JOB_STATUSES:
            return job
        if status is None:
            status = JobStatus.FAILED if job.failed and not job.done else JobStatus.SUCCEEDED
        job.status = status
        job.message = message or job.message
        if result is not None:
            job.result = result
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "message", "result", "finished_at", "updated_at"])
        return job


def job_fail(*, job_id: int, message: str) -> Job:
    return job_finish(job_id=job_id, status=JobStatus.FAILED, message=message)


def failure_is_final(exc: BaseException) -> bool:
    """False when the Celery task running this code will retry ``exc`` itself — a transient database
    error (lock lost, server unreachable) with retries left, see :class:`aicmo.celery.Task`. Code that
    marks its job (or run) failed before re-raising asks this first: an attempt that is retried must not
    leave a failed job behind, or the retry finds it finished and does nothing. True outside a worker."""
    from celery import current_task

    will_retry = getattr(current_task, "retries_database_lock", None)
    return not (will_retry is not None and will_retry(exc))


def job_cancel(*, job: Job, by) -> Job:
    """Cancel a job that has not finished; workers notice through `job_check_cancelled`."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status in FINISHED_JOB_STATUSES:
            return job
        job.status = JobStatus.CANCELLED
        job.finished_at = timezone.now()
        job.message = "Cancelled by " + (by.get_username() if by is not None else "system")
        job.save(update_fields=["status", "finished_at", "message", "updated_at"])
        audit_record(workspace=job.workspace, actor=by, verb="job.cancelled", target=job)
        return job


class JobNotRetryable(Exception):
    """Only failed jobs of a kind with a retry function (``settings.AICMO_JOB_RETRY``) can be retried."""


def job_retry(*, job: Job, by) -> Job:
    """Start the work of a failed ``job`` again as a new job, through the function its kind registers in
    ``settings.AICMO_JOB_RETRY`` (``{kind: "dotted.path"}``, called as ``fn(job=job, by=by) -> Job``);
    audited on the old job as ``job.retried``. Raises JobNotRetryable."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    path = settings.AICMO_JOB_RETRY.get(job.kind)
    if job.status != JobStatus.FAILED or path is None:
        raise JobNotRetryable(f"job {job.pk} ({job.kind}, {job.status}) cannot be retried")
    with transaction.atomic():
        new_job = import_string(path)(job=job, by=by)
        audit_record(
            workspace=job.workspace, actor=by, verb="job.retried", target=job, changes={"new_job": new_job.pk}
        )
    return new_job
