"""The row parser decides every value before the database sees it: random text in every mapped column is a
row error or a value that fits its column, and an import of such rows finishes with the good rows in (run on
SQLite and, through tests/pgrun.py, on PostgreSQL where an over-long value would abort the batch)."""

from __future__ import annotations

import csv
import io
import json
import math
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm import importing
from crm.importing import CORE_TARGETS, TARGET_FIELDS, import_create, import_execute
from crm.models import Company, Contact, CustomFieldDefinition, FieldType, ImportStatus, Tag
from tests.crm.factories import CustomFieldFactory
from tests.factories import WorkspaceFactory

CUSTOM_TYPES = {
    "t_text": "text",
    "t_number": "number",
    "t_date": "date",
    "t_bool": "bool",
    "t_choice": "choice",
}
TARGETS = [*CORE_TARGETS, *(f"custom.{k}" for k in CUSTOM_TYPES)]
GOOD_EMAILS = [
    "a@example.com",
    "Zoë@Example.com",
    "info@xn--bckerei-5wa.example",
    " b@ex.com\u00a0",
    "用户@例子.广告",
]

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=120)
_cell = st.one_of(
    _text,
    st.sampled_from(
        ["NaN", "inf", "-Infinity", "1e400", "1e308", "-0", "\u0301", "\u0301\u0302x", "\x00", "\ufeff"]
    ),
    st.sampled_from(['"vip","newsletter"', "2026-01-15 14:30", "46037", "yes", "https://www.Acme.com/x"]),
    st.integers(min_value=0, max_value=12_000).map(lambda n: "x" * n),
    st.integers(min_value=60, max_value=300).map(lambda n: ("label." * n)[:n] + ".com"),
)
_row = st.fixed_dictionaries(
    {t: _cell for t in TARGETS if t != "email"} | {"email": st.one_of(st.sampled_from(GOOD_EMAILS), _cell)}
)


def _custom_defs(workspace=None) -> dict:
    defs = {}
    for key, kind in CUSTOM_TYPES.items():
        fields = {
            "key": key,
            "label": key,
            "type": kind,
            "choices": ["gold", "silver"] if kind == "choice" else [],
        }
        defs[key] = (
            CustomFieldFactory(workspace=workspace, **fields)
            if workspace
            else CustomFieldDefinition(**fields)
        )
    return defs


def _assert_storable(data: dict) -> None:
    for target, value in data.items():
        if target in TARGET_FIELDS and isinstance(value, str):
            assert len(value) <= TARGET_FIELDS[target].max_length, target
            assert "\x00" not in value
    for tag in data.get("tags", []):
        assert 0 < len(tag) <= TARGET_FIELDS["tags"].max_length
    json.dumps(data["custom"], allow_nan=False)  # raises on NaN/inf


@settings(max_examples=300, deadline=None)
@given(_row)
def test_parser_returns_a_row_error_or_values_that_fit_their_columns(row):
    plan = importing._column_plan({i: (t, t) for i, t in enumerate(TARGETS)}, _custom_defs())
    batch = importing._Batch()
    run = SimpleNamespace(workspace_id=1, pk=1)
    data = importing._parse_row(7, [row[t] for t in TARGETS], plan, run, batch)
    if data is None:
        assert batch.errors or not "".join(row.values()).strip()
        assert all(e.line == 7 and len(e.reason) <= 300 and len(e.value) <= 300 for e in batch.errors)
    else:
        assert not batch.errors
        _assert_storable(data)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_row, min_size=1, max_size=8))
