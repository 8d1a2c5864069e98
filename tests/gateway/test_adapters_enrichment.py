from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from werkzeug import Response

from gateway.adapters import ADAPTERS, adapter_for, adapters_for
from gateway.adapters.enrichment import ApolloAdapter, DropcontactAdapter, HunterAdapter
from gateway.capabilities import Capability, PersonQuery, Verdict
from gateway.errors import ErrorKind, ProviderError
from tests.gateway.conftest import slow

PERSON = {
    "id": "64a7f",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "title": "CTO",
    "email": "ada@analytical.io",
    "email_status": "verified",
    "linkedin_url": "http://www.linkedin.com/in/ada",
    "city": "London",
    "country": "United Kingdom",
    "organization": {"name": "Analytical", "primary_domain": "analytical.io", "estimated_num_employees": 40},
    "phone_numbers": [{"raw_number": "+44 20 1234", "sanitized_number": "+44201234"}],
}


def apollo(url, **kw):
    return ApolloAdapter(base_url=url, credentials={"api_key": "k-123"}, **kw)


def test_registry_lists_real_and_demo_adapters():
    assert adapter_for("apollo") is ApolloAdapter
    assert ADAPTERS["hunter"] is HunterAdapter
    keys = [cls.key for cls in adapters_for(Capability.VERIFY_EMAIL)]
    assert keys[-1] == "demo_verification" and {"hunter", "dropcontact"} <= set(keys)
    assert all(not cls.is_demo for cls in adapters_for("enrich_person", include_demo=False))
    with pytest.raises(KeyError, match="nope"):
        adapter_for("nope")


def test_apollo_match_sends_key_header_and_maps_fields(httpserver):
    httpserver.expect_request(
        "/api/v1/people/match",
        method="POST",
        headers={"X-Api-Key": "k-123"},
        json={"email": "ada@analytical.io"},
    ).respond_with_json({"person": PERSON})
    result = apollo(httpserver.url_for("")).enrich_person(PersonQuery(email="ada@analytical.io"))
    assert result.matched and result.provider == "apollo" and result.raw_id == "64a7f" and not result.demo
    assert result.fields["company"] == "Analytical" and result.fields["domain"] == "analytical.io"
    assert (
        result.fields["phone"] == "+44201234"
        and result.fields["headcount"] == 40
        and result.credits_used == 1
    )


def test_apollo_null_person_is_no_match_not_error(httpserver):
    httpserver.expect_request("/api/v1/people/match").respond_with_json({"person": None})
    result = apollo(httpserver.url_for("")).enrich_person(PersonQuery(email="ghost@nowhere.io"))
    assert result.matched is False and result.fields == {} and result.credits_used == 0


def test_apollo_bulk_chunks_by_ten_and_keeps_order(httpserver):
    calls = []

    def handler(request):
        details = request.get_json()["details"]
        calls.append(len(details))
        matches = [
            dict(PERSON, id=d["email"], email=d["email"]) if i % 2 == 0 else None
            for i, d in enumerate(details)
        ]
        return Response(
            __import__("json").dumps({"status": "success", "matches": matches}),
            content_type="application/json",
        )

    httpserver.expect_request("/api/v1/people/bulk_match", method="POST").respond_with_handler(handler)
    queries = [PersonQuery(email=f"p{i}@x.io") for i in range(23)]
    results = apollo(httpserver.url_for("")).enrich_people(queries)
    assert calls == [10, 10, 3]
    assert [r.query for r in results] == queries
    assert [r.matched for r in results[:4]] == [True, False, True, False]
    assert results[0].fields["email"] == "p0@x.io"


def test_apollo_bulk_misaligned_answer_is_transient(httpserver):
    httpserver.expect_request("/api/v1/people/bulk_match").respond_with_json({"matches": [PERSON]})
    with pytest.raises(ProviderError) as info:
        apollo(httpserver.url_for("")).enrich_people(
            [PersonQuery(email="a@x.io"), PersonQuery(email="b@x.io")]
        )
    assert info.value.kind is ErrorKind.TRANSIENT


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (401, {}, ErrorKind.REAUTH, None),
        (403, {}, ErrorKind.REAUTH, None),
        (422, {}, ErrorKind.BAD_INPUT, None),
        (404, {}, ErrorKind.BAD_INPUT, None),
        (429, {"Retry-After": "17"}, ErrorKind.THROTTLED, 17.0),
        (500, {}, ErrorKind.TRANSIENT, None),
        (502, {}, ErrorKind.TRANSIENT, None),
    ],
)
def test_apollo_error_forms(httpserver, status, headers, kind, retry_after):
    httpserver.expect_request("/api/v1/people/match").respond_with_json(
        {"error": "nope", "error_code": "X"}, status=status, headers=headers
    )
    with pytest.raises(ProviderError) as info:
        apollo(httpserver.url_for("")).enrich_person(PersonQuery(email="a@b.io"))
    assert info.value.kind is kind and info.value.status == status and info.value.provider == "apollo"
    assert info.value.retry_after == retry_after


