"""Admin: actions call services, import entry point, scoping to the member's workspaces."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crm.models import Contact, ContactList, ImportRun
from tests.crm.factories import ContactFactory, ContactListFactory


@pytest.fixture
def staff_client(client, workspace, member_factory):
    user = member_factory(workspace, "admin", is_staff=True)
    client.force_login(user)
    return client


def test_changelist_is_scoped_and_foreign_is_404(staff_client, workspace, other_workspace):
    mine = ContactFactory(workspace=workspace, email="mine@ex.com")
    theirs = ContactFactory(workspace=other_workspace, email="theirs@ex.com")
    body = staff_client.get("/admin/crm/contact/").content.decode()
    assert "mine@ex.com" in body and "theirs@ex.com" not in body
    assert staff_client.get(f"/admin/crm/contact/{mine.pk}/change/").status_code == 200
    assert staff_client.get(f"/admin/crm/contact/{theirs.pk}/change/").status_code == 404


def test_tag_list_merge_actions(staff_client, workspace):
    a = ContactFactory(workspace=workspace, title="")
    b = ContactFactory(workspace=workspace, title="CTO")
    lst = ContactListFactory(workspace=workspace)
    url = "/admin/crm/contact/"
    staff_client.post(url, {"action": "tag", "_selected_action": [a.pk, b.pk], "tag": "vip"})
    assert set(Contact.objects.filter(tags__name="vip").values_list("pk", flat=True)) == {a.pk, b.pk}
    staff_client.post(url, {"action": "add_to_list", "_selected_action": [a.pk], "contact_list": lst.pk})
    assert list(ContactList.objects.get(pk=lst.pk).contacts.all()) == [a]
    resp = staff_client.post(url, {"action": "export_csv", "_selected_action": [a.pk]})
    assert a.email in b"".join(resp.streaming_content).decode()
    staff_client.post(url, {"action": "merge", "_selected_action": [a.pk, b.pk]})
    assert not Contact.objects.filter(pk=b.pk).exists()
    assert Contact.objects.get(pk=a.pk).title == "CTO"


def test_import_entry_point(staff_client, workspace, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("a.csv", b"E-mail,First Name\nadm@ex.com,Ad\n")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        resp = staff_client.post(
            "/admin/crm/importrun/add/",
            {"workspace": workspace.pk, "file": upload, "policy": "update", "tags": "admin"},
        )
    assert resp.status_code == 302, resp.content[:2000]
    run = ImportRun.objects.get(workspace=workspace)
    assert (
        run.job_id and len(callbacks) == 1 and run.mapping == {"E-mail": "email", "First Name": "first_name"}
    )


def test_enrich_and_verify_actions_start_jobs(staff_client, workspace, django_capture_on_commit_callbacks):
    from aicmo.models import Job

    c = ContactFactory(workspace=workspace)
    with django_capture_on_commit_callbacks(execute=False):
        staff_client.post("/admin/crm/contact/", {"action": "enrich", "_selected_action": [c.pk]})
        staff_client.post("/admin/crm/contact/", {"action": "verify", "_selected_action": [c.pk]})
    assert sorted(Job.objects.filter(workspace=workspace).values_list("kind", "total")) == [
        ("crm.enrichment", 1),
        ("crm.verification", 1),
    ]


def test_enrich_action_over_the_size_limit_says_so(staff_client, workspace, monkeypatch):
    from aicmo.models import Job
    from crm import services

    monkeypatch.setattr(services.runs, "MAX_RUN_CONTACTS", 1)
    ids = [c.pk for c in ContactFactory.create_batch(2, workspace=workspace)]
    page = staff_client.post(
        "/admin/crm/contact/", {"action": "enrich", "_selected_action": ids}, follow=True
    )
    assert b"A run takes at most 1 contacts" in page.content
    assert not Job.objects.exists()


def test_import_entry_point_refuses_a_file_whose_content_is_not_its_name(staff_client, workspace):
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)
    resp = staff_client.post(
        "/admin/crm/importrun/add/",
        {"workspace": workspace.pk, "file": SimpleUploadedFile("a.csv", png), "policy": "update"},
    )
    assert resp.status_code == 200 and "its content is a PNG image" in resp.content.decode()
    assert not ImportRun.objects.exists()
