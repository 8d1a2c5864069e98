"""Order-history import: mapping, per-row errors, unknown customers, idempotent re-import, resume after a
killed worker, local dates, and the API upload."""

from __future__ import annotations

import io
import json
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from aicmo.models import Job, JobStatus, Role
from analytics import importing
from analytics.importing import order_import_execute, order_import_start
from analytics.models import Order
from crm.models import Contact
from tests.crm.factories import ContactFactory

HEADER = "Order ID,Customer Email,Order Date,Total,Currency\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def upload(text: str, name="orders.csv"):
    return SimpleUploadedFile(name, text.encode())


def run(workspace, text: str, **kwargs) -> Job:
    job = order_import_start(workspace=workspace, fh=upload(text), name="orders.csv", enqueue=False, **kwargs)
    order_import_execute(job_id=job.pk)
    job.refresh_from_db()
    return job


def errors_of(job) -> dict[str, tuple[str, str]]:
    return {e.item: (e.details["column"], e.message) for e in job.errors.all()}


def test_rows_become_orders_and_bad_rows_become_line_errors(berlin, workspace, other_workspace):
    ContactFactory(workspace=workspace, email="ann@example.com")
    theirs = ContactFactory(workspace=other_workspace, email="bob@example.com")
    text = HEADER + (
        "A1,Ann@Example.com,2026-03-29,19.90,eur\n"  # a date: local midnight (Berlin, the DST day)
        "A2,ann@example.com,2026-03-29T10:15:00+00:00,5,USD\n"
        "A3,nobody@example.com,2026-03-30,1,EUR\n"  # unknown customer, creating contacts is off
        "A4,ann@example.com,not a date,1,EUR\n"
        "A5,ann@example.com,2026-03-30,-3,EUR\n"
        "A6,ann@example.com,2026-03-30,3,EURO\n"
        ",ann@example.com,2026-03-30,3,EUR\n"
        "A7,not-an-email,2026-03-30,3,EUR\n"
        "A1,ann@example.com,2026-03-29,25.00,EUR\n"  # the same order id with other details
    )
    job = run(workspace, text)
    assert job.status == JobStatus.SUCCEEDED
    orders = {o.external_id: o for o in Order.objects.filter(workspace=workspace)}
    assert set(orders) == {"A1", "A2"}
    assert orders["A1"].ordered_at == datetime(2026, 3, 29, tzinfo=ZoneInfo("Europe/Berlin"))
    assert (orders["A1"].amount, orders["A1"].currency, orders["A1"].source) == (
        Decimal("19.90"),
        "EUR",
        "import",
    )
    assert errors_of(job) == {
        "line 4": ("email", "Unknown customer (allow creating contacts to add it)."),
        "line 5": ("ordered_at", "Not a date (YYYY-MM-DD or ISO 8601)."),
        "line 6": ("amount", "Must be a finite amount between 0 and 999999999999.99."),
        "line 7": ("currency", "A three-letter ISO 4217 code, e.g. EUR."),
        "line 8": ("order_id", "An order id of 1 to 100 characters."),
        "line 9": ("email", errors_of(job)["line 9"][1]),
        "line 10": ("order_id", "This order id exists with different details."),
    }
    assert (job.done, job.failed, job.total) == (2, 7, 9)
    assert job.result["created"] == 2 and job.result["failed"] == 7
    assert not Order.objects.filter(workspace=other_workspace).exists() and theirs.pk


def test_unknown_customers_are_created_when_asked_and_reimport_is_idempotent(workspace):
    text = HEADER + "B1,new@example.com,2026-05-01,10,EUR\nB2,new@example.com,2026-05-02,20,EUR\n"
    job = run(workspace, text, create_contacts=True)
    assert job.result["contacts_created"] == 1 and job.result["created"] == 2
    contact = Contact.objects.get(workspace=workspace, email="new@example.com")
    assert set(Order.objects.values_list("contact_id", flat=True)) == {contact.pk}
    again = run(workspace, text, create_contacts=True)
    assert (again.result["created"], again.result["skipped"], again.result["failed"]) == (0, 2, 0)
    assert Order.objects.count() == 2


def test_customer_id_column_and_default_currency(workspace, other_workspace):
    mine = ContactFactory(workspace=workspace)
    theirs = ContactFactory(workspace=other_workspace)
    text = f"order,customer_id,date,amount\nC1,{mine.pk},2026-05-01,10\nC2,{theirs.pk},2026-05-01,10\nC3,12x,2026-05-01,1\n"
    job = run(workspace, text, currency="chf")
    assert list(Order.objects.values_list("external_id", "contact_id", "currency")) == [
        ("C1", mine.pk, "CHF")
    ]
    assert {k: v[0] for k, v in errors_of(job).items()} == {"line 3": "customer_id", "line 4": "customer_id"}


