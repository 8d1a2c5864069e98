"""Out-of-range and non-ASCII-digit inputs the API fuzzer and the dashboard sweep found answering 500."""

from __future__ import annotations

import pytest

from aicmo.models import Job
from tests.crm.factories import ContactFactory, ContactListFactory

HUGE_ID = 99999999999999999999999  # no database integer holds it; SQLite cannot even bind it


def test_contact_list_filter_by_huge_list_id_is_a_400(api_client_for):
    client = api_client_for(role="viewer")

    resp = client.get(f"/api/v1/crm/contacts/?list={HUGE_ID}")

    assert resp.status_code == 400
    assert "list" in resp.json()["error"]["fields"]


def test_list_add_with_huge_contact_id_is_a_400_and_adds_nothing(api_client_for):
    client = api_client_for(role="marketer")
    contact_list = ContactListFactory(workspace=client.workspace)
    contact = ContactFactory(workspace=client.workspace)

    resp = client.post(
        f"/api/v1/crm/lists/{contact_list.pk}/add/", {"contact_ids": [contact.pk, HUGE_ID]}, format="json"
    )

    assert resp.status_code == 400
    assert "contact_ids" in next(iter(resp.json()["error"]["fields"]))
    assert not contact_list.memberships.exists()


def test_enrichment_run_with_huge_contact_id_is_a_400_and_starts_no_job(api_client_for):
    client = api_client_for(role="marketer")

    resp = client.post("/api/v1/crm/enrichment-runs/", {"contact_ids": [HUGE_ID]}, format="json")

    assert resp.status_code == 400
    assert not Job.objects.filter(workspace=client.workspace).exists()


def test_dashboard_segment_id_that_is_not_ascii_digits_is_a_404(client_for):
    """A segment the user asked for and cannot have is a 404, not the unfiltered list (more in
    test_dashboard_input.py)."""
    client = client_for(role="viewer")
    ContactFactory(workspace=client.workspace, email="kept@example.com")

    page = client.get("/crm/", {"segment": "²"})
    export = client.get("/crm/export.csv", {"segment": "²"})

    assert page.status_code == 404 and export.status_code == 404


def test_dashboard_with_huge_list_id_lists_without_the_filter(client_for):
    client = client_for(role="viewer")

    resp = client.get("/crm/", {"list": str(HUGE_ID)})

    assert resp.status_code == 200


@pytest.mark.parametrize("value", ["abc", "²", "9" * 5000, "-3"])
def test_export_with_a_junk_segment_id_is_a_400(api_client_for, value):
    client = api_client_for(role="viewer")

    resp = client.get("/api/v1/crm/contacts/export/", {"segment": value})

    assert resp.status_code == 400
    assert "segment" in resp.json()["error"]["fields"]


@pytest.mark.parametrize("url", ["/crm/", "/crm/export.csv"])
def test_dashboard_segment_id_too_long_for_int_is_a_404(client_for, url):
    client = client_for(role="viewer")

    assert client.get(url, {"segment": "9" * 5000}).status_code == 404


def test_created_after_with_an_offset_postgresql_refuses_is_compared_in_utc(api_client_for):
    """ISO 8601 allows -23:31; PostgreSQL accepts offsets only up to ±15:59 (its DataError was a 500)."""
    client = api_client_for(role="viewer")
    contact = ContactFactory(workspace=client.workspace)

    resp = client.get("/api/v1/crm/contacts/", {"created_after": "0378-09-09T00:15:03-23:31"})

    assert resp.status_code == 200
    assert [c["id"] for c in resp.json()["results"]] == [contact.pk]


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+23:00", "9999-12-31T23:59:59-23:00"])
def test_created_after_outside_the_utc_calendar_is_a_400(api_client_for, value):
    client = api_client_for(role="viewer")

    resp = client.get("/api/v1/crm/contacts/", {"created_after": value})

    assert resp.status_code == 400
    assert "created_after" in resp.json()["error"]["fields"]
