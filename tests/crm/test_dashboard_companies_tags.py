"""Company and tag pages: list, detail with dependents, edit/rename, merge, delete through the services;
tenant isolation, viewer read-only, query-count guards."""

from __future__ import annotations

import re

import pytest

from crm.models import Company, Contact, Segment, Tag
from tests.crm.factories import CompanyFactory, ContactFactory, SegmentFactory, TagFactory

TAG_RULES = {"op": "and", "rules": [{"field": "tags", "operator": "has_tag", "value": "vip"}]}


def test_company_list_counts_contacts_and_searches(client_for, django_assert_max_num_queries):
    client = client_for("viewer")
    acme = CompanyFactory(workspace=client.workspace, domain="acme.example", name="Acme")
    ContactFactory.create_batch(3, workspace=client.workspace, company=acme)
    for _ in range(30):
        ContactFactory(workspace=client.workspace, company=CompanyFactory(workspace=client.workspace))
    with django_assert_max_num_queries(8):
        page = client.get("/crm/companies/").content.decode()
    assert (
        len(re.findall(r'href="/crm/companies/\d+/"', page)) == 31 and '?company=acme.example">3</a>' in page
    )
    found = client.get("/crm/companies/?q=ACME").content.decode()
    assert len(re.findall(r'href="/crm/companies/\d+/"', found)) == 1


def test_company_create_edit_merge_delete(client_for):
    client = client_for("marketer")
    resp = client.post("/crm/companies/", {"domain": "https://www.Globex.example/x", "name": "Globex"})
    globex = Company.objects.get(workspace=client.workspace)
    assert resp["Location"] == f"/crm/companies/{globex.pk}/" and globex.domain == "globex.example"
    bad = client.post("/crm/companies/", {"domain": "globex.example"}, follow=True).content.decode()
    assert "already exists" in bad and Company.objects.count() == 1
    client.post(
        f"/crm/companies/{globex.pk}/", {"action": "save", "name": "Globex Corp", "domain": "globex.example"}
    )
    globex.refresh_from_db()
    assert globex.name == "Globex Corp"
    dup = CompanyFactory(workspace=client.workspace, domain="globex-old.example")
    moved = ContactFactory.create_batch(2, workspace=client.workspace, company=dup)
    page = client.post(
        f"/crm/companies/{globex.pk}/", {"action": "merge", "other": "GLOBEX-old.example"}, follow=True
    ).content.decode()
    assert "2 contacts moved over" in page and not Company.objects.filter(pk=dup.pk).exists()
    assert set(Contact.objects.filter(company=globex).values_list("pk", flat=True)) == {c.pk for c in moved}
    assert (
        "No company with the domain"
        in client.post(
            f"/crm/companies/{globex.pk}/", {"action": "merge", "other": "nope.example"}, follow=True
        ).content.decode()
    )
    assert (
        "Pick two different companies"
        in client.post(
            f"/crm/companies/{globex.pk}/", {"action": "merge", "other": "globex.example"}, follow=True
        ).content.decode()
    )
    detail = client.get(f"/crm/companies/{globex.pk}/").content.decode()
    assert "2 contacts stay in the CRM without a company" in detail
    client.post(f"/crm/companies/{globex.pk}/", {"action": "delete"})
    assert not Company.objects.exists() and Contact.objects.filter(company__isnull=True).count() == 2


@pytest.mark.parametrize("domain", ["", "not a domain", "x" * 300, "a\x00b.example"])
def test_bad_company_domains_are_form_errors(client_for, domain):
    client = client_for("marketer")
    company = CompanyFactory(workspace=client.workspace, domain="keep.example")
    resp = client.post(f"/crm/companies/{company.pk}/", {"action": "save", "domain": domain, "name": ""})
    assert resp.status_code == 302
    company.refresh_from_db()
    assert company.domain == "keep.example"
    assert client.post("/crm/companies/", {"domain": domain}).status_code == 302
    assert Company.objects.count() == 1


def test_company_detail_query_count_is_flat(client_for, django_assert_max_num_queries):
    client = client_for("viewer")
    company = CompanyFactory(workspace=client.workspace)
    ContactFactory.create_batch(60, workspace=client.workspace, company=company)
    with django_assert_max_num_queries(10):
        page = client.get(f"/crm/companies/{company.pk}/").content.decode()
    assert page.count('href="/crm/contacts/') == 50 and "All 60 contacts" in page


