"""A real Celery worker on real Redis builds renditions enqueued after the upload commits."""

from __future__ import annotations

import time

from django.core.files.uploadedfile import SimpleUploadedFile

from aicmo.models import Job, JobStatus
from media import renditions as rd
from media import services
from media.models import Rendition
from tests.media.conftest import make_image


def _wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_worker_builds_renditions_after_upload(live_celery_worker, workspace):
    library = services.library_create(workspace=workspace, name="Live")
    asset = services.asset_upload(
        library=library, file=SimpleUploadedFile("a.jpg", make_image(1400, 1000))
    ).asset
    job = Job.objects.get(kind="media.renditions", params__asset_id=asset.pk)
    assert _wait(lambda: Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED), Job.objects.get(
        pk=job.pk
    ).status
    job.refresh_from_db()
    assert job.done == len(rd.SPECS) and job.result == {"built": len(rd.SPECS)}
    assert set(Rendition.objects.filter(asset=asset).values_list("spec", flat=True)) == set(rd.SPECS)

    # A second request is a no-op for the worker: everything is up to date.
    again = services.asset_request_renditions(asset=asset)
    assert _wait(lambda: Job.objects.get(pk=again.pk).status == JobStatus.SUCCEEDED)
    assert Job.objects.get(pk=again.pk).result == {"built": 0}
