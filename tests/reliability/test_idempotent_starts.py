"""Double-submitted API calls that start work create one piece of work: the same ``Idempotency-Key`` with
the same request replays the first answer; with another request it is a 422; a malformed key a 400. One
matrix over every job-starting endpoint, and the schema documents the header and the statuses on each."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from aicmo.models import Job
from crm.models import ImportRun
from media.models import MediaAsset
from tests.crm.factories import ContactFactory
from tests.media.conftest import make_image

pytestmark = pytest.mark.django_db


def _csv(text: str):
    return SimpleUploadedFile("people.csv", text.encode(), content_type="text/csv")


def _image(width: int):
    return SimpleUploadedFile("photo.jpg", make_image(width, 100), content_type="image/jpeg")


def crm_import(client, variant: int):
    body = {"file": _csv(f"email\nperson{variant}@example.com\n"), "policy": "update"}
    return client.post("/api/v1/crm/imports/", body, format="multipart"), ImportRun.objects.count


def _contact_ids(client, variant: int) -> list[int]:
    """The same contacts for the same variant (a repeat must be the same request)."""
    made = client.__dict__.setdefault("contacts_by_variant", {})
    if variant not in made:
        made[variant] = [c.pk for c in ContactFactory.create_batch(variant + 1, workspace=client.workspace)]
    return made[variant]


def enrichment_run(client, variant: int):
    body = {"contact_ids": _contact_ids(client, variant)}
    count = Job.objects.filter(kind__contains="enrich").count
    return client.post("/api/v1/crm/enrichment-runs/", body, format="json"), count


def verification_run(client, variant: int):
    body = {"contact_ids": _contact_ids(client, variant)}
    count = Job.objects.filter(kind__contains="verif").count
    return client.post("/api/v1/crm/verification-runs/", body, format="json"), count


def asset_upload(client, variant: int):
    body = {"file": _image(200 + variant), "title": "Hero"}
    return client.post("/api/v1/media/assets/", body, format="multipart"), MediaAsset.objects.count


def order_import(client, variant: int):
    text = f"email,order_id,ordered_at,amount,currency\nbuyer@example.com,o-{variant},2026-01-0{variant + 1},10,EUR\n"
    body = {"file": _csv(text), "create_contacts": "true"}
    count = Job.objects.filter(kind__contains="order").count
    return client.post("/api/v1/analytics/orders/import/", body, format="multipart"), count


def audit_export(client, variant: int):
    count = Job.objects.filter(kind="audit_export").count
    return client.post("/api/v1/audit-events/export/"), count


STARTERS = [crm_import, enrichment_run, verification_run, asset_upload, order_import, audit_export]


@pytest.fixture
def admin(api_client_for, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    with django_capture_on_commit_callbacks(execute=False):  # start the work, run none of it
        yield api_client_for("admin")


def _post(client, starter, variant, key):
    client.credentials(HTTP_IDEMPOTENCY_KEY=key) if key is not None else client.credentials()
    response, count = starter(client, variant)
    return response, count


@pytest.mark.parametrize("starter", STARTERS, ids=lambda f: f.__name__)
def test_a_repeat_with_the_same_key_starts_nothing_new(admin, starter):
    first, count = _post(admin, starter, 0, "retry-7f3a")
    assert first.status_code in (200, 201, 202), first.content
    made = count()
    again, _ = _post(admin, starter, 0, "retry-7f3a")
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again["Idempotent-Replayed"] == "true"
    assert count() == made


@pytest.mark.parametrize("starter", [s for s in STARTERS if s is not audit_export], ids=lambda f: f.__name__)
def test_the_same_key_with_another_request_is_a_422_and_starts_nothing(admin, starter):
    first, count = _post(admin, starter, 0, "reused-key")
    assert first.status_code in (200, 201, 202), first.content
    made = count()
    other, _ = _post(admin, starter, 1, "reused-key")  # another file / other contacts
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert count() == made


@pytest.mark.parametrize("key", ["", "has space", "é-accent", "x" * 256, "tab\there"])
@pytest.mark.parametrize("starter", STARTERS, ids=lambda f: f.__name__)
def test_a_malformed_key_is_a_400_and_starts_nothing(admin, starter, key):
    response, count = _post(admin, starter, 0, key)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["error"]["message"]
    assert count() == 0


def test_keys_belong_to_their_caller(api_client_for, workspace, settings, tmp_path):
    """Another caller's identical key is not a replay of someone else's answer."""
    one, two = api_client_for("admin"), api_client_for("admin")
    first, count = _post(one, crm_import, 0, "shared-name")
    second, _ = _post(two, crm_import, 0, "shared-name")
    assert first.status_code == second.status_code == 202 and "Idempotent-Replayed" not in second
    assert count() == 2


def test_the_schema_documents_the_header_and_its_statuses(admin):
    schema = admin.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    starts = {
        ("/api/v1/crm/imports/", "post"),
        ("/api/v1/crm/enrichment-runs/", "post"),
        ("/api/v1/crm/verification-runs/", "post"),
        ("/api/v1/media/assets/", "post"),
        ("/api/v1/analytics/orders/import/", "post"),
        ("/api/v1/audit-events/export/", "post"),
        ("/api/v1/publishing/campaigns/{id}/send/", "post"),
    }
    for path, method in starts:
        operation = schema["paths"][path][method]
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, path
        assert {"400", "409", "422"} <= set(operation["responses"]), path
