import pytest

from aicmo.jobs import (
    ItemError,
    JobCancelled,
    job_advance,
    job_cancel,
    job_check_cancelled,
    job_finish,
    job_mark_running,
    job_start,
)
from aicmo.models import AuditEvent, JobStatus

pytestmark = pytest.mark.django_db


def test_job_lifecycle_counts_and_errors(workspace, member_factory):
    user = member_factory(workspace)
    job = job_start(workspace=workspace, kind="import", total=4, by=user, label="contacts.csv")
    assert job.status == JobStatus.QUEUED and job.percent == 0
    assert job_mark_running(job_id=job.pk)
    job_advance(job_id=job.pk, done=2)
    job_advance(job_id=job.pk, failed=1, errors=[ItemError("row 7", "bad email")])
    job.refresh_from_db()
    assert (job.done, job.failed, job.percent) == (2, 1, 75)
    assert [(e.item, e.message) for e in job.errors.all()] == [("row 7", "bad email")]
    job = job_finish(job_id=job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.finished_at


def test_all_failed_finishes_failed(workspace):
    job = job_start(workspace=workspace, kind="x", total=1)
    job_advance(job_id=job.pk, failed=1)
    assert job_finish(job_id=job.pk).status == JobStatus.FAILED


def test_cancel_is_final_and_audited(workspace, member_factory):
    user = member_factory(workspace)
    job = job_start(workspace=workspace, kind="x", total=3)
    job_cancel(job=job, by=user)
    with pytest.raises(JobCancelled):
        job_check_cancelled(job.pk)
    assert not job_mark_running(job_id=job.pk)
    assert job_finish(job_id=job.pk).status == JobStatus.CANCELLED
    assert AuditEvent.objects.filter(verb="job.cancelled", target_id=str(job.pk)).exists()
