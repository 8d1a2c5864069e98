"""Contact pages: create, edit (typed and custom fields, tags, company), delete / GDPR erase with a
confirmation, merge from the detail page, and "all N matching" bulk actions. Each page: tenant isolation,
viewer read-only, query-count guard."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from aicmo.models import AuditEvent
from crm import services
from crm.models import Company, Contact, ErasedAddress, FieldType, ListMembership, Suppression
from tests.crm.factories import (
    CompanyFactory,
    ContactFactory,
    ContactListFactory,
    CustomFieldFactory,
    TagFactory,
)


def _form(**over):
    data = {
        "email": "Ada@Example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "title": "Analyst",
        "phone": "+44 20 7946 0000",
        "company_domain": "https://www.Acme.example/about",
        "tags": "vip, newsletter ,",
    }
    data.update(over)
    return data


def test_create_contact_with_typed_company_tags_and_custom_fields(client_for):
    client = client_for("marketer")
    CustomFieldFactory(workspace=client.workspace, key="seats", label="Seats", type=FieldType.NUMBER)
    CustomFieldFactory(workspace=client.workspace, key="renewal", label="Renewal", type=FieldType.DATE)
    CustomFieldFactory(workspace=client.workspace, key="trial", label="On trial", type=FieldType.BOOL)
    CustomFieldFactory(
        workspace=client.workspace, key="plan", label="Plan", type=FieldType.CHOICE, choices=["free", "pro"]
    )
    page = client.get("/crm/new/").content.decode()
    assert 'type="date"' in page and 'name="custom_seats"' in page and '<option value="pro">' in page
    assert 'for="id_custom_renewal"' in page  # every input has a label
    resp = client.post(
        "/crm/new/",
        _form(custom_seats="12", custom_renewal="2027-03-01", custom_trial="yes", custom_plan="pro"),
    )
    contact = Contact.objects.get(workspace=client.workspace)
    assert resp.status_code == 302 and resp["Location"] == f"/crm/contacts/{contact.pk}/"
    assert contact.email == "ada@example.com" and contact.company.domain == "acme.example"
    assert sorted(contact.tags.values_list("name", flat=True)) == ["newsletter", "vip"]
    assert contact.custom == {"seats": 12, "renewal": "2027-03-01", "trial": True, "plan": "pro"}
    assert "first_name" in contact.typed_fields and contact.provenance["title"]["source"] == "typed"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "not-an-email", "email"),
        ("custom_seats", "twelve", "Expected a number"),
        ("custom_plan", "enterprise", "Select a valid choice"),
        ("company_domain", "exa mple..com", "domain"),
        ("first_name", "A\x00da", "Null characters are not allowed"),
        ("title", "x" * 500, "at most"),
    ],
)
def test_bad_input_is_a_form_error_and_writes_nothing(client_for, field, value, message):
    client = client_for("marketer")
    CustomFieldFactory(workspace=client.workspace, key="seats", label="Seats", type=FieldType.NUMBER)
    CustomFieldFactory(
        workspace=client.workspace, key="plan", label="Plan", type=FieldType.CHOICE, choices=["free", "pro"]
    )
    resp = client.post("/crm/new/", _form(**{field: value}))
    assert resp.status_code == 400 and message in resp.content.decode()
    assert f'id="id_{field}_error"' in resp.content.decode()
    assert not Contact.objects.exists() and not Company.objects.exists()


def test_duplicate_and_erased_addresses_are_refused_on_the_email_field(client_for):
    client = client_for("marketer")
    ContactFactory(workspace=client.workspace, email="taken@example.com")
    gone = ContactFactory(workspace=client.workspace, email="gone@example.com")
    services.contact_erase(contact=gone)
    for email, text in (("TAKEN@example.com", "already exists"), ("gone@example.com", "erased on")):
        resp = client.post("/crm/new/", _form(email=email))
        assert resp.status_code == 400 and text in resp.content.decode()
    assert Contact.objects.count() == 2


def test_edit_prefills_and_saves_through_the_service(client_for, django_assert_max_num_queries):
    client = client_for("marketer")
    CustomFieldFactory(workspace=client.workspace, key="trial", label="On trial", type=FieldType.BOOL)
    company = CompanyFactory(workspace=client.workspace, domain="old.example")
    contact = ContactFactory(
        workspace=client.workspace, email="e@example.com", company=company, custom={"trial": False}
    )
    contact.tags.add(TagFactory(workspace=client.workspace, name="old"))
    with django_assert_max_num_queries(12):
        page = client.get(f"/crm/contacts/{contact.pk}/edit/").content.decode()
    assert 'value="old.example"' in page and 'value="old"' in page
    assert '<option value="no" selected>' in page
    resp = client.post(
        f"/crm/contacts/{contact.pk}/edit/",
        _form(email="e@example.com", company_domain="", tags="new", custom_trial=""),
    )
    assert resp.status_code == 302
    contact.refresh_from_db()
    assert contact.company is None and contact.first_name == "Ada" and contact.custom == {}
    assert list(contact.tags.values_list("name", flat=True)) == ["new"]


def test_delete_confirmation_says_what_happens_then_deletes(client_for):
    client = client_for("marketer")
    contact = ContactFactory(workspace=client.workspace, email="del@example.com")
    contact.tags.add(TagFactory(workspace=client.workspace))
    services.list_add_contacts(
        contact_list=ContactListFactory(workspace=client.workspace), contact_ids=[contact.pk]
    )
    page = client.get(f"/crm/contacts/{contact.pk}/delete/").content.decode()
    assert "1 tag," in page and "1 list membership," in page and "blocks the address" in page
    resp = client.post(f"/crm/contacts/{contact.pk}/delete/", {"action": "delete"})
    assert resp.status_code == 302 and resp["Location"] == "/crm/"
    assert not Contact.objects.exists() and not ListMembership.objects.exists()
    assert AuditEvent.objects.filter(verb="crm.contact.deleted").exists()


def test_erase_anonymises_and_blocks_the_address(client_for):
    client = client_for("marketer")
    contact = ContactFactory(workspace=client.workspace, email="forget@example.com", first_name="Forget")
    resp = client.post(f"/crm/contacts/{contact.pk}/delete/", {"action": "erase"})
    contact.refresh_from_db()
    assert resp.status_code == 302 and contact.erased_at is not None and contact.first_name == ""
    assert ErasedAddress.objects.filter(workspace=client.workspace).count() == 1
    assert Suppression.objects.filter(contact=contact).count() >= 1
    assert "Already erased" in client.get(f"/crm/contacts/{contact.pk}/delete/").content.decode()
    # An unknown action changes nothing.
    keep = ContactFactory(workspace=client.workspace)
    assert client.post(f"/crm/contacts/{keep.pk}/delete/", {"action": "bogus"}).status_code == 302
    assert Contact.objects.filter(pk=keep.pk).exists()


def test_merge_compares_then_folds_the_duplicate_in(client_for, django_assert_max_num_queries):
    client = client_for("marketer")
    primary = ContactFactory(workspace=client.workspace, email="p@example.com", title="")
    duplicate = ContactFactory(workspace=client.workspace, email="d@example.com", title="CTO")
    duplicate.tags.add(TagFactory(workspace=client.workspace, name="from-dup"))
    with django_assert_max_num_queries(10):
        page = client.get(f"/crm/contacts/{primary.pk}/merge/?other=D@Example.com").content.decode()
    assert "filled from duplicate" in page and f'name="other" value="{duplicate.pk}"' in page
    assert (
        "No contact with the email"
        in client.get(f"/crm/contacts/{primary.pk}/merge/?other=nobody@example.com").content.decode()
    )
    assert (
        "That is this contact"
        in client.get(f"/crm/contacts/{primary.pk}/merge/?other=p@example.com").content.decode()
    )
    resp = client.post(f"/crm/contacts/{primary.pk}/merge/", {"other": duplicate.pk})
    primary.refresh_from_db()
    assert resp.status_code == 302 and primary.title == "CTO"
    assert list(primary.tags.values_list("name", flat=True)) == ["from-dup"]
    assert not Contact.objects.filter(pk=duplicate.pk).exists()
    self_merge = client.post(f"/crm/contacts/{primary.pk}/merge/", {"other": primary.pk}, follow=True)
    assert "Pick two different contacts" in self_merge.content.decode()


def test_detail_page_offers_the_actions_to_writers_only(client_for):
    client = client_for("marketer")
    contact = ContactFactory(workspace=client.workspace)
    page = client.get(f"/crm/contacts/{contact.pk}/").content.decode()
    assert f"/crm/contacts/{contact.pk}/edit/" in page and f"/crm/contacts/{contact.pk}/delete/" in page
    assert 'href="/crm/new/"' in client.get("/crm/").content.decode()
    viewer = client_for("viewer")
    page = viewer.get(f"/crm/contacts/{contact.pk}/").content.decode()
    assert "/edit/" not in page and "/delete/" not in page
    assert 'href="/crm/new/"' not in viewer.get("/crm/").content.decode()


def test_viewer_cannot_write_through_any_contact_page(client_for):
    client = client_for("viewer")
    contact = ContactFactory(workspace=client.workspace, email="v@example.com")
    other = ContactFactory(workspace=client.workspace)
    assert client.post("/crm/new/", _form()).status_code == 403
    assert client.post(f"/crm/contacts/{contact.pk}/edit/", _form()).status_code == 403
    assert client.post(f"/crm/contacts/{contact.pk}/delete/", {"action": "erase"}).status_code == 403
    assert client.post(f"/crm/contacts/{contact.pk}/merge/", {"other": other.pk}).status_code == 403
    merge_page = client.get(f"/crm/contacts/{contact.pk}/merge/?other={other.email}").content.decode()
    assert "What merging does" in merge_page and f'name="other" value="{other.pk}"' not in merge_page
    assert 'value="delete"' not in client.get(f"/crm/contacts/{contact.pk}/delete/").content.decode()
    assert Contact.objects.count() == 2 and Contact.objects.get(pk=contact.pk).erased_at is None


def test_other_workspaces_contacts_are_404_everywhere(client_for, other_workspace):
    client = client_for("marketer")
    mine = ContactFactory(workspace=client.workspace, email="mine@example.com")
    theirs = ContactFactory(workspace=other_workspace, email="theirs@example.com")
    for url in (
        f"/crm/contacts/{theirs.pk}/edit/",
        f"/crm/contacts/{theirs.pk}/delete/",
        f"/crm/contacts/{theirs.pk}/merge/",
    ):
        assert client.get(url).status_code == 404
    assert client.post(f"/crm/contacts/{theirs.pk}/edit/", _form()).status_code == 404
    assert client.post(f"/crm/contacts/{theirs.pk}/delete/", {"action": "delete"}).status_code == 404
    assert client.post(f"/crm/contacts/{mine.pk}/merge/", {"other": theirs.pk}).status_code == 404
    assert client.post(f"/crm/contacts/{mine.pk}/merge/", {"other": "1" * 30}).status_code == 404
    # Looking up the duplicate by email never finds another workspace's contact.
    page = client.get(f"/crm/contacts/{mine.pk}/merge/?other=theirs@example.com").content.decode()
    assert "No contact with the email" in page
    # Creating an address that exists only in another workspace is fine here.
    assert client.post("/crm/new/", _form(email="theirs@example.com")).status_code == 302
    assert Contact.objects.filter(pk=theirs.pk, workspace=other_workspace).exists()


def test_select_all_matching_reaches_every_page_of_the_filter(client_for, other_workspace):
    client = client_for("marketer")
    tag = TagFactory(workspace=client.workspace, name="hot")
    hot = ContactFactory.create_batch(120, workspace=client.workspace)
    for c in hot:
        c.tags.add(tag)
    cold = ContactFactory.create_batch(5, workspace=client.workspace)
    ContactFactory.create_batch(3, workspace=other_workspace)
    target = ContactListFactory(workspace=client.workspace, name="Hot ones")
    page = client.get("/crm/?tag=hot").content.decode()
    assert "All 120 matching contacts" in page and 'name="query" value="tag=hot"' in page
    resp = client.post(
        "/crm/lists/members/",
        {"list": target.pk, "action": "add", "scope": "matching", "query": urlencode({"tag": "hot"})},
    )
    assert resp.status_code == 302
    members = set(ListMembership.objects.filter(contact_list=target).values_list("contact_id", flat=True))
    assert members == {c.pk for c in hot} and not members & {c.pk for c in cold}
    # Ticked mode ignores the query; a page of at most PAGE_SIZE shows no scope choice.
    client.post("/crm/lists/members/", {"list": target.pk, "action": "remove", "contact": [hot[0].pk]})
    assert ListMembership.objects.filter(contact_list=target).count() == 119
    assert "matching contacts" not in client.get("/crm/?tag=nobody").content.decode()


def test_select_all_matching_over_the_cap_says_so_and_writes_nothing(client_for, monkeypatch):
    from crm import views

    client = client_for("marketer")
    monkeypatch.setattr(views, "MAX_MATCHING", 3)
    ContactFactory.create_batch(4, workspace=client.workspace)
    target = ContactListFactory(workspace=client.workspace)
    resp = client.post(
        "/crm/lists/members/",
        {"list": target.pk, "action": "add", "scope": "matching", "query": ""},
        follow=True,
    )
    assert "More than 3 contacts match" in resp.content.decode()
    assert not ListMembership.objects.exists()


def test_select_all_matching_with_a_foreign_segment_is_404(client_for, other_workspace):
    from tests.crm.factories import SegmentFactory

    client = client_for("marketer")
    theirs = SegmentFactory(workspace=other_workspace)
    target = ContactListFactory(workspace=client.workspace)
    resp = client.post(
        "/crm/lists/members/",
        {"list": target.pk, "action": "add", "scope": "matching", "query": f"segment={theirs.pk}"},
    )
    assert resp.status_code == 404 and not ListMembership.objects.exists()


def test_contact_fields_have_human_labels_with_the_technical_name_on_hover(client_for):
    client = client_for("viewer")
    primary = ContactFactory(workspace=client.workspace, email="h1@example.com")
    other = ContactFactory(workspace=client.workspace, email="h2@example.com")
    for url in (f"/crm/contacts/{primary.pk}/", f"/crm/contacts/{primary.pk}/merge/?other={other.email}"):
        page = client.get(url).content.decode()
        assert '<span title="first_name">First name</span>' in page
        assert "<td>first_name</td>" not in page


def test_a_run_for_all_matching_contacts_takes_every_page(client_for, django_capture_on_commit_callbacks):
    from aicmo.models import Job

    client = client_for("marketer")
    tag = TagFactory(workspace=client.workspace, name="verify-me")
    wanted = ContactFactory.create_batch(60, workspace=client.workspace)
    for c in wanted:
        c.tags.add(tag)
    ContactFactory.create_batch(2, workspace=client.workspace)
    with django_capture_on_commit_callbacks(execute=False):  # the job row is what matters, not its lanes
        resp = client.post(
            "/crm/runs/start/", {"kind": "verification", "scope": "matching", "query": "tag=verify-me"}
        )
    job = Job.objects.get(workspace=client.workspace, kind="crm.verification")
    assert resp.status_code == 302 and resp["Location"] == f"/crm/runs/{job.pk}/"
    assert sorted(job.params["contact_ids"]) == sorted(c.pk for c in wanted)


def test_contact_filters_offer_words_not_dashes(client_for):
    page = client_for("viewer").get("/crm/").content.decode()
    assert ">Any verification</option>" in page and ">Any tier</option>" in page
    assert "---------" not in page