def test_apollo_429_with_http_date(httpserver):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    httpserver.expect_request("/api/v1/people/match").respond_with_json(
        {}, status=429, headers={"Retry-After": when}
    )
    with pytest.raises(ProviderError) as info:
        apollo(httpserver.url_for("")).enrich_person(PersonQuery(email="a@b.io"))
    assert info.value.kind is ErrorKind.THROTTLED and 100 < info.value.retry_after <= 120


def test_apollo_timeout_is_transient(httpserver):
    httpserver.expect_request("/api/v1/people/match").respond_with_handler(
        handler := slow(0.6, '{"person": null}')
    )
    with pytest.raises(ProviderError) as info:
        apollo(httpserver.url_for(""), timeout=0.2).enrich_person(PersonQuery(email="a@b.io"))
    assert info.value.kind is ErrorKind.TRANSIENT
    handler.wait()


def test_apollo_connection_refused_is_transient(loopback_allow):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    loopback_allow("127.0.0.1", port)
    with pytest.raises(ProviderError) as info:
        apollo(f"http://127.0.0.1:{port}").enrich_person(PersonQuery(email="a@b.io"))
    assert info.value.kind is ErrorKind.TRANSIENT


def test_apollo_health_check(httpserver):
    httpserver.expect_oneshot_request("/api/v1/auth/health").respond_with_json(
        {"healthy": True, "is_logged_in": True}
    )
    httpserver.expect_oneshot_request("/api/v1/auth/health").respond_with_json(
        {"healthy": True, "is_logged_in": False}
    )
    adapter = apollo(httpserver.url_for(""))
    adapter.health_check()
    with pytest.raises(ProviderError) as info:
        adapter.health_check()
    assert info.value.kind is ErrorKind.REAUTH


def test_missing_credentials_and_unsafe_base_url_are_refused(httpserver, settings):
    with pytest.raises(ProviderError) as info:
        ApolloAdapter(base_url=httpserver.url_for(""), credentials={}).enrich_person(
            PersonQuery(email="a@b.io")
        )
    assert info.value.kind is ErrorKind.REAUTH
    settings.GATEWAY_LOOPBACK_ALLOW = []
    for base in ("http://169.254.169.254", httpserver.url_for("")):
        with pytest.raises(ProviderError) as info:
            apollo(base).enrich_person(PersonQuery(email="a@b.io"))
        assert info.value.kind is ErrorKind.BAD_INPUT
    assert httpserver.log == []


def test_apollo_builds_one_client_lazily_and_closes_it(httpserver):
    httpserver.expect_request("/api/v1/people/match").respond_with_json({"person": None})
    adapter = apollo(httpserver.url_for(""))
    assert adapter._client is None  # nothing built at construction time
    adapter.enrich_person(PersonQuery(email="a@b.io"))
    client = adapter._client
    adapter.enrich_person(PersonQuery(email="a@b.io"))
    assert adapter._client is client and client.follow_redirects is False
    adapter.close()
    assert adapter._client is None and client.is_closed


# ------------------------------------------------------------------------------------------- Hunter


def hunter(url, **kw):
    return HunterAdapter(base_url=url, credentials={"api_key": "h-key"}, **kw)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        ("valid", Verdict.VALID),
        ("webmail", Verdict.VALID),
        ("invalid", Verdict.INVALID),
        ("accept_all", Verdict.CATCH_ALL),
        ("disposable", Verdict.RISKY),
        ("unknown", Verdict.UNKNOWN),
        ("something_new", Verdict.UNKNOWN),
    ],
)
def test_hunter_verdicts(httpserver, status, verdict):
    httpserver.expect_request(
        "/v2/email-verifier", query_string={"email": "x@y.io"}, headers={"X-API-KEY": "h-key"}
    ).respond_with_json(
        {"data": {"status": status, "result": "deliverable", "score": 91, "email": "x@y.io"}, "meta": {}}
    )
    result = hunter(httpserver.url_for("")).verify_email("x@y.io")
    assert result.verdict == verdict and result.raw_status == status and result.score == 91
    assert result.provider == "hunter" and not result.demo


