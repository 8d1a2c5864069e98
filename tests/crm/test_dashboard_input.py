"""CRM dashboard pages never answer 500 to junk query strings or form posts: a 404, a form error or the page."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crm.models import ImportRun, Segment
from tests.crm.factories import ContactFactory, SegmentFactory

HUGE = "99999999999999999999999"  # digits, beyond any database integer
BAD_IDS = [
    "²",
    "abc",
    "-1",
    "0",
    "1.5",
    " 1",
    HUGE,
    "9" * 5000,
    "\x00",
    "１",
]  # "²" and "１" pass str.isdigit()


@pytest.mark.parametrize("value", BAD_IDS)
@pytest.mark.parametrize("url", ["/crm/", "/crm/export.csv"])
def test_bad_segment_id_is_404(client_for, url, value):
    client = client_for("viewer")
    SegmentFactory(workspace=client.workspace)
    assert client.get(url, {"segment": value}).status_code == 404


def test_other_workspace_segment_is_404_and_empty_segment_is_ignored(client_for, other_workspace):
    client = client_for("viewer")
    theirs = SegmentFactory(workspace=other_workspace)
    assert client.get("/crm/", {"segment": str(theirs.pk)}).status_code == 404
    assert client.get("/crm/", {"segment": ""}).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        {"list": "abc"},
        {"list": HUGE},
        {"list": "1e999"},
        {"list": "9" * 5000},  # int() refuses more than 4,300 digits
        {"min_score": "1e999"},
        {"min_score": HUGE},
        {"min_score": "nan"},
        {"page": "abc"},
        {"page": HUGE},
        {"created_after": "not-a-date", "created_before": "9999-99-99"},
        {"lifecycle": "nope", "verification": "x", "engagement_tier": "x"},
        {"q": "\x00", "tag": "\x00", "company": "\x00"},
        {"q": "%" * 300},
    ],
)
@pytest.mark.parametrize("url", ["/crm/", "/crm/export.csv"])
def test_junk_filters_never_500(client_for, url, query):
    client = client_for("viewer")
    ContactFactory(workspace=client.workspace)
    resp = client.get(url, query)
    assert resp.status_code in (200, 400, 404)
    if url == "/crm/export.csv" and resp.status_code == 200:
        b"".join(resp.streaming_content)  # the stream itself must not blow up either


RULES = ["", "{not json", "5", "[]", "null", '"x"', '{"op": "and", "rules": 5}', '{"op": "and", "rules": [5]}',
         '{"op": "xor", "rules": []}', '{"field": 5, "operator": [], "value": {}}',
         '{"field": "score", "operator": "between", "value": "x"}',
         '{"field": "score", "operator": "gte", "value": 1e999}',
         '{"field": "score", "operator": "in", "value": [1e999]}',
         '{"field": "created_at", "operator": "within_last_days", "value": 1000000000000}',
         '{"field": "created_at", "operator": "more_than_days_ago", "value": "²"}',
         '{"field": "created_at", "operator": "gte", "value": "9999-99-99"}',
         '{"field": "email", "operator": "contains", "value": "\\u0000"}',
         '{"field": "tags", "operator": "has_tag", "value": ["a\\u0000"]}',
         '{"field": "tags", "operator": "has_tag", "value": true}']  # fmt: skip


@pytest.mark.parametrize("rules", RULES)
def test_segment_count_with_junk_rules_is_a_form_error(client_for, rules):
    client = client_for("viewer")
    resp = client.post("/crm/segments/count/", {"rules": rules})
    assert resp.status_code == 200


@pytest.mark.parametrize("rules", RULES)
def test_segment_save_with_junk_rules_is_a_form_error(client_for, rules):
    client = client_for("marketer")
    resp = client.post("/crm/segments/new/", {"name": "Junk", "rules": rules})
    assert resp.status_code == 302
    assert not Segment.objects.filter(workspace=client.workspace).exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Taken", b"already exists"),
        ("x" * 500, b"At most 120 characters"),
        ("nul\x00", b"NUL"),
        ("  ", b"Give the segment a name"),
    ],
)
def test_segment_name_problems_are_form_errors(client_for, name, message):
    client = client_for("marketer")
    SegmentFactory(workspace=client.workspace, name="Taken")
    other = SegmentFactory(workspace=client.workspace, name="Other")
    rules = json.dumps(other.rules)
    resp = client.post(f"/crm/segments/{other.pk}/", {"name": name, "rules": rules}, follow=True)
    assert resp.status_code == 200 and message in resp.content
    other.refresh_from_db()
    assert other.name == "Other"
    # renaming a segment to its own name is fine
    resp = client.post(f"/crm/segments/{other.pk}/", {"name": "Other", "rules": rules})
    assert resp.status_code == 302 and resp["Location"] == f"/crm/segments/{other.pk}/"


@pytest.mark.parametrize("channel", ["", "x", "\x00"])
def test_subscription_junk_channel(client_for, channel):
    client = client_for("marketer")
    contact = ContactFactory(workspace=client.workspace)
    resp = client.post(f"/crm/contacts/{contact.pk}/subscription/", {"channel": channel, "action": "x"})
    assert resp.status_code == 302


def test_import_wizard_junk_posts(client_for):
    client = client_for("marketer")
    assert client.post("/crm/imports/", {"policy": "x", "tags": ",,,"}).status_code == 302
    upload = SimpleUploadedFile("p.csv", b"email\na@ex.com\n", content_type="text/csv")
    assert client.post("/crm/imports/", {"file": upload, "policy": "nope"}).status_code == 302
    upload = SimpleUploadedFile("p.csv", b"\x00\xff\xfe junk", content_type="text/csv")
    assert client.post("/crm/imports/", {"file": upload}).status_code == 302
    upload = SimpleUploadedFile("p.xlsx", b"not a zip", content_type="application/octet-stream")
    assert client.post("/crm/imports/", {"file": upload}).status_code == 302
    ImportRun.objects.all().delete()
    upload = SimpleUploadedFile("p.csv", b"email\na@ex.com\n", content_type="text/csv")
    resp = client.post("/crm/imports/", {"file": upload, "tags": "ok,bad\x00tag"}, follow=True)
    assert resp.status_code == 200 and b"no NUL characters" in resp.content
    upload = SimpleUploadedFile("p.csv", b"email\na@ex.com\n", content_type="text/csv")
    resp = client.post("/crm/imports/", {"file": upload, "tags": "x" * 81})
    assert resp["Location"] == "/crm/imports/"
    assert not ImportRun.objects.exists()
    upload = SimpleUploadedFile("p.csv", b"email\na@ex.com\n", content_type="text/csv")
    resp = client.post("/crm/imports/", {"file": upload, "tags": "fair, ,vip"})
    run = ImportRun.objects.get()
    assert resp["Location"] == f"/crm/imports/{run.pk}/" and run.tags == ["fair", "vip"]
    assert client.post(resp["Location"], {"map_0": "custom.nope"}).status_code == 302
    run.refresh_from_db()
    assert run.job_id is None
