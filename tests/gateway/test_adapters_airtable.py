import json

import pytest
from werkzeug import Response

from gateway.adapters.airtable import AirtableAdapter
from gateway.capabilities import CrmRecord
from gateway.errors import ErrorKind, ProviderError


def airtable(url, **options):
    return AirtableAdapter(
        base_url=url,
        credentials={"api_key": "pat.123"},
        options={"base_id": "appXYZ", "table": "Contacts", "min_interval": 0, **options},
    )


def test_upsert_merges_on_email_ten_per_request(httpserver):
    seen = []

    def handler(request):
        body = request.get_json()
        seen.append(body)
        records, created = [], []
        for i, rec in enumerate(body["records"]):
            rid = f"rec{len(seen)}{i}"
            records.append({"id": rid, "createdTime": "2026-11-24T00:00:00.000Z", "fields": rec["fields"]})
            if i % 2 == 0:
                created.append(rid)
        updated = [r["id"] for r in records if r["id"] not in created]
        return Response(
            json.dumps({"records": records, "createdRecords": created, "updatedRecords": updated}),
            content_type="application/json",
        )

    httpserver.expect_request(
        "/v0/appXYZ/Contacts", method="PATCH", headers={"Authorization": "Bearer pat.123"}
    ).respond_with_handler(handler)
    records = [CrmRecord(email=f"User{i}@Example.test", fields={"Name": f"User {i}"}) for i in range(12)]
    result = airtable(httpserver.url_for("")).sync_crm(records)
    assert [len(b["records"]) for b in seen] == [10, 2]
    assert seen[0]["performUpsert"] == {"fieldsToMergeOn": ["Email"]}
    assert seen[0]["records"][0]["fields"] == {"Name": "User 0", "Email": "user0@example.test"}
    assert result.created == 6 and result.updated == 6 and result.ids["user0@example.test"] == "rec10"
    assert len(result.ids) == 12 and not result.demo


def test_429_waits_30_seconds_by_default(httpserver):
    httpserver.expect_request("/v0/appXYZ/Contacts").respond_with_json(
        {"errors": [{"error": "RATE_LIMIT_REACHED", "message": "Rate limit exceeded"}]}, status=429
    )
    with pytest.raises(ProviderError) as info:
        airtable(httpserver.url_for("")).sync_crm([CrmRecord(email="a@b.test")])
    assert info.value.kind is ErrorKind.THROTTLED and info.value.retry_after == 30.0


def test_429_honours_retry_after_header(httpserver):
    httpserver.expect_request("/v0/appXYZ/Contacts").respond_with_json(
        {}, status=429, headers={"Retry-After": "3"}
    )
    with pytest.raises(ProviderError) as info:
        airtable(httpserver.url_for("")).sync_crm([CrmRecord(email="a@b.test")])
    assert info.value.retry_after == 3.0


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (401, {"type": "AUTHENTICATION_REQUIRED", "message": "Authentication required"}, ErrorKind.REAUTH),
        (403, {"type": "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", "message": "no access"}, ErrorKind.REAUTH),
        (404, {"type": "NOT_FOUND", "message": "Could not find table"}, ErrorKind.BAD_INPUT),
        (422, {"type": "UNKNOWN_FIELD_NAME", "message": 'Unknown field name: "Nmae"'}, ErrorKind.BAD_INPUT),
        (503, {"type": "SERVICE_UNAVAILABLE", "message": "down"}, ErrorKind.TRANSIENT),
    ],
)
def test_error_forms(httpserver, status, error, kind):
    httpserver.expect_request("/v0/appXYZ/Contacts").respond_with_json({"error": error}, status=status)
    with pytest.raises(ProviderError) as info:
        airtable(httpserver.url_for("")).sync_crm([CrmRecord(email="a@b.test")])
    assert info.value.kind is kind and error["type"] in info.value.message


def test_record_without_email_and_missing_base_are_bad_input(httpserver):
    with pytest.raises(ProviderError) as info:
        airtable(httpserver.url_for("")).sync_crm([CrmRecord(email="nope")])
    assert info.value.kind is ErrorKind.BAD_INPUT
    with pytest.raises(ProviderError) as info:
        AirtableAdapter(base_url=httpserver.url_for(""), credentials={"api_key": "x"}).sync_crm(
            [CrmRecord(email="a@b.test")]
        )
    assert info.value.kind is ErrorKind.BAD_INPUT
    assert httpserver.log == []


def test_chunks_are_paced(httpserver):
    import time

    httpserver.expect_request("/v0/appXYZ/Contacts").respond_with_json({"records": [], "createdRecords": []})
    start = time.monotonic()
    airtable(httpserver.url_for(""), min_interval=0.2).sync_crm(
        [CrmRecord(email=f"u{i}@b.test") for i in range(30)]
    )
    assert time.monotonic() - start >= 0.4  # 3 requests, at least 0.2 s apart


def test_health(httpserver):
    httpserver.expect_request("/v0/meta/whoami").respond_with_json({"id": "usr1"})
    airtable(httpserver.url_for("")).health_check()