def test_hunter_202_means_ask_again(httpserver):
    httpserver.expect_request("/v2/email-verifier").respond_with_json(
        {"data": {"status": "unknown"}}, status=202
    )
    with pytest.raises(ProviderError) as info:
        hunter(httpserver.url_for("")).verify_email("x@y.io")
    assert info.value.kind is ErrorKind.THROTTLED and 0 < info.value.retry_after <= 10


@pytest.mark.parametrize(
    ("status", "error_id", "kind"),
    [
        (401, "authentication_failed", ErrorKind.REAUTH),
        (400, "wrong_params", ErrorKind.BAD_INPUT),
        (451, "unavailable_for_legal_reasons", ErrorKind.BAD_INPUT),
        (429, "too_many_requests", ErrorKind.THROTTLED),
        (403, "too_many_requests", ErrorKind.THROTTLED),
        (222, "verification_failed", ErrorKind.TRANSIENT),
        (500, "server_error", ErrorKind.TRANSIENT),
    ],
)
def test_hunter_error_forms(httpserver, status, error_id, kind):
    httpserver.expect_request("/v2/email-verifier").respond_with_json(
        {"errors": [{"id": error_id, "code": status, "details": "detail text"}]}, status=status
    )
    with pytest.raises(ProviderError) as info:
        hunter(httpserver.url_for("")).verify_email("x@y.io")
    assert info.value.kind is kind and "detail text" in info.value.message


def test_hunter_bad_address_never_calls_vendor(httpserver):
    with pytest.raises(ProviderError) as info:
        hunter(httpserver.url_for("")).verify_email("not-an-email")
    assert info.value.kind is ErrorKind.BAD_INPUT and httpserver.log == []


def test_hunter_health(httpserver):
    httpserver.expect_request("/v2/account", headers={"X-API-KEY": "h-key"}).respond_with_json(
        {"data": {"email": "o@x.io"}}
    )
    hunter(httpserver.url_for("")).health_check()
    [(request, _)] = httpserver.log
    assert request.query_string == b""


def test_hunter_key_never_in_the_url(httpserver):
    """Proxies log URLs: the key goes in Hunter's X-API-KEY header, never the query string."""
    httpserver.expect_request("/v2/email-verifier").respond_with_json({"data": {"status": "valid"}})
    hunter(httpserver.url_for("")).verify_email("x@y.io")
    [(request, _)] = httpserver.log
    assert "h-key" not in request.url and request.headers["X-API-KEY"] == "h-key"
    assert dict(request.args) == {"email": "x@y.io"}


# --------------------------------------------------------------------------------------- Dropcontact


def dropcontact(url, **options):
    return DropcontactAdapter(
        base_url=url,
        credentials={"api_key": "d-key"},
        options={"poll_interval": 0.05, "max_wait": 1, **options},
    )


def test_dropcontact_submit_then_poll_until_ready(httpserver):
    httpserver.expect_request(
        "/v1/enrich/all", method="POST", headers={"X-Access-Token": "d-key"}
    ).respond_with_json({"credits_left": 100, "request_id": "req42", "error": False, "success": True})
    not_ready = {"error": False, "success": False, "reason": "Request not ready yet, try again in 30 seconds"}
    httpserver.expect_oneshot_request("/v1/enrich/all/req42").respond_with_json(not_ready)
    httpserver.expect_oneshot_request("/v1/enrich/all/req42").respond_with_json(not_ready)
    httpserver.expect_oneshot_request("/v1/enrich/all/req42").respond_with_json(
        {
            "error": False,
            "success": True,
            "data": [
                {
                    "first_name": "Denis",
                    "last_name": "Cohen",
                    "email": [{"email": "denis@dropcontact.io", "qualification": "nominative@pro"}],
                    "job": "CEO",
                    "company": "Dropcontact",
                    "website": "dropcontact.io",
                    "linkedin": "https://linkedin.com/in/denis",
                    "nb_employees": "11-50",
                    "mobile_phone": "+33 6 00 00 00 00",
                },
                {"first_name": "No", "last_name": "Body", "website": "nowhere.io"},
            ],
        }
    )
    results = dropcontact(httpserver.url_for("")).enrich_people(
        [
            PersonQuery(first_name="Denis", last_name="Cohen", domain="dropcontact.io"),
            PersonQuery(first_name="No", last_name="Body", domain="nowhere.io"),
        ]
    )
    submitted = httpserver.log[0][0].get_json()
    assert submitted["data"][0] == {"first_name": "Denis", "last_name": "Cohen", "website": "dropcontact.io"}
    assert results[0].matched and results[0].fields["email"] == "denis@dropcontact.io"
    assert results[0].fields["title"] == "CEO" and results[0].fields["phone"].startswith("+33")
    assert results[0].credits_used == 1
    assert results[1].matched is False and results[1].credits_used == 0


