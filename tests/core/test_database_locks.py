"""A write that finds SQLite's lock taken: tasks retry it with backoff, the API answers 503, never 500.

The lock is real: a second sqlite3 connection to the test database file holds it (BEGIN IMMEDIATE) while
Django's connections use a short busy timeout, so they give up with "database is locked" as they would
behind a long writer in `make run`.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager

import pytest
from celery.signals import task_failure, task_retry
from django.db import connection, connections
from django.db.utils import DatabaseError, IntegrityError, OperationalError

from aicmo.celery import app, database_locked_countdown
from aicmo.dblocks import BUSY_CODE, BUSY_MESSAGE, is_database_locked
from aicmo.jobs import failure_is_final
from aicmo.models import Job, JobStatus, Role
from aicmo.tasks import audit_export_task
from tests.factories import JobFactory

sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="SQLite's single write lock; PostgreSQL locks rows"
)


@pytest.mark.parametrize(
    ("exc", "locked"),
    [
        (OperationalError("database is locked"), True),
        (OperationalError("database table is locked"), True),
        (OperationalError("Database Is Locked"), True),
        (sqlite3.OperationalError("database is locked"), True),
        (OperationalError("no such table: aicmo_job"), False),
        (OperationalError("disk I/O error"), False),
        (OperationalError("server closed the connection unexpectedly"), False),
        (OperationalError("could not obtain lock on row in relation"), False),
        (IntegrityError("database is locked"), False),
        (DatabaseError("database is locked"), False),
        (RuntimeError("database is locked"), False),
    ],
)
def test_only_lock_errors_count_as_database_locked(exc, locked):
    assert is_database_locked(exc) is locked


@pytest.mark.parametrize("retries", range(12))
def test_countdown_grows_exponentially_with_jitter_and_a_cap(retries):
    ceiling = min(60.0, 1.0 * 2**retries)
    draws = [database_locked_countdown(retries, base_delay=1.0, max_delay=60.0) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in draws)
    assert len(set(draws)) > 1  # jittered


@contextmanager
def write_lock_held(monkeypatch, busy_timeout: float = 0.1):
    """Hold SQLite's write lock from another connection; Django's connections wait only ``busy_timeout``."""
    # Django's connections (every thread's) are built from this settings dict when they next connect.
    monkeypatch.setitem(connections.settings["default"]["OPTIONS"], "timeout", busy_timeout)
    connections.close_all()
    holder = sqlite3.connect(connection.settings_dict["NAME"], timeout=5, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield holder
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()


def _wait(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def task_signals():
    seen: dict[str, list] = {"retry": [], "failure": []}

    def on_retry(sender=None, reason=None, **_kwargs):
        seen["retry"].append(reason)

    def on_failure(sender=None, exception=None, **_kwargs):
        seen["failure"].append(exception)

    task_retry.connect(on_retry, weak=False)
    task_failure.connect(on_failure, weak=False)
    yield seen
    task_retry.disconnect(on_retry)
    task_failure.disconnect(on_failure)


@sqlite_only
def test_task_retries_while_the_lock_is_held_and_then_finishes(
    live_celery_worker, workspace, settings, monkeypatch, task_signals
):
    settings.AICMO_DB_LOCKED_RETRY = {"max_retries": 50, "base_delay": 0.05, "max_delay": 0.2}
    job = JobFactory(workspace=workspace, kind="audit_export")
    with write_lock_held(monkeypatch) as holder:
        audit_export_task.delay(job.pk)
        assert _wait(lambda: len(task_signals["retry"]) >= 2), "the task did not retry behind the lock"
        holder.execute("ROLLBACK")
        assert _wait(lambda: Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED), Job.objects.get(
            pk=job.pk
        ).status
    assert task_signals["failure"] == []
    assert all(is_database_locked(reason.exc) for reason in task_signals["retry"])


@sqlite_only
def test_task_gives_up_after_the_bounded_retries(
    live_celery_worker, workspace, settings, monkeypatch, task_signals
):
    settings.AICMO_DB_LOCKED_RETRY = {"max_retries": 2, "base_delay": 0.05, "max_delay": 0.1}
    job = JobFactory(workspace=workspace, kind="audit_export")
    with write_lock_held(monkeypatch):
        audit_export_task.delay(job.pk)
        assert _wait(lambda: task_signals["failure"]), "the task never gave up"
    assert len(task_signals["retry"]) == 2
    assert len(task_signals["failure"]) == 1 and is_database_locked(task_signals["failure"][0])


@sqlite_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("door", "path", "ok"),
    [("api", "/api/v1/media/suggestions/refresh/", 202), ("page", "/audit/", 302)],
)
def test_write_behind_the_lock_answers_503_with_retry_after(
    door, path, ok, api_client_for, client_for, monkeypatch
):
    client = api_client_for(Role.ADMIN) if door == "api" else client_for(Role.ADMIN)
    before = Job.objects.count()
    with write_lock_held(monkeypatch):
        response = client.post(path)
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    if door == "api":
        assert response.json() == {"error": {"code": BUSY_CODE, "message": BUSY_MESSAGE, "fields": {}}}
    else:
        assert response.content.decode() == BUSY_MESSAGE
    assert Job.objects.count() == before  # nothing half-written
    assert client.post(path).status_code == ok


def test_a_retried_suggestions_refresh_counts_each_library_once(workspace):
    """A retry (lock error) or redelivery re-runs a job an earlier attempt left half done."""
    from media.services import suggestions_refresh
    from tests.media.factories import MediaLibraryFactory

    MediaLibraryFactory.create_batch(3, workspace=workspace)
    job = JobFactory(workspace=workspace, kind="media.suggestions", total=3, status=JobStatus.RUNNING, done=2)
    suggestions_refresh(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done, job.total) == (JobStatus.SUCCEEDED, 3, 3)


@app.task(bind=True, name="tests.core.failure_is_final_probe")
def failure_is_final_probe(self, message: str) -> bool:
    return failure_is_final(OperationalError(message))


def test_a_failure_the_running_task_will_retry_is_not_final(settings):
    """Services that mark their job failed before re-raising (imports, lifetime fits, exports) ask
    `failure_is_final` first: a retried attempt must not leave the job failed for the retry to skip."""
    settings.AICMO_DB_LOCKED_RETRY = {"max_retries": 2, "base_delay": 0.05, "max_delay": 0.1}
    assert failure_is_final(OperationalError("database is locked"))  # no task running: final
    assert failure_is_final_probe("database is locked") is True  # called directly: raised at once
    assert failure_is_final_probe.apply(args=["database is locked"]).get() is False  # will be retried
    assert failure_is_final_probe.apply(args=["database is locked"], retries=2).get() is True  # spent
    assert failure_is_final_probe.apply(args=["no such column: x"]).get() is True  # not transient