def test_tag_pages_show_dependents_rename_and_delete(client_for, django_assert_max_num_queries):
    client = client_for("marketer")
    vip = TagFactory(workspace=client.workspace, name="vip")
    for c in ContactFactory.create_batch(2, workspace=client.workspace):
        c.tags.add(vip)
    segment = SegmentFactory(workspace=client.workspace, name="VIPs", rules=TAG_RULES)
    with django_assert_max_num_queries(8):
        listing = client.get("/crm/tags/").content.decode()
    assert f'href="/crm/tags/{vip.pk}/"' in listing and '?tag=vip">2</a>' in listing
    detail = client.get(f"/crm/tags/{vip.pk}/").content.decode()
    assert "2 contacts</a> carry it" in detail and "naming it: VIPs." in detail
    client.post(f"/crm/tags/{vip.pk}/", {"action": "rename", "name": "gold"})
    vip.refresh_from_db()
    segment.refresh_from_db()
    assert vip.name == "gold" and segment.rules["rules"][0]["value"] == "gold"
    TagFactory(workspace=client.workspace, name="taken")
    page = client.post(f"/crm/tags/{vip.pk}/", {"action": "rename", "name": "taken"}, follow=True)
    assert "already exists" in page.content.decode()
    page = client.post(f"/crm/tags/{vip.pk}/", {"action": "delete"}, follow=True).content.decode()
    assert "removed from 2 contacts" in page and "segments marked broken: VIPs" in page
    segment.refresh_from_db()
    assert not Tag.objects.filter(pk=vip.pk).exists() and segment.broken_reason
    client.post("/crm/tags/", {"name": "  fresh "})
    assert Tag.objects.filter(workspace=client.workspace, name="fresh").exists()
    assert "Give a tag name" in client.post("/crm/tags/", {"name": ""}, follow=True).content.decode()


def test_viewer_reads_but_cannot_change_companies_or_tags(client_for):
    client = client_for("viewer")
    company = CompanyFactory(workspace=client.workspace, domain="ro.example")
    tag = TagFactory(workspace=client.workspace, name="ro")
    assert 'value="delete"' not in client.get(f"/crm/companies/{company.pk}/").content.decode()
    assert 'value="delete"' not in client.get(f"/crm/tags/{tag.pk}/").content.decode()
    assert 'aria-label="New company"' not in client.get("/crm/companies/").content.decode()
    assert client.post("/crm/companies/", {"domain": "new.example"}).status_code == 403
    assert client.post(f"/crm/companies/{company.pk}/", {"action": "delete"}).status_code == 403
    assert client.post("/crm/tags/", {"name": "new"}).status_code == 403
    assert client.post(f"/crm/tags/{tag.pk}/", {"action": "delete"}).status_code == 403
    assert Company.objects.count() == 1 and Tag.objects.count() == 1


def test_other_workspaces_companies_and_tags_are_invisible(client_for, other_workspace):
    client = client_for("admin")
    theirs = CompanyFactory(workspace=other_workspace, domain="theirs.example", name="Their secret")
    their_tag = TagFactory(workspace=other_workspace, name="their-secret-tag")
    mine = CompanyFactory(workspace=client.workspace, domain="mine.example")
    ContactFactory(workspace=other_workspace, company=theirs)
    assert "Their secret" not in client.get("/crm/companies/").content.decode()
    assert "their-secret-tag" not in client.get("/crm/tags/").content.decode()
    for url in (f"/crm/companies/{theirs.pk}/", f"/crm/tags/{their_tag.pk}/"):
        assert client.get(url).status_code == 404
        assert client.post(url, {"action": "delete"}).status_code == 404
    # Merging by domain only finds this workspace's companies.
    page = client.post(
        f"/crm/companies/{mine.pk}/", {"action": "merge", "other": "theirs.example"}, follow=True
    )
    assert "No company with the domain" in page.content.decode()
    assert Company.objects.filter(pk=theirs.pk).exists() and Tag.objects.filter(pk=their_tag.pk).exists()
    assert not Segment.objects.exists()
