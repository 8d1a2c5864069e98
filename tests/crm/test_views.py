"""Dashboard pages: rendering, wizard flow, HTMX live count, tenant isolation, viewer read-only, query counts."""

from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from crm import importing, services
from crm.models import Contact, ImportRun, Segment, Suppression
from tests.crm.factories import CompanyFactory, ContactFactory, CustomFieldFactory, SegmentFactory, TagFactory


def test_contact_list_filters_and_flat_queries(client_for, django_assert_max_num_queries):
    client = client_for("viewer")
    company = CompanyFactory(workspace=client.workspace)
    tag = TagFactory(workspace=client.workspace)
    for c in ContactFactory.create_batch(45, workspace=client.workspace, company=company):
        c.tags.add(tag)
    ContactFactory(workspace=client.workspace, email="needle@ex.com")
    with django_assert_max_num_queries(14):
        resp = client.get("/crm/")
    assert resp.status_code == 200 and resp.content.count(b"/crm/contacts/") == 46
    resp = client.get("/crm/?q=needle")
    assert b"needle@ex.com" in resp.content and resp.content.count(b"/crm/contacts/") == 1


def test_contact_detail_shows_provenance(client_for):
    client = client_for("marketer")
    c = services.contact_create(workspace=client.workspace, data={"email": "p@ex.com", "title": "Founder"})
    services.enrichment_apply(
        contact=c, provider="apollo", fields={"first_name": "Pia", "title": "CEO"}, demo=True
    )
    resp = client.get(f"/crm/contacts/{c.pk}/")
    body = resp.content.decode()
    assert (
        resp.status_code == 200 and "enrichment · apollo" in body and "typed" in body and "demo data" in body
    )
    assert "kept “Founder”, offered “CEO”" in body


def test_unsubscribe_from_dashboard(client_for):
    client = client_for("marketer")
    c = ContactFactory(workspace=client.workspace)
    resp = client.post(f"/crm/contacts/{c.pk}/subscription/", {"channel": "email", "action": "unsubscribe"})
    assert resp.status_code == 302 and Suppression.objects.filter(contact=c, channel="email").exists()


def test_segment_builder_live_count_and_save(client_for):
    client = client_for("marketer")
    ContactFactory(workspace=client.workspace, engagement_score=80)
    ContactFactory(workspace=client.workspace, engagement_score=5)
    rules = {"op": "and", "rules": [{"field": "score", "operator": "gte", "value": 50}]}
    assert client.get("/crm/segments/new/").status_code == 200
    resp = client.post("/crm/segments/count/", {"rules": json.dumps(rules)}, HTTP_HX_REQUEST="true")
    assert b'<strong class="segment-count">1</strong>' in resp.content
    bad = client.post(
        "/crm/segments/count/",
        {"rules": json.dumps({"op": "and", "rules": [{"field": "score", "operator": "gte", "value": "x"}]})},
    )
    assert b"rules[0].value" in bad.content
    resp = client.post("/crm/segments/new/", {"name": "Hot", "rules": json.dumps(rules)})
    segment = Segment.objects.get(workspace=client.workspace, name="Hot")
    assert resp.status_code == 302 and resp["Location"] == f"/crm/segments/{segment.pk}/"
    assert client.get(f"/crm/?segment={segment.pk}").content.count(b"/crm/contacts/") == 1
    export = client.get(f"/crm/export.csv?segment={segment.pk}")
    assert len(b"".join(export.streaming_content).splitlines()) == 2


def test_import_wizard_upload_preview_start(client_for, django_capture_on_commit_callbacks):
    client = client_for("marketer")
    upload = SimpleUploadedFile("list.csv", b"Mail;Vorname;Shoe\nw@ex.com;Wim;42\nbad;X;1\n")
    resp = client.post("/crm/imports/", {"file": upload, "policy": "update", "tags": "wizard"})
    run = ImportRun.objects.get(workspace=client.workspace)
    assert resp.status_code == 302 and run.job_id is None
    page = client.get(f"/crm/imports/{run.pk}/").content.decode()
    assert "Mail" in page and "w@ex.com" in page and "delimiter “;”" in page
    with django_capture_on_commit_callbacks(execute=False):
        client.post(f"/crm/imports/{run.pk}/", {"map_0": "email", "map_1": "first_name", "map_2": ""})
    run.refresh_from_db()
    assert run.job_id is not None and run.mapping == {"Mail": "email", "Vorname": "first_name"}
    importing.import_execute(run_id=run.pk)
    assert Contact.objects.get(workspace=client.workspace, email="w@ex.com").first_name == "Wim"
    page = client.get(f"/crm/imports/{run.pk}/").content.decode()
    assert "job-progress" in page or "progress" in page
    assert "Not a valid email address: An email address must have an @-sign." in page
    report = b"".join(client.get(f"/crm/imports/{run.pk}/errors.csv").streaming_content).decode()
    assert report.splitlines()[1].startswith("3,Mail,")


