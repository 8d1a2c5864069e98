import csv
import io

import pytest

from aicmo.audit import audit_record
from aicmo.exports import audit_export_run, neutralize_cell
from aicmo.models import Job, Role

pytestmark = pytest.mark.django_db


def test_export_api_enqueues_after_commit_and_file_downloads(
    api_client_for, client_for, workspace, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    audit_record(
        workspace=workspace, actor=None, verb="crm.contact.deleted", changes={"email": "=HYPERLINK(1)"}
    )
    client = api_client_for(Role.ADMIN)
    with django_capture_on_commit_callbacks() as callbacks:
        resp = client.post("/api/v1/audit-events/export/")
    assert resp.status_code == 202
    assert len(callbacks) == 1  # the task is enqueued only once the job row is committed
    job_id = resp.json()["id"]
    audit_export_run(job_id=job_id)  # what the worker runs
    job = Job.objects.get(pk=job_id)
    assert job.status == "succeeded" and job.done == job.total >= 2

    web = client_for(Role.ADMIN)
    download = web.get(f"/jobs/{job_id}/download/")
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[0][:3] == ["at", "actor", "verb"]
    assert any(r[2] == "crm.contact.deleted" for r in rows[1:])


def test_export_and_download_need_admin(api_client_for, client_for, workspace):
    assert api_client_for(Role.MARKETER).post("/api/v1/audit-events/export/").status_code == 403
    job = Job.objects.create(
        workspace=workspace,
        kind="audit_export",
        params={"download_permission": "manage"},
        result={"file": "exports/x.csv"},
        status="succeeded",
    )
    assert client_for(Role.MARKETER).get(f"/jobs/{job.pk}/download/").status_code in (403, 404)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("  =cmd", "'  =cmd"),
        ("\t=x", "'\t=x"),
        ("@SUM", "'@SUM"),
        ("-2", "'-2"),
        ("ok", "ok"),
    ],
)
def test_formula_cells_are_neutralized(raw, safe):
    assert neutralize_cell(raw) == safe