def test_dropcontact_never_ready_is_throttled_not_blocking(httpserver):
    httpserver.expect_request("/v1/enrich/all", method="POST").respond_with_json(
        {"request_id": "r1", "success": True}
    )
    httpserver.expect_request("/v1/enrich/all/r1").respond_with_json(
        {"success": False, "reason": "Request not ready yet, try again in 30 seconds"}
    )
    with pytest.raises(ProviderError) as info:
        dropcontact(httpserver.url_for(""), max_wait=0.3).enrich_person(PersonQuery(email="a@b.io"))
    assert info.value.kind is ErrorKind.THROTTLED and info.value.retry_after == 30.0
    assert 2 <= len(httpserver.log) <= 10


@pytest.mark.parametrize(
    ("qualification", "verdict"),
    [
        ("nominative@pro", Verdict.VALID),
        ("catch_all@pro", Verdict.CATCH_ALL),
        ("invalid", Verdict.INVALID),
        ("generic@pro", Verdict.RISKY),
        ("no_validated", Verdict.UNKNOWN),
    ],
)
def test_dropcontact_verify(httpserver, qualification, verdict):
    httpserver.expect_request(
        "/v1/enrich/all",
        method="POST",
        json={"data": [{"email": "a@b.io"}], "siren": False, "language": "en"},
    ).respond_with_json({"request_id": "r2", "success": True})
    httpserver.expect_request("/v1/enrich/all/r2").respond_with_json(
        {"success": True, "data": [{"email": [{"email": "a@b.io", "qualification": qualification}]}]}
    )
    result = dropcontact(httpserver.url_for("")).verify_email("a@b.io")
    assert result.verdict == verdict and result.raw_status == qualification


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, {"error": True, "reason": "Too many records", "success": False}, ErrorKind.BAD_INPUT),
        (401, {"error": True, "reason": "Invalid token", "success": False}, ErrorKind.REAUTH),
        (429, {"error": True, "reason": "Too many requests", "success": False}, ErrorKind.THROTTLED),
        (500, {"detail": "Internal error"}, ErrorKind.TRANSIENT),
    ],
)
def test_dropcontact_error_forms(httpserver, status, body, kind):
    httpserver.expect_request("/v1/enrich/all", method="POST").respond_with_json(body, status=status)
    with pytest.raises(ProviderError) as info:
        dropcontact(httpserver.url_for("")).verify_email("a@b.io")
    assert info.value.kind is kind
    assert (body.get("reason") or body.get("detail")) in info.value.message


def test_dropcontact_200_refusal_without_credits_is_throttled(httpserver):
    httpserver.expect_request("/v1/enrich/all", method="POST").respond_with_json(
        {"error": True, "success": False, "reason": "You don't have enough credits"}
    )
    with pytest.raises(ProviderError) as info:
        dropcontact(httpserver.url_for("")).verify_email("a@b.io")
    assert info.value.kind is ErrorKind.THROTTLED


def test_apollo_bulk_refuses_empty_queries_before_calling(httpserver):
    with pytest.raises(ProviderError) as info:
        apollo(httpserver.url_for("")).enrich_people(
            [PersonQuery(email="a@b.io"), PersonQuery(first_name="Only")]
        )
    assert info.value.kind is ErrorKind.BAD_INPUT and "[1]" in info.value.message
    assert httpserver.log == []
