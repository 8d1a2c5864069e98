import imaplib
import smtplib
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import (
    MAX_RETRY_AFTER_SECONDS,
    ErrorKind,
    ProviderError,
    ProvidersUnavailable,
    classify_exception,
    classify_http,
    error_from_response,
    parse_retry_after,
)
from gateway.ssrf import HostUnresolvable, UnsafeURL

NOW = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind"),
    [
        (200, {}, b"", None),
        (204, {}, b"", None),
        (429, {}, b"", ErrorKind.THROTTLED),
        (401, {}, b"", ErrorKind.REAUTH),
        (403, {}, b'{"error":"invalid api key"}', ErrorKind.REAUTH),
        (403, {"Retry-After": "10"}, b"", ErrorKind.THROTTLED),
        (403, {}, b'{"message":"Rate limit exceeded"}', ErrorKind.THROTTLED),
        (400, {}, b"", ErrorKind.BAD_INPUT),
        (404, {}, b"", ErrorKind.BAD_INPUT),
        (422, {}, b"", ErrorKind.BAD_INPUT),
        (408, {}, b"", ErrorKind.TRANSIENT),
        (500, {}, b"", ErrorKind.TRANSIENT),
        (503, {}, b"", ErrorKind.TRANSIENT),
        (302, {}, b"", ErrorKind.TRANSIENT),
    ],
)
def test_classify_http_table(status, headers, body, kind):
    assert classify_http(status, headers, body) == kind


@given(st.integers(min_value=100, max_value=999), st.binary(max_size=200))
def test_classify_http_is_total_and_consistent(status, body):
    kind = classify_http(status, {}, body)
    if 200 <= status < 300:
        assert kind is None
    else:
        assert isinstance(kind, ErrorKind)
        assert kind is not ErrorKind.NO_MATCH
    if 500 <= status < 600:
        assert kind is ErrorKind.TRANSIENT
    if status == 429:
        assert kind is ErrorKind.THROTTLED


def test_kind_properties_drive_retry_and_breaker():
    assert ErrorKind.TRANSIENT.retryable and ErrorKind.THROTTLED.retryable
    assert not ErrorKind.BAD_INPUT.retryable and not ErrorKind.REAUTH.retryable
    assert not ErrorKind.BAD_INPUT.counts_as_failure and not ErrorKind.NO_MATCH.counts_as_failure
    assert ErrorKind.REAUTH.counts_as_failure


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        (30, 30.0),
        (2.5, 2.5),
        ("-1", None),
        (-3, None),
        ("abc", None),
        ("", None),
        (None, None),
        ("1.5", None),
        ("99999999999", None),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("Wed, 99 Foo 2015 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, NOW) == expected


@given(st.integers(min_value=0, max_value=int(MAX_RETRY_AFTER_SECONDS)))
def test_parse_retry_after_seconds_roundtrip(seconds):
    assert parse_retry_after(str(seconds), NOW) == float(seconds)


@given(st.integers(min_value=0, max_value=86400 * 6))
def test_parse_retry_after_http_date_roundtrip(seconds):
    header = format_datetime(NOW + timedelta(seconds=seconds), usegmt=True)
    assert parse_retry_after(header, NOW) == float(seconds)


@given(st.text(max_size=60))
def test_parse_retry_after_never_raises_and_never_negative(text):
    result = parse_retry_after(text, NOW)
    assert result is None or 0 <= result <= MAX_RETRY_AFTER_SECONDS


def test_error_from_response_reads_retry_after():
    response = httpx.Response(429, headers={"Retry-After": "7"}, content=b"slow down")
    err = error_from_response(response, provider="apollo")
    assert err.kind is ErrorKind.THROTTLED and err.retry_after == 7.0 and err.status == 429
    assert err.provider == "apollo" and "slow down" in err.message


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectTimeout("t"), ErrorKind.TRANSIENT),
        (httpx.ReadTimeout("t"), ErrorKind.TRANSIENT),
        (httpx.ConnectError("refused"), ErrorKind.TRANSIENT),
        (httpx.RemoteProtocolError("eof"), ErrorKind.TRANSIENT),
        (httpx.UnsupportedProtocol("ftp"), ErrorKind.BAD_INPUT),
        (UnsafeURL("private"), ErrorKind.BAD_INPUT),
        (smtplib.SMTPAuthenticationError(535, b"bad creds"), ErrorKind.REAUTH),
        (smtplib.SMTPDataError(451, b"try later"), ErrorKind.TRANSIENT),
        (smtplib.SMTPDataError(554, b"rejected"), ErrorKind.BAD_INPUT),
        (smtplib.SMTPRecipientsRefused({"a@b.c": (550, b"no such user")}), ErrorKind.BAD_INPUT),
        (smtplib.SMTPRecipientsRefused({"a@b.c": (450, b"greylisted")}), ErrorKind.TRANSIENT),
        (smtplib.SMTPServerDisconnected("gone"), ErrorKind.TRANSIENT),
        (imaplib.IMAP4.error("[AUTHENTICATIONFAILED] Authentication failed."), ErrorKind.REAUTH),
        (imaplib.IMAP4.abort("socket error"), ErrorKind.TRANSIENT),
        (TimeoutError("timed out"), ErrorKind.TRANSIENT),
        (ConnectionRefusedError(111, "refused"), ErrorKind.TRANSIENT),
        (socket.gaierror(socket.EAI_NONAME, "unknown host"), ErrorKind.TRANSIENT),
        (socket.gaierror(socket.EAI_AGAIN, "try again"), ErrorKind.TRANSIENT),
        (HostUnresolvable("api.typo.example"), ErrorKind.TRANSIENT),
    ],
)
def test_classify_exception(exc, kind):
    err = classify_exception(exc, provider="p")
    assert isinstance(err, ProviderError) and err.kind is kind and err.provider == "p"


def test_providers_unavailable_carries_retry_at_and_errors():
    errors = [ProviderError(ErrorKind.TRANSIENT, "down", provider="apollo", status=503)]
    exc = ProvidersUnavailable("enrich_person", NOW, errors)
    assert exc.retry_at == NOW and exc.errors == errors
    assert "enrich_person" in str(exc) and "apollo" in str(exc) and NOW.isoformat() in str(exc)