@pytest.mark.parametrize(
    ("text", "name", "field"),
    [
        ("", "orders.csv", "file"),
        ("\x89PNG\r\n\x1a\n....", "orders.csv", "file"),
        ("Order ID,Total\nA,1\n", "orders.csv", "mapping.ordered_at"),
        ("Order ID,Date,Total,Email\nA,2026-01-01,1,a@example.com\n", "orders.csv", "mapping.currency"),
        ("Order ID,Date,Total,Currency\nA,2026-01-01,1,EUR\n", "orders.csv", "mapping.email"),
    ],
)
def test_bad_files_and_mappings_are_refused_and_store_nothing(workspace, tmp_path, text, name, field):
    with pytest.raises(ValidationError) as exc:
        order_import_start(workspace=workspace, fh=upload(text, name), name=name, enqueue=False)
    assert field in exc.value.message_dict
    assert not Job.objects.exists()
    assert not list((tmp_path / "media").rglob("*.csv"))


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing in the import may catch it."""


def test_a_killed_worker_resumes_after_the_last_committed_batch(workspace, monkeypatch):
    ContactFactory(workspace=workspace, email="ann@example.com")
    text = HEADER + "".join(f"R{i},ann@example.com,2026-06-01,{i},EUR\n" for i in range(1, 11))
    monkeypatch.setattr(importing, "BATCH_SIZE", 3)
    job = order_import_start(workspace=workspace, fh=upload(text), name="orders.csv", enqueue=False)
    real = importing.job_check_cancelled
    calls = {"n": 0}

    def dies_on_third_batch(job_id):
        calls["n"] += 1
        if calls["n"] == 3:
            raise WorkerKilled
        real(job_id)

    monkeypatch.setattr(importing, "job_check_cancelled", dies_on_third_batch)
    with pytest.raises(WorkerKilled):
        order_import_execute(job_id=job.pk)
    assert Order.objects.count() == 6
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.params["checkpoint_line"] == 7
    order_import_execute(job_id=job.pk)  # the redelivered task
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.done == 10 and job.failed == 0
    assert sorted(Order.objects.values_list("amount", flat=True)) == [Decimal(i) for i in range(1, 11)]


def test_api_upload_answers_202_with_the_job(api_client_for, django_capture_on_commit_callbacks):
    client = api_client_for(role=Role.MARKETER)
    ContactFactory(workspace=client.workspace, email="ann@example.com")
    file = io.BytesIO((HEADER + "D1,ann@example.com,2026-06-01,5,EUR\n").encode())
    file.name = "orders.csv"
    with django_capture_on_commit_callbacks() as callbacks:
        resp = client.post("/api/v1/analytics/orders/import/", {"file": file}, format="multipart")
    assert resp.status_code == 202, resp.content
    assert len(callbacks) == 1
    order_import_execute(job_id=resp.json()["id"])
    job = client.get(f"/api/v1/jobs/{resp.json()['id']}/").json()
    assert job["status"] == "succeeded" and job["done"] == 1
    assert Order.objects.get().external_id == "D1"
    bad = client.post("/api/v1/analytics/orders/import/", {"file": io.BytesIO(b"")}, format="multipart")
    assert bad.status_code == 400
    viewer = api_client_for(role=Role.VIEWER)
    file.seek(0)
    assert (
        viewer.post("/api/v1/analytics/orders/import/", {"file": file}, format="multipart").status_code == 403
    )


def test_api_mapping_is_a_json_part_naming_the_files_headers(api_client_for):
    """The schema's `mapping` is an object, which a multipart body carries as JSON text in its own part: the
    upload follows it (a form-style `mapping.<field>` reader ignored it and fell back to guessing)."""
    client = api_client_for(role=Role.MARKETER)
    text = "Ref,When,Paid,Cur,Mail\nR1,2026-06-01,5,EUR,ann@example.com\n"
    mapping = {"order_id": "Ref", "ordered_at": "When", "amount": "Paid", "currency": "Cur", "email": "Mail"}

    def post(mapping_text):
        file = io.BytesIO(text.encode())
        file.name = "orders.csv"
        body = {"file": file, **({"mapping": mapping_text} if mapping_text is not None else {})}
        return client.post("/api/v1/analytics/orders/import/", body, format="multipart")

    assert post(json.dumps(mapping)).status_code == 202
    unguessable = post(None)
    assert unguessable.status_code == 400 and "mapping.order_id" in unguessable.json()["error"]["fields"]
    wrong = post(json.dumps({**mapping, "order_id": "Order"}))
    assert wrong.status_code == 400
    assert wrong.json()["error"]["fields"]["mapping.order_id"] == ["No column 'Order' in the file."]
    for malformed in ('["Ref"]', '{"order_id": 1}', "{"):
        refused = post(malformed)
        assert refused.status_code == 400 and "mapping" in refused.json()["error"]["fields"], malformed
