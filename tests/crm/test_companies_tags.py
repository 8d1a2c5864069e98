"""Companies and tags through services (create, rename, merge, delete with dependents), audited, from the
API and admin alike; tenant isolation of the new endpoints."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from aicmo.models import AuditEvent
from crm import services
from crm.models import Company, Contact, Segment, Tag
from crm.normalize import DOMAIN_MAX_LENGTH, normalize_domain, placeholder_domain
from tests.crm.factories import CompanyFactory, ContactFactory, TagFactory

BASE = "/api/v1/crm"


def verbs(ws):
    return list(AuditEvent.objects.filter(workspace=ws).order_by("pk").values_list("verb", flat=True))


def test_company_create_update_merge_delete(workspace):
    acme = services.company_create(workspace=workspace, domain="https://www.Acme.io/about", name="Acme")
    assert acme.domain == "acme.io"
    with pytest.raises(ValidationError) as exc:
        services.company_create(workspace=workspace, domain="acme.io")
    assert "domain" in exc.value.message_dict
    dup = services.company_create(workspace=workspace, domain="acme-inc.io")
    ContactFactory.create_batch(3, workspace=workspace, company=dup)
    ContactFactory(workspace=workspace, company=acme)
    services.company_update(company=acme, name="Acme Corp")
    assert services.company_merge(primary=acme, duplicate=dup) == {"moved_contacts": 3}
    assert not Company.objects.filter(pk=dup.pk).exists()
    assert Contact.objects.filter(company=acme).count() == 4
    assert services.company_delete(company=acme) == {"contacts": 4}
    assert Contact.objects.for_workspace(workspace).filter(company__isnull=True).count() == 4
    assert verbs(workspace) == [
        "crm.company.created",
        "crm.company.created",
        "crm.company.updated",
        "crm.company.merged",
        "crm.company.deleted",
    ]


def test_company_merge_refuses_other_workspace(workspace, other_workspace):
    with pytest.raises(ValidationError):
        services.company_merge(
            primary=CompanyFactory(workspace=workspace), duplicate=CompanyFactory(workspace=other_workspace)
        )


def test_tag_rename_follows_segments_and_delete_marks_them(workspace):
    tag = services.tag_create(workspace=workspace, name="vip")
    c = ContactFactory(workspace=workspace)
    services.contacts_tag(workspace=workspace, contact_ids=[c.pk], names=["vip"])
    rules = {"op": "and", "rules": [{"field": "tags", "operator": "has_tag", "value": ["vip", "other"]}]}
    seg = services.segment_save(workspace=workspace, name="VIPs", rules=rules)
    services.tag_rename(tag=tag, name="gold")
    seg.refresh_from_db()
    assert seg.rules["rules"][0]["value"] == ["gold", "other"]
    assert services.tag_dependents(tag) == {"contacts": 1, "segments": ["VIPs"]}
    assert services.tag_delete(tag=tag) == {"contacts": 1, "segments": ["VIPs"]}
    seg.refresh_from_db()
    assert "tag 'gold' was deleted" in seg.broken_reason
    assert verbs(workspace) == ["crm.tag.created", "crm.tag.renamed", "crm.tag.deleted"]
    with pytest.raises(ValidationError):
        services.tag_create(workspace=workspace, name=" ")


def test_api_companies_and_tags_use_services(api_client_for):
    client = api_client_for("marketer")
    ws = client.workspace
    resp = client.post(f"{BASE}/companies/", {"domain": "WWW.Beta.com", "name": "Beta"}, format="json")
    assert resp.status_code == 201 and resp.json()["domain"] == "beta.com"
    assert client.post(f"{BASE}/companies/", {"domain": "beta.com"}, format="json").status_code == 409
    beta = resp.json()["id"]
    other = client.post(f"{BASE}/companies/", {"domain": "beta.io"}, format="json").json()["id"]
    ContactFactory(workspace=ws, company_id=other)
    resp = client.post(f"{BASE}/companies/{beta}/merge/", {"duplicate": other}, format="json")
    assert resp.status_code == 200 and resp.json()["moved_contacts"] == 1
    assert client.get(f"{BASE}/companies/{beta}/dependents/").json() == {"contacts": 1}
    resp = client.patch(f"{BASE}/companies/{beta}/", {"name": "Beta Inc"}, format="json")
    assert resp.status_code == 200 and resp.json()["name"] == "Beta Inc"
    assert client.delete(f"{BASE}/companies/{beta}/").json() == {"deleted": True, "contacts": 1}

    tag = client.post(f"{BASE}/tags/", {"name": " news "}, format="json").json()
    assert tag["name"] == "news"
    assert client.post(f"{BASE}/tags/", {"name": "news"}, format="json").status_code == 409
    resp = client.patch(f"{BASE}/tags/{tag['id']}/", {"name": "letters"}, format="json")
    assert resp.status_code == 200 and resp.json()["name"] == "letters"
    assert client.get(f"{BASE}/tags/{tag['id']}/dependents/").json() == {"contacts": 0, "segments": []}
    assert client.delete(f"{BASE}/tags/{tag['id']}/").status_code == 200
    assert set(verbs(ws)) >= {
        "crm.company.created",
        "crm.company.merged",
        "crm.company.updated",
        "crm.company.deleted",
        "crm.tag.created",
        "crm.tag.renamed",
        "crm.tag.deleted",
    }


def test_api_company_and_tag_tenant_isolation(api_client_for, other_workspace):
    client = api_client_for("marketer")
    theirs = CompanyFactory(workspace=other_workspace)
    mine = CompanyFactory(workspace=client.workspace)
    their_tag = TagFactory(workspace=other_workspace)
    assert client.get(f"{BASE}/companies/{theirs.pk}/dependents/").status_code == 404
    assert (
        client.post(f"{BASE}/companies/{theirs.pk}/merge/", {"duplicate": mine.pk}, format="json").status_code
        == 404
    )
    resp = client.post(f"{BASE}/companies/{mine.pk}/merge/", {"duplicate": theirs.pk}, format="json")
    assert resp.status_code == 404 and Company.objects.filter(pk=theirs.pk).exists()
    assert client.delete(f"{BASE}/tags/{their_tag.pk}/").status_code == 404
    assert client.get(f"{BASE}/tags/{their_tag.pk}/dependents/").status_code == 404
    assert Tag.objects.filter(pk=their_tag.pk).exists()


def test_admin_company_and_tag_writes_are_audited(staff_client, workspace):
    resp = staff_client.post(
        "/admin/crm/company/add/", {"workspace": workspace.pk, "domain": "Gamma.io", "name": "G"}
    )
    assert resp.status_code == 302
    gamma = Company.objects.get(workspace=workspace)
    assert gamma.domain == "gamma.io"
    other = CompanyFactory(workspace=workspace)
    ContactFactory(workspace=workspace, company=other)
    resp = staff_client.post(
        "/admin/crm/company/",
        {"action": "merge", "_selected_action": [gamma.pk, other.pk]},
        follow=True,
    )
    assert "1 contacts moved" in resp.content.decode()
    tag = TagFactory(workspace=workspace, name="old")
    staff_client.post(f"/admin/crm/tag/{tag.pk}/change/", {"workspace": workspace.pk, "name": "new"})
    tag.refresh_from_db()
    assert tag.name == "new"
    staff_client.post(f"/admin/crm/tag/{tag.pk}/delete/", {"post": "yes"})
    assert not Tag.objects.filter(pk=tag.pk).exists()
    assert verbs(workspace) == [
        "crm.company.created",
        "crm.company.merged",
        "crm.tag.renamed",
        "crm.tag.deleted",
    ]
    assert not Segment.objects.exists()


def test_admin_refusal_is_a_form_error_and_nothing_is_written(staff_client, workspace):
    CompanyFactory(workspace=workspace, domain="gamma.io")
    resp = staff_client.post("/admin/crm/company/add/", {"workspace": workspace.pk, "domain": "WWW.Gamma.io"})
    assert resp.status_code == 200  # the form again, not "added successfully"
    assert resp.context["adminform"].form.errors["domain"] == ["A company with this domain already exists."]
    assert Company.objects.count() == 1 and not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://www.Acme.io/about?x=1#top", "acme.io"),
        ("HTTP://WWW.xn--bckerei-5wa.example:8080/", "bäckerei.example"),
        ("Straße.de.", "straße.de"),  # IDNA 2008: ß is its own letter
    ],
)
def test_a_domain_is_reduced_to_its_idna_host_name(workspace, given, stored):
    assert services.company_create(workspace=workspace, domain=given).domain == stored


@pytest.mark.parametrize(
    "given", ["acme_inc.com", "-acme.com", "a..b", "exa mple.com", "", "x" * 64 + ".com", "İ" * 200 + ".com"]
)
def test_a_domain_that_is_no_host_name_is_refused(workspace, api_client_for, given):
    """The one check (crm.normalize.domain_clean) the importer uses too; a lower-cased domain longer than the
    column (``İ`` lower-cases to two characters) is a 400, not a database error."""
    with pytest.raises(ValidationError) as exc:
        services.company_create(workspace=workspace, domain=given)
    assert list(exc.value.message_dict) == ["domain"]
    client = api_client_for(role="marketer")
    resp = client.post(f"{BASE}/companies/", {"domain": given}, format="json")
    assert resp.status_code == 400 and list(resp.json()["error"]["fields"]) == ["domain"]
    assert not Company.objects.exists()


def test_a_domain_longer_than_the_column_is_a_400(api_client_for):
    client = api_client_for(role="marketer")
    resp = client.post(f"{BASE}/companies/", {"domain": "a" * 60 + "." + "b" * 200 + ".com"}, format="json")
    assert resp.status_code == 400 and "domain" in resp.json()["error"]["fields"]


def test_renaming_keeps_an_older_looser_domain(workspace):
    company = CompanyFactory(workspace=workspace, domain="acme&co.unknown")
    assert services.company_update(company=company, name="Acme & Co").domain == "acme&co.unknown"
    with pytest.raises(ValidationError):
        services.company_update(company=company, domain="acme&co.unknown2")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("company_domain", "a" * 300 + ".com"),
        ("company_domain", "İ" * 200 + ".com"),
        ("company_domain", "acme_inc"),
        ("company_name", "n" * 201),
    ],
)
def test_a_contacts_company_that_does_not_fit_is_a_400(api_client_for, field, value):
    """A contact write names its company by the same rules as a company write: on PostgreSQL a domain or name
    longer than its column was a database error (500)."""
    client = api_client_for(role="marketer")
    resp = client.post("/api/v1/crm/contacts/", {"email": "ann@example.com", field: value}, format="json")
    assert resp.status_code == 400 and list(resp.json()["error"]["fields"]) == [field]
    assert not Company.objects.exists() and not Contact.objects.exists()
    made = client.post(
        "/api/v1/crm/contacts/", {"email": "ann@example.com", "company_domain": "https://www.Acme.io/x"}
    )
    assert made.status_code == 201 and made.json()["company"]["domain"] == "acme.io"


PLACEHOLDER_NAMES = [
    "Acme Corp",
    "acme corp",
    "Bäckerei Müller",
    "株式会社トヨタ",
    "A/B Testing? #1",
    "www.example",
    "Wwwings",
    "https://acme.example/path",
    "!!!",
    "🚀🚀",
    "x" * 200,
    "x" * 199 + "y",
    "Acme\u200bCorp",
]


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_a_placeholder_domain_fits_the_column_and_survives_normalizing(name):
    domain = placeholder_domain(name)
    assert domain.endswith(".unknown") and len(domain) <= DOMAIN_MAX_LENGTH
    assert normalize_domain(domain) == domain  # nothing company_get_or_create would cut or change


def test_placeholder_domains_keep_distinct_names_apart_and_one_name_together():
    keys = {name: placeholder_domain(name) for name in PLACEHOLDER_NAMES}
    assert keys["Acme Corp"] == keys["acme corp"] == "acme-corp.unknown"
    assert keys["Bäckerei Müller"] == "bäckerei-müller.unknown"
    assert keys["A/B Testing? #1"] == "ab-testing-1.unknown"
    assert len({keys[n] for n in PLACEHOLDER_NAMES if n != "acme corp"}) == len(PLACEHOLDER_NAMES) - 1


def test_a_name_from_the_api_an_import_or_an_enrichment_is_one_company(workspace, api_client_for):
    """One key rule on every path: before, the API keyed "Acme Corp" as acmecorp.unknown and imports as
    acme-corp.unknown (two companies), imports keyed every non-Latin name as ".unknown" (one company for
    all of them), and a long name from a provider overflowed the column."""
    from crm.importing import import_create, import_execute
    from crm.services.enrichment import enrichment_apply

    api = api_client_for("marketer")
    for email, company in (("a@x.example", "Acme Corp"), ("j@x.example", "株式会社トヨタ")):
        resp = api.post("/api/v1/crm/contacts/", {"email": email, "company_name": company}, format="json")
        assert resp.status_code == 201, resp.content
    content = "Email,Company\nb@x.example,Acme Corp\nk@x.example,株式会社トヨタ\nl@x.example,현대자동차\n"
    run = import_create(workspace=workspace, fh=io.BytesIO(content.encode()), name="c.csv", enqueue=False)
    import_execute(run_id=run.pk)
    contact = ContactFactory(workspace=workspace, email="c@x.example")
    enrichment_apply(contact=contact, provider="test", fields={"company": "Acme Corp"})
    long_name = "Very Long Holdings " * 20
    other = ContactFactory(workspace=workspace, email="d@x.example")
    enrichment_apply(contact=other, provider="test", fields={"company": long_name})
    by_email = {
        c.email: c.company for c in Contact.objects.filter(workspace=workspace).select_related("company")
    }
    assert by_email["a@x.example"] == by_email["b@x.example"] == by_email["c@x.example"]
    assert by_email["j@x.example"] == by_email["k@x.example"] != by_email["l@x.example"]
    assert by_email["d@x.example"].name == long_name.strip()[:200]
    assert len(by_email["d@x.example"].domain) <= DOMAIN_MAX_LENGTH


def test_the_migration_rekeys_old_placeholders_where_the_key_is_free(workspace):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("crm.migrations.0003_company_placeholder_domains")
    old = CompanyFactory(workspace=workspace, name="Acme Corp", domain="acmecorp.unknown")
    taken = CompanyFactory(workspace=workspace, name="Beta Inc", domain="betainc.unknown")
    holder = CompanyFactory(workspace=workspace, name="Beta Inc", domain="beta-inc.unknown")
    real = CompanyFactory(workspace=workspace, name="Gamma", domain="gamma.example")
    migration.rekey(apps, None)
    domains = {c.pk: c.domain for c in Company.objects.filter(workspace=workspace)}
    assert domains[old.pk] == placeholder_domain("Acme Corp") == "acme-corp.unknown"
    assert (domains[taken.pk], domains[holder.pk]) == ("betainc.unknown", "beta-inc.unknown")
    assert domains[real.pk] == "gamma.example"
