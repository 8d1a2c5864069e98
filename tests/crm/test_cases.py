"""Real-world input files (tests/crm/cases/, one test per file stem) and the doors they reach: import, API,
admin. Each asserts the value a user expects."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crm import importing
from crm.importing import import_create, import_execute
from crm.models import Contact, ImportRun
from tests.crm.factories import ContactFactory, CustomFieldFactory

CASES = Path(__file__).parent / "cases"
BASE = "/api/v1/crm"


def run_case(workspace, stem: str, **kwargs) -> ImportRun:
    path = next(CASES.glob(f"{stem}.*"))
    run = import_create(
        workspace=workspace, fh=io.BytesIO(path.read_bytes()), name=path.name, enqueue=False, **kwargs
    )
    import_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def contacts(workspace) -> dict[str, Contact]:
    return {c.email: c for c in Contact.objects.for_workspace(workspace)}


def errors(run) -> list[tuple]:
    return list(run.row_errors.order_by("line").values_list("line", "column", "reason"))


def test_c05_dupheaders(workspace):
    path = CASES / "c05-dupheaders.csv"
    headers = importing.import_preview(workspace=workspace, fh=io.BytesIO(path.read_bytes()), name=path.name)
    assert headers["headers"] == ["Email", "First Name", "Last Name", "Phone", "Phone (2)", "Email (2)"]
    assert headers["mapping"] == {
        "Email": "email",
        "First Name": "first_name",
        "Last Name": "last_name",
        "Phone": "phone",
    }
    run = run_case(workspace, "c05-dupheaders")
    assert (run.created, run.failed) == (3, 0)
    phones = {e: c.phone for e, c in contacts(workspace).items()}
    assert phones == {
        "hana.ito@example.com": "+1 555 0101",
        "ivan.pele@example.com": "",
        "jade.moss@example.com": "+1 555 0303",
    }


def test_c05_dupheaders_second_column_mapped_on_its_own(workspace, other_workspace):
    run = run_case(
        other_workspace,
        "c05-dupheaders",
        mapping={"Email (2)": "email", "First Name": "first_name", "Phone (2)": "phone"},
    )
    assert (run.created, run.failed) == (1, 2)
    assert [c.phone for c in contacts(other_workspace).values()] == ["+1 555 0202"]
    assert set(contacts(other_workspace)) == {"ivan.private@example.net"}
    with pytest.raises(importing.ValidationError) as exc:
        run_case(
            workspace, "c05-dupheaders", mapping={"Email": "email", "Phone": "phone", "Phone (2)": "phone"}
        )
    assert "already mapped" in exc.value.message_dict["mapping.Phone (2)"][0]


def test_c06_email_whitespace(workspace):
    ContactFactory(workspace=workspace, email="kai.lund@example.com", first_name="Before")
    run = run_case(workspace, "c06-email-whitespace")
    assert (run.created, run.updated, run.failed) == (4, 1, 0)
    assert sorted(contacts(workspace)) == [
        "kai.lund@example.com",
        "lena.voss@example.com",
        "milo.ray@example.com",
        "nora.fey@example.com",
        "omar.kent@example.com",
    ]
    assert contacts(workspace)["kai.lund@example.com"].first_name == "Kai"
    again = run_case(workspace, "c06-email-whitespace")
    assert (again.created, again.updated) == (0, 5)


def test_c06_invisible_inside_is_a_row_error_and_api_400(workspace, api_client_for):
    run = import_create(
        workspace=workspace,
        fh=io.BytesIO("Email\nok@example.com\nno\u200bra@example.com\n".encode()),
        name="x.csv",
        enqueue=False,
    )
    import_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.created, run.failed) == (1, 1)
    assert errors(run) == [(3, "Email", "The address contains a space or an invisible character.")]
    client = api_client_for("marketer")
    ok = client.post(f"{BASE}/contacts/", {"email": "\ufeffMilo.Ray@Example.com\u00a0"}, format="json")
    assert ok.status_code == 201 and ok.json()["email"] == "milo.ray@example.com"
    bad = client.post(f"{BASE}/contacts/", {"email": "mi\u00a0lo@example.com"}, format="json")
    assert bad.status_code == 400 and "email" in bad.json()["error"]["fields"]


def test_c08_email_forms(workspace):
    run = run_case(workspace, "c08-email-forms")
    assert (run.created, run.updated, run.failed) == (4, 2, 0)
    assert sorted(contacts(workspace)) == sorted(
        [
            "sean.o'neil@example.com.au",
            "tara+newsletter@example.com",
            "info@bäckerei.example",
            "jürgen@example.de",
        ]
    )
    assert contacts(workspace)["info@bäckerei.example"].first_name == "Punycode"  # later rows update


def test_c08_every_door_finds_the_same_mailbox(api_client_for):
    from crm.selectors import contact_by_email

    client_api = api_client_for("marketer")
    created = client_api.post(f"{BASE}/contacts/", {"email": "INFO@xn--bckerei-5wa.example"}, format="json")
    assert created.status_code == 201 and created.json()["email"] == "info@bäckerei.example"
    ws = client_api.workspace
    dup = client_api.post(f"{BASE}/contacts/", {"email": "info@ba\u0308ckerei.example"}, format="json")
    assert dup.status_code == 409 and "already exists" in json.dumps(dup.json())
    bulk = client_api.post(
        f"{BASE}/contacts/bulk/",
        {
            "contacts": [
                {"email": " info@bäckerei.example\u200b", "first_name": "Bulk"},
                {"email": "Jürgen@Example.de"},
            ]
        },
        format="json",
    )
    assert [r["status"] for r in bulk.json()["results"]] == ["updated", "created"]
    assert contact_by_email(ws, "\ufeffINFO@B\u00c4CKEREI.example ").first_name == "Bulk"
    assert contact_by_email(ws, "not an address") is None
    assert Contact.objects.for_workspace(ws).count() == 2


def test_c08_admin_form_accepts_internationalized_address(workspace, member_factory, client):
    user = member_factory(workspace, "admin", is_staff=True)
    client.force_login(user)
    resp = client.post(
        "/admin/crm/contact/add/",
        {
            "workspace": workspace.pk,
            "email": "\u00a0Jürgen@Example.de",
            "lifecycle": "new",
            "engagement_score": 0,
        },
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    assert Contact.objects.for_workspace(workspace).get().email == "jürgen@example.de"
    bad = client.post(
        "/admin/crm/contact/add/",
        {"workspace": workspace.pk, "email": "jür gen@example.de", "lifecycle": "new", "engagement_score": 0},
    )
    assert bad.status_code == 200 and "invisible character" in bad.content.decode()


def test_c09_dates(workspace):
    CustomFieldFactory(workspace=workspace, key="signup", label="Signup Date", type="date")
    run = run_case(workspace, "c09-dates")
    assert (run.created, run.failed) == (5, 0), errors(run)
    found = {e: c.custom.get("signup") for e, c in contacts(workspace).items()}
    assert found == {
        "zed.ames@example.com": "2026-01-15",
        "abby.cole@example.com": "2026-01-15",
        "bo.diaz@example.com": "2026-01-16",
        "cy.eng@example.com": "2026-01-15",  # Excel serial day 46037 in a General-format cell
        "di.ford@example.com": "2026-01-18",
    }
    assert contacts(workspace)["zed.ames@example.com"].phone == "4915112345678"


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("2026-01-15 14:30", "2026-01-15"),
        ("2026-01-15T23:59:59+05:00", "2026-01-15"),
        ("2026-01-15", "2026-01-15"),
        (46037, "2026-01-15"),
    ],
)
def test_c09_dates_api(api_client_for, value, stored):
    client = api_client_for("marketer")
    CustomFieldFactory(workspace=client.workspace, key="signup", label="Signup", type="date")
    resp = client.post(
        f"{BASE}/contacts/", {"email": "d@example.com", "custom": {"signup": value}}, format="json"
    )
    assert resp.status_code == 201, resp.json()
    assert resp.json()["custom"] == {"signup": stored}


def test_c10_nonfinite(workspace):
    CustomFieldFactory(workspace=workspace, key="score", label="Score", type="number")
    run = run_case(workspace, "c10-nonfinite")
    assert (run.created, run.failed) == (1, 4)
    assert errors(run) == [(line, "Score", "Expected a finite number.") for line in (3, 4, 5, 6)]
    assert {e: c.custom for e, c in contacts(workspace).items()} == {"uma.nash@example.com": {"score": 42}}
    assert run.job.status == "succeeded"


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity", "1e400", "nan"])
def test_c10_nonfinite_api_is_400(api_client_for, value):
    client = api_client_for("marketer")
    CustomFieldFactory(workspace=client.workspace, key="score", label="Score", type="number")
    resp = client.post(
        f"{BASE}/contacts/", {"email": "n@example.com", "custom": {"score": value}}, format="json"
    )
    assert resp.status_code == 400 and resp.json()["error"]["fields"]["custom.score"] == [
        "Expected a finite number."
    ]
    raw = client.post(
        f"{BASE}/contacts/",
        data='{"email": "n@example.com", "custom": {"score": NaN}}',
        content_type="application/json",
    )
    assert raw.status_code == 400
    bulk = client.post(
        f"{BASE}/contacts/bulk/",
        {"contacts": [{"email": "n@example.com", "custom": {"score": value}}]},
        format="json",
    )
    assert bulk.status_code == 200 and bulk.json()["results"][0]["status"] == "error"
    assert not Contact.objects.for_workspace(client.workspace).exists()


def test_upload_whose_content_is_not_its_name_is_refused(api_client_for, client_for):
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 4
    api = api_client_for("marketer")
    resp = api.post(f"{BASE}/imports/", {"file": SimpleUploadedFile("people.csv", jpeg)}, format="multipart")
    assert resp.status_code == 400
    assert "JPEG image" in resp.json()["error"]["fields"]["file"][0]
    resp = api.post(
        f"{BASE}/imports/",
        {"file": SimpleUploadedFile("people.xlsx", b"Email\na@ex.com\n")},
        format="multipart",
    )
    assert resp.status_code == 400 and "not an Excel workbook" in resp.json()["error"]["fields"]["file"][0]
    dashboard = client_for("marketer")
    page = dashboard.post("/crm/imports/", {"file": SimpleUploadedFile("people.csv", jpeg)}, follow=True)
    assert "JPEG image" in page.content.decode()
    assert not ImportRun.objects.exists()


def test_c10_nonfinite_provider_values_never_reach_a_json_column(workspace):
    from crm import services
    from crm.models import EnrichmentRecord

    contact = ContactFactory(workspace=workspace, title="")
    fields = {
        "title": "CMO",
        "score": float("nan"),
        "nested": {"x": float("inf"), "ok": 1.5},
        "l": [float("-inf")],
    }
    services.enrichment_apply(contact=contact, provider="apollo", fields=fields)
    record = EnrichmentRecord.objects.get(contact=contact)
    record.refresh_from_db()
    assert record.fields == {"title": "CMO", "nested": {"x": None, "ok": 1.5}, "l": [None]}
    contact.refresh_from_db()
    assert contact.title == "CMO"


def test_search_finds_an_address_in_any_case_or_normal_form(client_for):
    client = client_for("viewer")
    ContactFactory(workspace=client.workspace, email="jürgen@bäckerei.example")
    ContactFactory(workspace=client.workspace, email="other@example.com")
    for q in ("JÜRGEN", "ju\u0308rgen@", "Bäckerei\u00a0"):
        body = client.get(f"{BASE}/contacts/", {"q": q}).json()
        assert [c["email"] for c in body["results"]] == ["jürgen@bäckerei.example"], q
