"""CRM API: CRUD, bulk upsert, segments, lists, imports, enrichment runs, GDPR, tenant isolation, roles."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from aicmo.models import Job
from crm import services
from crm.models import Contact, ImportRun
from tests.crm.factories import (
    CompanyFactory,
    ContactFactory,
    ContactListFactory,
    CustomFieldFactory,
    SegmentFactory,
    TagFactory,
)

BASE = "/api/v1/crm"


def test_contact_crud(api_client_for):
    client = api_client_for("marketer")
    resp = client.post(
        f"{BASE}/contacts/",
        {
            "email": " New@Ex.com",
            "first_name": "New",
            "company_name": "Acme",
            "company_domain": "acme.io",
            "tags": ["a", "b"],
        },
    )
    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert (
        body["email"] == "new@ex.com"
        and body["company"]["domain"] == "acme.io"
        and body["tags"] == ["a", "b"]
    )
    assert body["provenance"]["first_name"]["source"] == "typed"
    dup = client.post(f"{BASE}/contacts/", {"email": "NEW@ex.com"})
    assert dup.status_code == 409 and "email" in dup.json()["error"]["fields"]
    pk = body["id"]
    resp = client.patch(f"{BASE}/contacts/{pk}/", {"title": "CEO"})
    assert resp.status_code == 200 and resp.json()["title"] == "CEO"
    assert client.get(f"{BASE}/contacts/?q=new").json()["count"] == 1
    assert client.delete(f"{BASE}/contacts/{pk}/").status_code == 204
    assert not Contact.objects.filter(pk=pk).exists()


def test_bulk_upsert_per_item_results(api_client_for):
    client = api_client_for("marketer")
    ContactFactory(workspace=client.workspace, email="old@ex.com", first_name="Old")
    items = [
        {"email": "old@ex.com", "first_name": "Renamed"},
        {"email": "bad"},
        {"email": "n@ex.com"},
        {"email": "N@ex.com", "title": "Dup"},
    ]
    # an item that is not an object breaks the schema's types: the whole batch is a 400, nothing written
    wrong_type = client.post(f"{BASE}/contacts/bulk/", {"contacts": [*items, "garbage"]}, format="json")
    assert wrong_type.status_code == 400 and list(wrong_type.json()["error"]["fields"]) == ["contacts[4]"]
    assert Contact.objects.get(workspace=client.workspace, email="old@ex.com").first_name == "Old"
    resp = client.post(f"{BASE}/contacts/bulk/", {"contacts": items}, format="json")
    assert resp.status_code == 200
    statuses = [r["status"] for r in resp.json()["results"]]
    assert statuses == ["updated", "error", "created", "updated"]
    assert resp.json()["results"][1]["errors"]["email"]
    assert Contact.objects.get(workspace=client.workspace, email="old@ex.com").first_name == "Renamed"
    assert Contact.objects.get(workspace=client.workspace, email="n@ex.com").title == "Dup"
    too_many = client.post(
        f"{BASE}/contacts/bulk/", {"contacts": [{"email": "x@ex.com"}] * 1001}, format="json"
    )
    assert too_many.status_code == 400


def test_contacts_list_query_count_is_flat(api_client_for, django_assert_max_num_queries):
    client = api_client_for("viewer")
    company = CompanyFactory(workspace=client.workspace)
    tag = TagFactory(workspace=client.workspace)
    for c in ContactFactory.create_batch(60, workspace=client.workspace, company=company):
        c.tags.add(tag)
    ContactFactory.create_batch(10, workspace=client.workspace)  # untagged rows cost nothing extra either
    with django_assert_max_num_queries(8):
        small = client.get(f"{BASE}/contacts/?page_size=5")
    with django_assert_max_num_queries(8):
        big = client.get(f"{BASE}/contacts/?page_size=70")
    assert len(small.json()["results"]) == 5 and len(big.json()["results"]) == 70
    assert sorted(len(r["tags"]) for r in big.json()["results"]) == [0] * 10 + [1] * 60


def test_segments_count_preview_and_validation(api_client_for):
    client = api_client_for("marketer")
    ContactFactory(workspace=client.workspace, engagement_score=90)
    ContactFactory(workspace=client.workspace, engagement_score=10)
    rules = {"op": "and", "rules": [{"field": "score", "operator": "gte", "value": 50}]}
    resp = client.post(f"{BASE}/segments/", {"name": "Hot", "rules": rules}, format="json")
    assert resp.status_code == 201
    pk = resp.json()["id"]
    assert client.get(f"{BASE}/segments/{pk}/count/").json() == {"count": 1}
    assert len(client.get(f"{BASE}/segments/{pk}/preview/").json()["results"]) == 1
    bad = client.post(
        f"{BASE}/segments/",
        {
            "name": "Bad",
            "rules": {"op": "and", "rules": [{"field": "score", "operator": "gte", "value": "x"}]},
        },
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"] == {"rules.rules[0].value": ["Expected a number."]}
    live = client.post(f"{BASE}/segments/evaluate/", {"rules": rules}, format="json")
    assert live.json()["count"] == 1
    assert "custom.plan" not in client.get(f"{BASE}/segments/fields/").json()


def test_lists_add_remove(api_client_for):
    client = api_client_for("marketer")
    contacts = ContactFactory.create_batch(3, workspace=client.workspace)
    lst = client.post(f"{BASE}/lists/", {"name": "VIP"}).json()
    resp = client.post(
        f"{BASE}/lists/{lst['id']}/add/", {"contact_ids": [c.pk for c in contacts]}, format="json"
    )
    assert resp.json() == {"added": 3}
    client.post(f"{BASE}/lists/{lst['id']}/remove/", {"contact_ids": [contacts[0].pk]}, format="json")
    assert client.get(f"{BASE}/lists/{lst['id']}/").json()["size"] == 2


def test_import_upload_returns_202_job_and_error_report(api_client_for, django_capture_on_commit_callbacks):
    client = api_client_for("marketer")
    upload = SimpleUploadedFile("people.csv", b"Email Address,First Name\na@ex.com,A\nbroken,B\n")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        resp = client.post(
            f"{BASE}/imports/", {"file": upload, "policy": "update", "tags": "fair"}, format="multipart"
        )
    assert resp.status_code == 202, resp.json()
    assert resp.json()["job"]["kind"] == "crm.import" and len(callbacks) == 1
    from crm.importing import import_execute

    import_execute(run_id=resp.json()["id"])
    run = ImportRun.objects.get(pk=resp.json()["id"])
    assert run.created == 1 and run.failed == 1
    report = client.get(f"{BASE}/imports/{run.pk}/errors.csv/")
    text = b"".join(report.streaming_content).decode()
    assert (
        text.splitlines()[1]
        == "3,Email Address,Not a valid email address: An email address must have an @-sign.,broken"
    )
    bad = client.post(
        f"{BASE}/imports/", {"file": SimpleUploadedFile("x.csv", b"who\nme\n")}, format="multipart"
    )
    assert bad.status_code == 400 and "mapping.email" in bad.json()["error"]["fields"]


def test_enrichment_run_returns_202(api_client_for, django_capture_on_commit_callbacks):
    client = api_client_for("marketer")
    contacts = ContactFactory.create_batch(3, workspace=client.workspace)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        resp = client.post(
            f"{BASE}/enrichment-runs/", {"contact_ids": [c.pk for c in contacts]}, format="json"
        )
    assert resp.status_code == 202, resp.json()
    assert resp.json()["total"] == 3 and len(callbacks) == 1
    assert client.post(f"{BASE}/enrichment-runs/", {}, format="json").status_code == 400


def test_gdpr_export_erase_and_consent(api_client_for):
    client = api_client_for("marketer")
    c = ContactFactory(workspace=client.workspace, email="g@ex.com")
    assert (
        client.post(
            f"{BASE}/contacts/{c.pk}/consent/", {"kind": "newsletter", "granted": True, "ip": "10.1.1.1"}
        ).status_code
        == 201
    )
    assert client.get(f"{BASE}/contacts/{c.pk}/consent/").json()[0]["kind"] == "newsletter"
    assert client.get(f"{BASE}/contacts/{c.pk}/gdpr-export/").json()["email"] == "g@ex.com"
    assert client.post(f"{BASE}/contacts/{c.pk}/unsubscribe/", {"channel": "email"}).status_code == 200
    assert client.post(f"{BASE}/contacts/{c.pk}/erase/").json()["email"].startswith("erased-")


def test_custom_fields_and_export(api_client_for):
    client = api_client_for("admin")
    assert (
        client.post(
            f"{BASE}/custom-fields/", {"key": "plan", "label": "Plan", "type": "choice"}, format="json"
        ).status_code
        == 400
    )
    assert (
        client.post(
            f"{BASE}/custom-fields/",
            {"key": "plan", "label": "Plan", "type": "choice", "choices": ["pro"]},
            format="json",
        ).status_code
        == 201
    )
    ContactFactory(workspace=client.workspace, first_name="@evil", custom={"plan": "pro"})
    resp = client.get(f"{BASE}/contacts/export/")
    text = b"".join(resp.streaming_content).decode()
    assert "'@evil" in text and text.splitlines()[0].endswith("custom.plan")


def _foreign_objects(ws):
    contact = ContactFactory(workspace=ws)
    return {
        "contacts": contact.pk,
        "companies": CompanyFactory(workspace=ws).pk,
        "tags": TagFactory(workspace=ws).pk,
        "lists": ContactListFactory(workspace=ws).pk,
        "segments": SegmentFactory(workspace=ws).pk,
        "custom-fields": CustomFieldFactory(workspace=ws).pk,
    }


def test_tenant_isolation_every_endpoint(api_client_for, other_workspace):
    client = api_client_for("admin")
    foreign = _foreign_objects(other_workspace)
    for route, pk in foreign.items():
        assert client.get(f"{BASE}/{route}/{pk}/").status_code == 404, route
        assert client.patch(f"{BASE}/{route}/{pk}/", {}, format="json").status_code == 404, route
        assert client.delete(f"{BASE}/{route}/{pk}/").status_code == 404, route
        assert client.get(f"{BASE}/{route}/").json()["count"] == 0, route
    cpk = foreign["contacts"]
    for suffix in ("gdpr-export/", "consent/"):
        assert client.get(f"{BASE}/contacts/{cpk}/{suffix}").status_code == 404
    for suffix in ("erase/", "unsubscribe/", "resubscribe/", "merge/"):
        assert client.post(f"{BASE}/contacts/{cpk}/{suffix}", {}, format="json").status_code == 404
    for suffix in ("count/", "preview/"):
        assert client.get(f"{BASE}/segments/{foreign['segments']}/{suffix}").status_code == 404
    assert (
        client.post(
            f"{BASE}/lists/{foreign['lists']}/add/", {"contact_ids": [cpk]}, format="json"
        ).status_code
        == 404
    )
    mine = ContactFactory(workspace=client.workspace)
    # ids in bodies that name no row of this workspace: 404 naming them
    merge = client.post(f"{BASE}/contacts/{mine.pk}/merge/", {"duplicate": cpk}, format="json")
    assert merge.status_code == 404
    lst = ContactListFactory(workspace=client.workspace)
    add = client.post(f"{BASE}/lists/{lst.pk}/add/", {"contact_ids": [cpk]}, format="json")
    assert add.status_code == 404 and str(cpk) in add.json()["error"]["fields"]["contact_ids"][0]
    run = client.post(f"{BASE}/enrichment-runs/", {"contact_ids": [cpk]}, format="json")
    assert run.status_code == 404 and str(cpk) in run.json()["error"]["fields"]["contact_ids"][0]
    seg = client.post(f"{BASE}/enrichment-runs/", {"segment": foreign["segments"]}, format="json")
    assert seg.status_code == 404
    other_client = api_client_for("admin", workspace_=other_workspace)
    upload = SimpleUploadedFile("p.csv", b"email\na@ex.com\n")
    other_run = other_client.post(f"{BASE}/imports/", {"file": upload}, format="multipart").json()["id"]
    assert client.get(f"{BASE}/imports/{other_run}/").status_code == 404
    assert client.get(f"{BASE}/imports/{other_run}/errors.csv/").status_code == 404


def test_viewer_cannot_write(api_client_for):
    client = api_client_for("viewer")
    c = ContactFactory(workspace=client.workspace)
    seg = SegmentFactory(workspace=client.workspace)
    assert client.get(f"{BASE}/contacts/").status_code == 200
    assert client.get(f"{BASE}/segments/{seg.pk}/count/").status_code == 200
    writes = [
        ("post", f"{BASE}/contacts/", {"email": "v@ex.com"}),
        ("patch", f"{BASE}/contacts/{c.pk}/", {"title": "x"}),
        ("delete", f"{BASE}/contacts/{c.pk}/", None),
        ("post", f"{BASE}/contacts/bulk/", {"contacts": [{"email": "v@ex.com"}]}),
        ("post", f"{BASE}/contacts/{c.pk}/erase/", {}),
        ("post", f"{BASE}/contacts/{c.pk}/unsubscribe/", {}),
        ("post", f"{BASE}/tags/", {"name": "t"}),
        ("post", f"{BASE}/segments/", {"name": "s", "rules": seg.rules}),
        ("post", f"{BASE}/enrichment-runs/", {"contact_ids": [c.pk]}),
        ("post", f"{BASE}/imports/", {}),
    ]
    for method, url, data in writes:
        assert getattr(client, method)(url, data, format="json").status_code == 403, url
    assert Contact.objects.get(pk=c.pk).erased_at is None


@pytest.mark.parametrize("role", ["marketer", "admin"])
def test_writers_can_start_verification(api_client_for, role):
    client = api_client_for(role)
    c = ContactFactory(workspace=client.workspace)
    resp = client.post(f"{BASE}/verification-runs/", {"contact_ids": [c.pk]}, format="json")
    assert resp.status_code == 202 and Job.objects.get(pk=resp.json()["id"]).kind == "crm.verification"
    services.contact_unsubscribe(contact=c)


def test_hand_built_representation_matches_drf(workspace):
    from django.utils import timezone
    from rest_framework import serializers

    from crm.api import ContactSerializer

    class Plain(ContactSerializer):
        to_representation = serializers.ModelSerializer.to_representation

    c = ContactFactory(
        workspace=workspace,
        company=CompanyFactory(workspace=workspace),
        verified_at=timezone.now(),
        custom={"a": 1},
        provenance={"title": {"source": "typed"}},
    )
    c.tags.add(TagFactory(workspace=workspace, name="t"))
    fast = ContactSerializer(c).data
    assert fast.pop("tags") == ["t"]
    assert fast == dict(Plain(c).data)


def test_enrichment_run_over_a_list_or_segment(api_client_for, django_capture_on_commit_callbacks):
    client = api_client_for("marketer")
    members = ContactFactory.create_batch(2, workspace=client.workspace, engagement_score=90)
    ContactFactory(workspace=client.workspace, engagement_score=1)
    lst = ContactListFactory(workspace=client.workspace)
    services.list_add_contacts(contact_list=lst, contact_ids=[m.pk for m in members])
    seg = SegmentFactory(
        workspace=client.workspace,
        rules={"op": "and", "rules": [{"field": "score", "operator": "gt", "value": 50}]},
    )
    with django_capture_on_commit_callbacks(execute=False):
        by_list = client.post(f"{BASE}/enrichment-runs/", {"list": lst.pk}, format="json")
        by_segment = client.post(f"{BASE}/enrichment-runs/", {"segment": seg.pk}, format="json")
    assert by_list.json()["total"] == 2 and by_segment.json()["total"] == 2
    job = Job.objects.get(pk=by_segment.json()["id"])
    assert sorted(job.params["contact_ids"]) == sorted(m.pk for m in members)


def test_put_tags_replace_the_contacts_tags(api_client_for):
    client = api_client_for("marketer")
    pk = client.post(f"{BASE}/contacts/", {"email": "t@ex.com", "tags": ["a", "b"]}, format="json").json()[
        "id"
    ]
    assert client.patch(f"{BASE}/contacts/{pk}/", {"tags": ["b", "c"]}, format="json").json()["tags"] == [
        "b",
        "c",
    ]
    assert client.patch(f"{BASE}/contacts/{pk}/", {"title": "x"}, format="json").json()["tags"] == ["b", "c"]


def test_import_upload_with_explicit_mapping(api_client_for, django_capture_on_commit_callbacks):
    import json

    client = api_client_for("marketer")
    upload = SimpleUploadedFile("m.csv", b"Mail,Vorname\nm@ex.com,Max\n")
    with django_capture_on_commit_callbacks(execute=False):
        resp = client.post(
            f"{BASE}/imports/",
            {
                "file": upload,
                "policy": "skip",
                "mapping": json.dumps({"Mail": "email", "Vorname": "first_name"}),
            },
            format="multipart",
        )
    assert resp.status_code == 202, resp.json()
    assert (
        resp.json()["mapping"] == {"Mail": "email", "Vorname": "first_name"}
        and resp.json()["policy"] == "skip"
    )


def test_import_upload_rejects_a_bad_mapping(api_client_for):
    client = api_client_for("marketer")
    for mapping in ("not json", "[1, 2]"):
        upload = SimpleUploadedFile("m.csv", b"Mail\nm@ex.com\n")
        resp = client.post(f"{BASE}/imports/", {"file": upload, "mapping": mapping}, format="multipart")
        assert resp.status_code == 400 and "mapping" in resp.json()["error"]["fields"]
    assert not ImportRun.objects.exists()


def test_viewer_may_evaluate_rules_but_not_save_a_segment(api_client_for):
    client = api_client_for("viewer")
    rules = {"op": "and", "rules": [{"field": "lifecycle", "operator": "lifecycle_in", "value": ["new"]}]}
    resp = client.post(f"{BASE}/segments/evaluate/", {"rules": rules}, format="json")
    assert resp.status_code == 200, resp.content
    assert client.post(f"{BASE}/segments/", {"name": "x", "rules": rules}, format="json").status_code == 403


@pytest.mark.parametrize("path", ["enrichment-runs", "verification-runs"])
def test_a_run_over_the_size_limit_is_a_400_and_starts_nothing(api_client_for, monkeypatch, path):
    client = api_client_for("marketer")
    monkeypatch.setattr(services.runs, "MAX_RUN_CONTACTS", 2)
    ContactFactory.create_batch(3, workspace=client.workspace, engagement_score=90)
    seg = SegmentFactory(
        workspace=client.workspace,
        rules={"op": "and", "rules": [{"field": "score", "operator": "gt", "value": 50}]},
    )
    resp = client.post(f"{BASE}/{path}/", {"segment": seg.pk}, format="json")
    assert resp.status_code == 400
    assert "at most 2 contacts" in str(resp.json()["error"])
    assert not Job.objects.exists()


def test_a_run_over_a_segment_whose_rules_no_longer_compile_is_a_400(api_client_for):
    client = api_client_for("marketer")
    ContactFactory(workspace=client.workspace)
    seg = SegmentFactory(workspace=client.workspace)
    # a custom field the rules name was deleted after the segment was saved
    type(seg).objects.filter(pk=seg.pk).update(
        rules={"op": "and", "rules": [{"field": "custom.gone", "operator": "equals", "value": "x"}]}
    )
    resp = client.post(f"{BASE}/enrichment-runs/", {"segment": seg.pk}, format="json")
    assert resp.status_code == 400
    assert "segment" in resp.json()["error"]["fields"]
    assert not Job.objects.exists()


def test_lists_and_segments_from_the_api_go_through_the_dashboards_services(api_client_for):
    from aicmo.models import AuditEvent

    client = api_client_for("marketer")
    created = client.post(f"{BASE}/lists/", {"name": "  Fair leads "}, format="json")
    assert created.status_code == 201 and created.json()["name"] == "Fair leads"
    assert created.json()["size"] == 0
    assert AuditEvent.objects.filter(workspace=client.workspace, verb="crm.list.created").count() == 1
    rules = {"op": "and", "rules": [{"field": "score", "operator": "gt", "value": 5}]}
    bad = client.post(f"{BASE}/segments/", {"name": "a\x00b", "rules": rules}, format="json")
    assert bad.status_code == 400 and "name" in bad.json()["error"]["fields"]
    seg = client.post(f"{BASE}/segments/", {"name": " Hot ", "rules": rules}, format="json").json()
    assert seg["name"] == "Hot"
    renamed = client.patch(f"{BASE}/segments/{seg['id']}/", {"name": "Warm"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["rules"] == rules
    broken = client.patch(
        f"{BASE}/segments/{seg['id']}/", {"rules": {"op": "and", "rules": [{"field": "nope"}]}}, format="json"
    )
    assert broken.status_code == 400 and any(k.startswith("rules") for k in broken.json()["error"]["fields"])