def test_import_of_random_rows_finishes_with_good_rows_in(db, settings, tmp_path, rows):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    workspace = WorkspaceFactory()
    _custom_defs(workspace)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(TARGETS)
    good = [{"email": f"good{i}@example.com", "company": "Acme", "t_number": "1"} for i in range(25)]
    for row in [*good, *rows]:  # clean rows first: the delimiter sniffer reads the first 21 lines
        writer.writerow([row.get(t, "") for t in TARGETS])
    run = import_create(
        workspace=workspace,
        fh=io.BytesIO(out.getvalue().encode()),
        name="random.csv",
        mapping={t: t for t in TARGETS},
        enqueue=False,
    )
    import_execute(run_id=run.pk)
    run.refresh_from_db()
    landed = [r for r in rows if "".join(r.values()).strip()]
    assert run.status == ImportStatus.DONE and run.job.status == "succeeded"
    assert run.created + run.updated + run.skipped + run.failed == len(good) + len(landed)
    assert run.created >= len(good) and run.failed == len(set(run.row_errors.values_list("line", flat=True)))
    emails = set(Contact.objects.for_workspace(workspace).values_list("email", flat=True))
    assert {g["email"] for g in good} <= emails
    for contact in Contact.objects.for_workspace(workspace):
        for name in ("email", "first_name", "last_name", "title", "phone", "source"):
            assert len(getattr(contact, name)) <= Contact._meta.get_field(name).max_length
        assert all(not isinstance(v, float) or math.isfinite(v) for v in contact.custom.values())
    assert all(len(c.domain) <= 253 and len(c.name) <= 200 for c in Company.objects.for_workspace(workspace))
    assert all(len(t.name) <= 80 for t in Tag.objects.for_workspace(workspace))


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("Company", "C" * 5000, "Longer than 200 characters."),
        ("Website", "d" * 5000 + ".com", "A domain has at most 253 characters."),
        ("Website", "not a domain", "Expected a domain such as example.com."),
        ("First Name", "F" * 101, "Longer than 100 characters."),
        ("Tags", "ok," + "t" * 81, "A tag has at most 80 characters."),
        ("Name", "N" * 101 + " Last", "The first name is longer than 100 characters."),
    ],
)
def test_over_long_or_malformed_value_is_a_row_error_and_the_good_rows_land(workspace, column, value, reason):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Email", column])
    writer.writerows([["good1@example.com", ""], ["bad@example.com", value], ["good2@example.com", ""]])
    run = import_create(
        workspace=workspace, fh=io.BytesIO(out.getvalue().encode()), name="x.csv", enqueue=False
    )
    import_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.created, run.failed) == (2, 1)
    assert list(run.row_errors.values_list("line", "column", "reason")) == [(3, column, reason)]
    assert set(Contact.objects.for_workspace(workspace).values_list("email", flat=True)) == {
        "good1@example.com",
        "good2@example.com",
    }


def test_limits_come_from_the_model_fields():
    assert {t: f.max_length for t, f in TARGET_FIELDS.items()} == {
        "email": Contact._meta.get_field("email").max_length,
        "first_name": 100,
        "last_name": 100,
        "title": 150,
        "phone": 40,
        "source": 60,
        "company": Company._meta.get_field("name").max_length,
        "company_domain": Company._meta.get_field("domain").max_length,
        "tags": Tag._meta.get_field("name").max_length,
    }
    # full_name is split into two fields; unsubscribed is a yes/no that opts out, stored in no text field
    assert set(TARGET_FIELDS) | {"full_name", "unsubscribed"} == set(CORE_TARGETS)


def test_error_line_is_the_first_line_of_a_multi_line_record(workspace):
    content = b'Email,Title\nok@example.com,"one\ntwo\nthree"\nbroken,"a\nb"\nfine@example.com,x\n'
    run = import_create(workspace=workspace, fh=io.BytesIO(content), name="x.csv", enqueue=False)
    import_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.created, run.failed) == (2, 1)
    assert list(run.row_errors.values_list("line", flat=True)) == [5]
    assert Contact.objects.get(workspace=workspace, email="ok@example.com").title == "one\ntwo\nthree"


def test_field_type_catalogue_is_covered():
    assert set(CUSTOM_TYPES.values()) == set(FieldType.values)


def test_long_and_nul_headers_are_stored_with_their_row_errors(workspace):
    long_header = "Email " + "h" * 300
    content = f'"{long_header}",Pho\x00ne\nok@example.com,1\nbroken,2\n'.encode()
    run = import_create(
        workspace=workspace,
        fh=io.BytesIO(content),
        name="x.csv",
        mapping={long_header: "email", "Phone": "phone"},
        enqueue=False,
    )
    import_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.created, run.failed) == (1, 1)
    assert list(run.row_errors.values_list("column", flat=True)) == [long_header[:120]]
    assert Contact.objects.get(workspace=workspace, email="ok@example.com").phone == "1"