def test_pages_404_across_workspaces(client_for, other_workspace):
    client = client_for("admin")
    foreign_contact = ContactFactory(workspace=other_workspace)
    foreign_segment = SegmentFactory(workspace=other_workspace)
    run = importing.import_stage(
        workspace=other_workspace, fh=SimpleUploadedFile("x.csv", b"email\na@ex.com\n"), name="x.csv"
    )
    for url in (
        f"/crm/contacts/{foreign_contact.pk}/",
        f"/crm/segments/{foreign_segment.pk}/",
        f"/crm/imports/{run.pk}/",
        f"/crm/imports/{run.pk}/errors.csv",
        f"/crm/?segment={foreign_segment.pk}",
        f"/crm/export.csv?segment={foreign_segment.pk}",
    ):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(f"/crm/contacts/{foreign_contact.pk}/subscription/", {"channel": "email"}).status_code
        == 404
    )
    assert client.post(f"/crm/imports/{run.pk}/", {"map_0": "email"}).status_code == 404
    assert (
        client.post(f"/crm/segments/{foreign_segment.pk}/", {"name": "x", "rules": "{}"}).status_code == 404
    )
    assert foreign_contact.email not in client.get("/crm/").content.decode()


def test_viewer_cannot_write_pages(client_for):
    client = client_for("viewer")
    c = ContactFactory(workspace=client.workspace)
    assert client.post(f"/crm/contacts/{c.pk}/subscription/", {"channel": "email"}).status_code == 403
    assert client.post("/crm/segments/new/", {"name": "x", "rules": "{}"}).status_code == 403
    assert client.post("/crm/imports/", {}).status_code == 403
    assert client.post("/crm/segments/count/", {"rules": "{}"}).status_code == 200  # counting is a read
    assert not Suppression.objects.exists()


def test_segment_builder_catalog_comes_from_the_server_and_is_scoped(client_for, other_workspace):
    from crm.segments import OPERATORS, OPERATORS_BY_KIND

    client = client_for("viewer")
    TagFactory(workspace=client.workspace, name="ours-vip")
    TagFactory(workspace=other_workspace, name="theirs-secret")
    resp = client.get("/crm/segments/new/")
    assert resp.status_code == 200
    assert b'id="segment-catalog"' in resp.content and b"crm/segment_builder.js" in resp.content
    catalog = resp.context["builder_catalog"]
    assert catalog["tags"] == ["ours-vip"]  # another workspace's tags never reach the tag picker
    assert b"theirs-secret" not in resp.content
    # every operator any field offers has a label and a value shape, so the builder needs no list of its own
    offered = {op for spec in catalog["fields"].values() for op in spec["operators"]}
    assert offered == set().union(*OPERATORS_BY_KIND.values()) and offered <= set(catalog["operators"])
    assert set(OPERATORS) == offered
    assert catalog["fields"]["suppression"]["choices"] == ["any", "email", "sms", "social"]


def test_segment_count_errors_carry_their_path_for_the_builder(client_for):
    client = client_for("viewer")
    rules = {
        "op": "or",
        "rules": [{"field": "score", "operator": "gte", "value": 1}, {"op": "and", "rules": []}],
    }
    resp = client.post("/crm/segments/count/", {"rules": json.dumps(rules)})
    assert b'data-path="rules[1].rules"' in resp.content


def test_import_result_card_polls_until_the_job_finishes(
    client_for, other_workspace, django_assert_max_num_queries
):
    client = client_for("marketer")
    upload = SimpleUploadedFile("list.csv", b"Email,Budget\nw@ex.com,1\nbad,2\nz@ex.com,x\n")
    CustomFieldFactory(workspace=client.workspace, key="budget", label="Budget", type="number")
    run = importing.import_stage(workspace=client.workspace, fh=upload, name="list.csv")
    assert client.get(f"/crm/imports/{run.pk}/result/").status_code == 404  # not started
    run = importing.import_start(run=run, enqueue=False)
    page = client.get(f"/crm/imports/{run.pk}/").content.decode()
    assert 'id="import-result"' in page and f'hx-get="/crm/imports/{run.pk}/result/"' in page
    importing.import_execute(run_id=run.pk)
    with django_assert_max_num_queries(12):
        card = client.get(f"/crm/imports/{run.pk}/result/").content.decode()
    assert 'data-finished="true"' in card and "/result/" not in card
    assert '<span data-count="created">1</span>' in card and '<span data-count="failed">2</span>' in card
    assert f"/crm/imports/{run.pk}/errors.csv" in card and "Expected a number." in card
    foreign = importing.import_create(
        workspace=other_workspace,
        fh=SimpleUploadedFile("x.csv", b"email\na@ex.com\n"),
        name="x.csv",
        enqueue=False,
    )
    assert client.get(f"/crm/imports/{foreign.pk}/result/").status_code == 404


def test_import_wizard_maps_a_repeated_header_by_position(client_for, django_capture_on_commit_callbacks):
    client = client_for("marketer")
    upload = SimpleUploadedFile("dup.csv", b"Email,Phone,Phone\na@ex.com,111,222\n")
    client.post("/crm/imports/", {"file": upload, "policy": "update"})
    run = ImportRun.objects.get(workspace=client.workspace)
    page = client.get(f"/crm/imports/{run.pk}/").content.decode()
    assert "<td>Phone (2)</td>" in page
    with django_capture_on_commit_callbacks(execute=False):
        client.post(f"/crm/imports/{run.pk}/", {"map_0": "email", "map_1": "", "map_2": "phone"})
    run.refresh_from_db()
    assert run.mapping == {"Email": "email", "Phone (2)": "phone"}
    importing.import_execute(run_id=run.pk)
    assert Contact.objects.get(workspace=client.workspace, email="a@ex.com").phone == "222"
