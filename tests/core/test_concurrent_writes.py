"""The web server and a live Celery worker write the same database at the same time.

On the embedded SQLite default a deferred transaction that reads first and writes later cannot wait for
another writer: when the database changed since its read, SQLite answers "database is locked" at once,
whatever the busy timeout. Here several HTTP clients start media-suggestion refreshes and audit exports
(each request writes a job and an audit row; each task rewrites suggestions and job progress) while the
worker runs the tasks they enqueue. Every request must succeed and every task must finish.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from celery.signals import task_failure, task_retry
from django.db.models import Count
from django.utils import timezone

from aicmo.apikeys import api_key_create
from aicmo.models import Job, JobStatus, Role
from media.models import MediaAsset, Suggestion
from tests.media.factories import MediaAssetFactory, MediaLibraryFactory

REQUESTS = 200
CLIENTS = 4
ENDPOINTS = ("/api/v1/media/suggestions/refresh/", "/api/v1/audit-events/export/")


@pytest.mark.slow
def test_web_and_worker_write_concurrently_without_errors(
    live_server, live_celery_worker, workspace, member_factory
):
    admin = member_factory(workspace, Role.ADMIN)
    secret = api_key_create(workspace=workspace, name="load", role=Role.ADMIN, by=admin).secret
    library = MediaLibraryFactory(workspace=workspace)
    for _ in range(6):
        MediaAssetFactory(workspace=workspace, library=library)
    # Unused for a long time: every refresh writes an "unused" suggestion per asset.
    MediaAsset.objects.filter(library=library).update(created_at=timezone.now() - dt.timedelta(days=400))

    failures: list[str] = []
    retries: list[str] = []
    lock = threading.Lock()

    def on_failure(sender=None, exception=None, **_kwargs):
        with lock:
            failures.append(f"{sender.name}: {exception!r}")

    def on_retry(sender=None, reason=None, **_kwargs):
        with lock:
            retries.append(f"{sender.name}: {reason!r}")

    task_failure.connect(on_failure, weak=False)
    task_retry.connect(on_retry, weak=False)

    def post(i: int) -> tuple[int, str]:
        with httpx.Client(base_url=live_server.url, headers={"X-Api-Key": secret}, timeout=60) as client:
            response = client.post(ENDPOINTS[i % len(ENDPOINTS)])
            return response.status_code, response.text[:300]

    try:
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            answers = list(pool.map(post, range(REQUESTS)))
        unfinished = Job.objects.filter(workspace=workspace).exclude(
            status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED]
        )
        deadline = time.monotonic() + 180
        while unfinished.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        task_failure.disconnect(on_failure)
        task_retry.disconnect(on_retry)

    bad = [answer for answer in answers if answer[0] != 202]
    assert not bad, f"{len(bad)} of {REQUESTS} requests failed, e.g. {bad[:3]}"
    assert not failures, failures[:5]
    jobs = Job.objects.filter(workspace=workspace)
    assert jobs.count() == REQUESTS
    states = dict(jobs.values_list("status").annotate(n=Count("id")))
    assert states == {JobStatus.SUCCEEDED: REQUESTS}, (states, retries[:5])
    assert Suggestion.objects.filter(asset__library=library).count() == 6
