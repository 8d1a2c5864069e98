"""Import: encodings, delimiters, header mapping, dedupe policies, row errors, crash resume, XLSX."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from openpyxl import Workbook

from aicmo.models import Job, JobStatus
from crm import importing
from crm.importing import auto_mapping, import_create, import_execute
from crm.models import Contact, ImportRun, ImportStatus
from tests.crm.factories import ContactFactory, CustomFieldFactory


def run_import(workspace, content: bytes, name="people.csv", **kwargs) -> ImportRun:
    run = import_create(workspace=workspace, fh=io.BytesIO(content), name=name, enqueue=False, **kwargs)
    import_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


HEADER = "Email Address,First Name,Last Name,Company Name,Job Title,Phone Number,Tags\n"


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"), ("cp1252", b"")],
)
def test_encodings(workspace, encoding, bom):
    text = HEADER + "zoe@ex.com,Zoë,Müller,Café Crème,Chef,+33 1,vip\nano@ex.com,Ana,Núñez,,,,\n"
    run = run_import(workspace, bom + text.encode(encoding))
    assert run.status == ImportStatus.DONE and run.created == 2 and run.failed == 0
    zoe = Contact.objects.get(workspace=workspace, email="zoe@ex.com")
    assert (zoe.first_name, zoe.last_name, zoe.company.name, zoe.title) == (
        "Zoë",
        "Müller",
        "Café Crème",
        "Chef",
    )
    assert list(zoe.tags.values_list("name", flat=True)) == ["vip"]
    assert (
        zoe.provenance["first_name"]["source"] == "import"
        and zoe.provenance["company"]["import_run"] == run.pk
    )
    assert "title" not in Contact.objects.get(workspace=workspace, email="ano@ex.com").provenance


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_sniffed(workspace, delimiter):
    rows = [["E-mail", "firstname", "lastname"], ["a@ex.com", "A", "One"], ["b@ex.com", "B", "Two"]]
    content = "\n".join(delimiter.join(r) for r in rows).encode()
    run = run_import(workspace, content)
    assert run.created == 2
    assert Contact.objects.get(workspace=workspace, email="b@ex.com").last_name == "Two"


def test_auto_mapping_recognises_common_headers(workspace):
    CustomFieldFactory(workspace=workspace, key="plan", label="Subscription Plan", type="text")
    headers = [
        "Email Address",
        "First Name",
        "Surname",
        "Company Name",
        "Phone Number",
        "Job Title",
        "Tags",
        "Website",
        "Lead Source",
        "Subscription Plan",
        "Shoe size",
        "E-mail",
    ]
    assert auto_mapping(headers, workspace) == {
        "Email Address": "email",
        "First Name": "first_name",
        "Surname": "last_name",
        "Company Name": "company",
        "Phone Number": "phone",
        "Job Title": "title",
        "Tags": "tags",
        "Website": "company_domain",
        "Lead Source": "source",
        "Subscription Plan": "custom.plan",
    }


def test_explicit_mapping_override_and_validation(workspace):
    content = b"Contact,Who\nx@ex.com,Xavier\n"
    with pytest.raises(ValidationError) as exc:
        import_create(workspace=workspace, fh=io.BytesIO(content), name="a.csv", enqueue=False)
    assert "mapping.email" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        import_create(
            workspace=workspace,
            fh=io.BytesIO(content),
            name="a.csv",
            enqueue=False,
            mapping={"Contact": "email", "Who": "shoe"},
        )
    assert "mapping.Who" in exc.value.message_dict
    run = run_import(workspace, content, mapping={"Contact": "email", "Who": "first_name"})
    assert Contact.objects.get(workspace=workspace, email="x@ex.com").first_name == "Xavier"
    assert run.created == 1


def test_bad_rows_reported_with_line_column_reason_and_good_rows_land(workspace):
    CustomFieldFactory(workspace=workspace, key="budget", label="Budget", type="number")
    content = (
        b"Email,First Name,Budget\n"
        b"ok@ex.com,Ok,10\n"
        b"not-an-email,Bad,1\n"
        b",NoEmail,2\n"
        b"money@ex.com,Money,lots\n"
        b"\n"
        b"fine@ex.com,Fine,\n"
    )
    run = run_import(workspace, content)
    assert (run.created, run.failed) == (2, 3)
    errors = list(run.row_errors.values_list("line", "column", "reason"))
    assert errors == [
        (3, "Email", "Not a valid email address: An email address must have an @-sign."),
        (4, "Email", "Email is missing."),
        (5, "Budget", "Expected a number."),
    ]
    assert sorted(Contact.objects.for_workspace(workspace).values_list("email", flat=True)) == [
        "fine@ex.com",
        "ok@ex.com",
    ]
    report = list(importing.import_errors_rows(run))
    assert report[0] == ["line", "column", "reason", "value"] and report[1][:2] == ["3", "Email"]
    job = Job.objects.get(pk=run.job_id)
    assert job.status == JobStatus.SUCCEEDED and (job.done, job.failed) == (2, 3)


@pytest.mark.parametrize(
    ("policy", "first_name", "title", "created", "updated", "skipped"),
    [("update", "New", "CEO", 1, 2, 0), ("skip", "Old", "", 1, 0, 2), ("fill_blanks", "Old", "CEO", 1, 2, 0)],
)
def test_dedupe_policies(workspace, policy, first_name, title, created, updated, skipped):
    ContactFactory(workspace=workspace, email="dup@ex.com", first_name="Old", title="")
    content = (
        b"Email,First Name,Title,Tags\n"
        b" DUP@ex.com ,New,CEO,imported\n"
        b"fresh@ex.com,Fresh,,a\n"
        b"FRESH@ex.com,Fresher,Boss,b\n"
    )
    run = run_import(workspace, content, policy=policy)
    dup = Contact.objects.get(workspace=workspace, email="dup@ex.com")
    assert (dup.first_name, dup.title) == (first_name, title)
    assert (run.created, run.updated, run.skipped) == (created, updated, skipped)
    fresh = Contact.objects.get(workspace=workspace, email="fresh@ex.com")
    assert Contact.objects.for_workspace(workspace).count() == 2
    expected_fresh = {"update": ("Fresher", "Boss"), "skip": ("Fresh", ""), "fill_blanks": ("Fresh", "Boss")}
    assert (fresh.first_name, fresh.title) == expected_fresh[policy]
    if policy != "skip":
        assert set(dup.tags.values_list("name", flat=True)) == {"imported"}
        assert dup.provenance["title"]["source"] == "import"


def test_xlsx_import(workspace):
    wb = Workbook()
    ws = wb.active
    ws.append(["Email Address", "First Name", "Phone Number", "Tags"])
    ws.append(["x1@ex.com", "Xi", 5551234, "a, b"])
    ws.append(["bad", "Bad", None, None])
    ws.append(["x2@ex.com", "Xu", None, None])
    buf = io.BytesIO()
    wb.save(buf)
    run = run_import(workspace, buf.getvalue(), name="people.xlsx")
    assert (run.created, run.failed) == (2, 1)
    assert list(run.row_errors.values_list("line", "column")) == [(3, "Email Address")]
    x1 = Contact.objects.get(workspace=workspace, email="x1@ex.com")
    assert x1.phone == "5551234" and set(x1.tags.values_list("name", flat=True)) == {"a", "b"}


def test_import_applies_run_tags_and_stays_in_workspace(workspace, other_workspace):
    ContactFactory(workspace=other_workspace, email="a@ex.com", first_name="Other")
    run = run_import(workspace, b"email\na@ex.com\n", tags=["fair-2026"])
    assert run.created == 1
    assert Contact.objects.get(workspace=other_workspace, email="a@ex.com").first_name == "Other"
    assert list(Contact.objects.get(workspace=workspace).tags.values_list("name", flat=True)) == ["fair-2026"]


def test_management_command(workspace, tmp_path, capsys):
    path = tmp_path / "cli.csv"
    path.write_bytes(b"Person,Mail\nCli,cli@ex.com\n")
    call_command(
        "import_contacts",
        str(path),
        "--workspace",
        "acme",
        "--mapping",
        "Person=first_name,Mail=email",
        "--policy",
        "skip",
    )
    assert Contact.objects.get(workspace=workspace, email="cli@ex.com").first_name == "Cli"
    assert "created 1" in capsys.readouterr().out


def test_unexpected_error_fails_job_visibly(workspace, monkeypatch):
    run = import_create(workspace=workspace, fh=io.BytesIO(b"email\na@ex.com\n"), name="a.csv", enqueue=False)

    def boom(*args, **kwargs):
        raise ValueError("disk on fire")

    monkeypatch.setattr(importing, "_commit_batch", boom)
    with pytest.raises(ValueError, match="disk on fire"):
        import_execute(run_id=run.pk)
    run.refresh_from_db()
    job = Job.objects.get(pk=run.job_id)
    assert (
        run.status == ImportStatus.FAILED and job.status == JobStatus.FAILED and "disk on fire" in job.message
    )


def test_contact_created_meanwhile_is_not_overwritten_nor_fatal(workspace, monkeypatch):
    """Another writer creates an address between our lookup and our insert: the row is skipped, the rest lands."""
    ContactFactory(workspace=workspace, email="race@ex.com", first_name="Theirs")
    monkeypatch.setattr(importing, "_existing_contacts", lambda ws_id, emails: [])
    run = run_import(workspace, b"email,first name\nrace@ex.com,Ours\nfree@ex.com,Free\n")
    assert (run.created, run.skipped) == (1, 1)
    assert Contact.objects.get(workspace=workspace, email="race@ex.com").first_name == "Theirs"
    assert Contact.objects.filter(workspace=workspace, email="free@ex.com").exists()


def _stored_files(root) -> list:
    return [p for p in root.rglob("*") if p.is_file()]


def test_invalid_mapping_leaves_no_file_in_storage(workspace, settings):
    from pathlib import Path

    with pytest.raises(ValidationError) as err:
        import_create(
            workspace=workspace,
            fh=io.BytesIO(b"Mail,Name\na@ex.com,A\n"),
            name="orphan.csv",
            mapping={"Name": "first_name"},  # email unmapped
            enqueue=False,
        )
    assert "mapping.email" in err.value.message_dict
    assert not ImportRun.objects.exists()
    assert _stored_files(Path(settings.MEDIA_ROOT)) == []
    # a valid import still keeps its file (the row points at it)
    run = import_create(
        workspace=workspace, fh=io.BytesIO(b"Mail\na@ex.com\n"), name="kept.csv", enqueue=False
    )
    assert run.file.storage.exists(run.file.name)
    assert len(_stored_files(Path(settings.MEDIA_ROOT))) == 1


def test_awkward_cells_round_trip_and_existing_contacts_get_tags(workspace):
    """Quotes, delimiters, tabs, backslashes and line breaks inside cells land verbatim (COPY escaping);
    empty cells are empty strings, not NULL; an existing contact found by the index probe is updated and tagged."""
    ContactFactory(workspace=workspace, email="old@ex.com", first_name="Old", title="")
    content = (
        b"email,first name,title,phone,tags\n"
        b'"new@ex.com","Ann ""The"" Boss","Head, Sales\tEMEA","back\\slash","a, b"\n'
        b'"old@ex.com","Multi\r\nLine","","","c"\n'
        b'"blank@ex.com","","","",""\n'
    )
    run = run_import(workspace, content, policy="update")
    assert (run.created, run.updated, run.failed) == (2, 1, 0)
    new = Contact.objects.get(workspace=workspace, email="new@ex.com")
    assert (new.first_name, new.title, new.phone) == ('Ann "The" Boss', "Head, Sales\tEMEA", "back\\slash")
    assert set(new.tags.values_list("name", flat=True)) == {"a", "b"}
    old = Contact.objects.get(workspace=workspace, email="old@ex.com")
    assert old.first_name == "Multi\r\nLine"
    assert list(old.tags.values_list("name", flat=True)) == ["c"]
    blank = Contact.objects.get(workspace=workspace, email="blank@ex.com")
    assert (blank.first_name, blank.title, blank.company_id, blank.provenance) == ("", "", None, {})


def test_row_with_nul_character_is_a_row_error_not_a_failed_import(workspace):
    run = run_import(workspace, b"email,first name\nok@ex.com,Ok\nnul@ex.com,Nu\x00ll\nfine@ex.com,Fine\n")
    assert (run.status, run.created, run.failed) == (ImportStatus.DONE, 2, 1)
    assert list(run.row_errors.values_list("line", "reason")) == [(3, "The row contains a NUL character.")]
