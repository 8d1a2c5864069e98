"""Dashboard: static lists (create, add/remove ticked contacts) and enrichment/verification runs started for
a selection, a list or a segment, with the job's progress bar. Isolation, viewer read-only, query counts."""

from __future__ import annotations

from unittest import mock

import pytest

from aicmo.models import Job
from crm.models import ContactList, ListMembership
from tests.crm.factories import ContactFactory, ContactListFactory, SegmentFactory


def test_lists_page_creates_a_list_and_shows_sizes(client_for, django_assert_max_num_queries):
    client = client_for("marketer")
    resp = client.post("/crm/lists/", {"name": " Fair 2026 ", "description": "met at the fair"})
    assert resp.status_code == 302 and resp["Location"] == "/crm/lists/"
    fair = ContactList.objects.get(workspace=client.workspace)
    assert fair.name == "Fair 2026"
    dup = client.post("/crm/lists/", {"name": "Fair 2026"}, follow=True)
    assert b"already exists" in dup.content and ContactList.objects.count() == 1
    assert b"Give the list a name" in client.post("/crm/lists/", {"name": "  "}, follow=True).content
    for i in range(15):
        other = ContactListFactory(workspace=client.workspace, name=f"L{i}")
        ListMembership.objects.create(
            workspace=client.workspace, contact_list=other, contact=ContactFactory(workspace=client.workspace)
        )
    with django_assert_max_num_queries(8):
        page = client.get("/crm/lists/")
    assert page.status_code == 200 and b"Fair 2026" in page.content and b"?list=" in page.content


def test_tick_contacts_add_and_remove_from_list(client_for):
    client = client_for("marketer")
    contacts = ContactFactory.create_batch(3, workspace=client.workspace)
    fair = ContactListFactory(workspace=client.workspace, name="Fair")
    page = client.get("/crm/").content.decode()
    assert 'name="contact"' in page and "Add to list" in page and "Fair (0)" in page
    ids = [c.pk for c in contacts[:2]]
    resp = client.post(
        "/crm/lists/members/", {"list": fair.pk, "contact": ids, "action": "add", "next": "/crm/?q=x"}
    )
    assert resp.status_code == 302 and resp["Location"] == "/crm/?q=x"
    assert set(fair.memberships.values_list("contact_id", flat=True)) == set(ids)
    listed = client.get(f"/crm/?list={fair.pk}").content.decode()
    assert "list “Fair”" in listed and listed.count("/crm/contacts/") == 2
    client.post("/crm/lists/members/", {"list": fair.pk, "contact": [ids[0]], "action": "remove"})
    assert list(fair.memberships.values_list("contact_id", flat=True)) == [ids[1]]
    # an unsafe `next` falls back to the contact list
    resp = client.post(
        "/crm/lists/members/", {"list": fair.pk, "contact": ids, "next": "https://evil.example/"}
    )
    assert resp["Location"] == "/crm/"
    assert (
        b"Tick at least one contact"
        in client.post("/crm/lists/members/", {"list": fair.pk}, follow=True).content
    )


@pytest.fixture
def no_enqueue():
    """Runs are enqueued on commit; here only the Job and its ids matter (lanes are tested elsewhere)."""
    with mock.patch("crm.tasks.contact_run_lane_task.delay") as delay:
        yield delay


def test_start_runs_for_selection_list_and_segment(
    client_for, no_enqueue, django_capture_on_commit_callbacks
):
    client = client_for("marketer")
    a, b, c = ContactFactory.create_batch(3, workspace=client.workspace)
    fair = ContactListFactory(workspace=client.workspace)
    ListMembership.objects.create(workspace=client.workspace, contact_list=fair, contact=c)
    segment = SegmentFactory(workspace=client.workspace)  # lifecycle = new: all three

    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post("/crm/runs/start/", {"kind": "enrichment", "contact": [a.pk, b.pk]})
    job = Job.objects.get(workspace=client.workspace)
    assert resp.status_code == 302 and resp["Location"] == f"/crm/runs/{job.pk}/"
    assert job.kind == "crm.enrichment" and job.params["contact_ids"] == [a.pk, b.pk] and job.total == 2
    assert no_enqueue.called
    page = client.get(resp["Location"]).content.decode()
    assert 'class="job-progress"' in page and f"/jobs/{job.pk}/progress/" in page

    client.post("/crm/runs/start/", {"kind": "verification", "list": fair.pk})
    job = Job.objects.filter(workspace=client.workspace).latest("pk")
    assert job.kind == "crm.verification" and job.params["contact_ids"] == [c.pk]

    client.post("/crm/runs/start/", {"kind": "enrichment", "segment": segment.pk})
    job = Job.objects.filter(workspace=client.workspace).latest("pk")
    assert job.params["contact_ids"] == sorted([a.pk, b.pk, c.pk])

    runs = client.get("/crm/runs/").content.decode()
    assert runs.count('class="job-progress"') == 3
    # the buttons are on the pages a marketer works from
    assert 'name="segment"' in client.get(f"/crm/?segment={segment.pk}").content.decode()
    assert 'value="enrichment"' in client.get("/crm/segments/").content.decode()
    assert 'value="verification"' in client.get("/crm/lists/").content.decode()


