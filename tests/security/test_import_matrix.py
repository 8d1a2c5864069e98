"""Hostile import files not covered by the CRM suite: a 10 MB field, duplicate headers, formula-injection
cells. Each is a per-row error or stored as inert text; the good rows land; the import never fails."""

from __future__ import annotations

import io

import pytest

from aicmo.models import Job, JobStatus
from crm.importing import import_create, import_execute
from crm.models import Contact, ImportRun

pytestmark = pytest.mark.django_db


def run_import(workspace, content: bytes) -> ImportRun:
    run = import_create(workspace=workspace, fh=io.BytesIO(content), name="people.csv", enqueue=False)
    import_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


@pytest.mark.parametrize("before", [1, 200])  # inside the mapping preview's rows, and far past them
def test_a_10_mb_field_is_a_row_error_and_the_good_rows_land(workspace, settings, tmp_path, before):
    settings.MEDIA_ROOT = tmp_path / "media"
    huge = "x" * (10 * 1024 * 1024)
    good = "".join(f"p{n}@ex.com,P{n}\n" for n in range(before))
    content = f"email,first_name\n{good}big@ex.com,{huge}\nlast@ex.com,Last\n".encode()
    run = run_import(workspace, content)
    assert Job.objects.get(pk=run.job_id).status == JobStatus.SUCCEEDED
    emails = set(Contact.objects.for_workspace(workspace).values_list("email", flat=True))
    assert emails == {f"p{n}@ex.com" for n in range(before)} | {"last@ex.com"}
    error = run.row_errors.get()
    assert run.failed == 1 and error.line == before + 2 and "could not be read" in error.reason


def test_duplicate_headers_do_not_merge_columns_or_fail_the_import(workspace, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    content = b"email,first_name,first_name\nok@ex.com,First,Second\n"
    run = run_import(workspace, content)
    assert Job.objects.get(pk=run.job_id).status == JobStatus.SUCCEEDED
    contact = Contact.objects.for_workspace(workspace).get()
    assert contact.first_name in {"First", "Second"}


@pytest.mark.parametrize(
    "cell",
    ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1+1"],
)
def test_formula_cells_are_stored_as_text(workspace, settings, tmp_path, cell):
    settings.MEDIA_ROOT = tmp_path / "media"
    quoted = '"' + cell.replace('"', '""') + '"'
    run = run_import(workspace, f"email,first_name\nok@ex.com,{quoted}\n".encode())
    assert Job.objects.get(pk=run.job_id).status == JobStatus.SUCCEEDED
    assert Contact.objects.for_workspace(workspace).get().first_name.strip() == cell.strip()