def test_run_start_form_errors(client_for, no_enqueue):
    client = client_for("marketer")
    ContactFactory(workspace=client.workspace)
    assert (
        b"Choose enrichment or verification"
        in client.post("/crm/runs/start/", {"kind": "nope"}, follow=True).content
    )
    assert (
        b"Tick at least one contact"
        in client.post("/crm/runs/start/", {"kind": "enrichment"}, follow=True).content
    )
    assert not Job.objects.exists()


@pytest.mark.parametrize("value", ["abc", "²", "99999999999999999999999", "9" * 5000, "-1", ""])
def test_junk_ids_in_posts_are_404(client_for, value, no_enqueue):
    client = client_for("marketer")
    fair = ContactListFactory(workspace=client.workspace)
    contact = ContactFactory(workspace=client.workspace)
    if value:
        assert client.post("/crm/lists/members/", {"list": value, "contact": contact.pk}).status_code == 404
        assert client.post("/crm/runs/start/", {"kind": "enrichment", "list": value}).status_code == 404
        assert client.post("/crm/runs/start/", {"kind": "enrichment", "segment": value}).status_code == 404
    assert (
        client.post("/crm/lists/members/", {"list": fair.pk, "contact": [contact.pk, value]}).status_code
        == 404
    )
    assert client.post("/crm/runs/start/", {"kind": "enrichment", "contact": [value]}).status_code == 404
    assert not Job.objects.exists() and not fair.memberships.exists()


def test_other_workspace_ids_are_404(client_for, other_workspace, no_enqueue):
    client = client_for("admin")
    mine = ContactFactory(workspace=client.workspace)
    my_list = ContactListFactory(workspace=client.workspace)
    theirs = ContactFactory(workspace=other_workspace)
    their_list = ContactListFactory(workspace=other_workspace, name="Globex secret list")
    their_segment = SegmentFactory(workspace=other_workspace)
    their_job = Job.objects.create(workspace=other_workspace, kind="crm.enrichment", label="theirs")
    assert client.post("/crm/lists/members/", {"list": their_list.pk, "contact": mine.pk}).status_code == 404
    assert client.post("/crm/lists/members/", {"list": my_list.pk, "contact": theirs.pk}).status_code == 404
    assert client.post("/crm/runs/start/", {"kind": "enrichment", "contact": theirs.pk}).status_code == 404
    assert client.post("/crm/runs/start/", {"kind": "enrichment", "list": their_list.pk}).status_code == 404
    assert (
        client.post("/crm/runs/start/", {"kind": "enrichment", "segment": their_segment.pk}).status_code
        == 404
    )
    assert client.get(f"/crm/runs/{their_job.pk}/").status_code == 404
    assert client.get(f"/crm/?list={their_list.pk}").content.count(b"/crm/contacts/") == 0
    assert b"theirs" not in client.get("/crm/runs/").content
    assert b"Globex secret list" not in client.get("/crm/lists/").content
    assert b"Globex secret list" not in client.get("/crm/").content  # nor in the list picker
    assert not ListMembership.objects.exists() and not Job.objects.filter(workspace=client.workspace).exists()


def test_a_non_run_job_is_not_a_run_page(client_for):
    client = client_for("marketer")
    job = Job.objects.create(workspace=client.workspace, kind="crm.import")
    assert client.get(f"/crm/runs/{job.pk}/").status_code == 404


def test_viewer_sees_but_cannot_post(client_for, no_enqueue):
    client = client_for("viewer")
    contact = ContactFactory(workspace=client.workspace)
    fair = ContactListFactory(workspace=client.workspace)
    assert client.get("/crm/lists/").status_code == 200 and client.get("/crm/runs/").status_code == 200
    page = client.get("/crm/").content.decode()
    assert 'name="contact"' not in page and "Add to list" not in page
    assert client.post("/crm/lists/", {"name": "x"}).status_code == 403
    assert client.post("/crm/lists/members/", {"list": fair.pk, "contact": contact.pk}).status_code == 403
    assert client.post("/crm/runs/start/", {"kind": "enrichment", "contact": contact.pk}).status_code == 403
    assert not Job.objects.exists() and ContactList.objects.count() == 1 and not fair.memberships.exists()


def test_runs_page_query_count_is_flat(client_for, django_assert_max_num_queries):
    client = client_for("marketer")
    for i in range(12):
        Job.objects.create(workspace=client.workspace, kind="crm.verification", label=f"run {i}", total=3)
    with django_assert_max_num_queries(8):
        page = client.get("/crm/runs/")
    assert page.content.decode().count('class="job-progress"') == 12


def test_a_dashboard_run_over_the_size_limit_says_so_and_starts_nothing(client_for, monkeypatch, no_enqueue):
    from crm import services

    client = client_for("marketer")
    monkeypatch.setattr(services.runs, "MAX_RUN_CONTACTS", 2)
    contacts = ContactFactory.create_batch(3, workspace=client.workspace)
    lst = ContactListFactory(workspace=client.workspace)
    services.list_add_contacts(contact_list=lst, contact_ids=[c.pk for c in contacts])
    page = client.post("/crm/runs/start/", {"kind": "verification", "list": lst.pk}, follow=True)
    assert b"A run takes at most 2 contacts" in page.content
    assert not Job.objects.exists()
