import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug import Response

from gateway.adapters.webhook import WebhookAdapter
from gateway.capabilities import WebhookEvent
from gateway.errors import ErrorKind, ProviderError
from gateway.signing import InvalidSecret, generate_secret, sign, signature_headers, verify
from tests.gateway.conftest import slow

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def independent_signature(secret: str, msg_id: str, ts: str, body: bytes) -> str:
    """Written from the Standard Webhooks spec, not from our module."""
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def test_known_vector_from_the_spec_libraries():
    # Test vector used by the standardwebhooks reference implementations.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


@given(
    st.binary(max_size=500),
    st.integers(min_value=0, max_value=2**40),
    st.from_regex(r"msg_[A-Za-z0-9]{1,30}", fullmatch=True),
)
def test_sign_verify_roundtrip_and_tamper(body, ts, msg_id):
    header = sign(SECRET, msg_id, ts, body)
    assert header == independent_signature(SECRET, msg_id, str(ts), body)
    assert verify(SECRET, msg_id, ts, body, f"v1,bogus {header}")
    assert not verify(SECRET, msg_id, ts + 1, body, header)
    assert not verify(SECRET, msg_id, ts, body + b"x", header)


def test_bad_secrets_are_refused():
    for secret in ("whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(InvalidSecret):
            sign(secret, "msg_1", 1, b"")
    assert generate_secret().startswith("whsec_")
    assert set(signature_headers(generate_secret(), "msg_1", 1, b"{}")) == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }


def test_dispatch_signs_the_exact_bytes_sent(httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok", status=204)
    event = WebhookEvent(
        event_type="contact.created", payload={"id": 7, "email": "a@b.co"}, event_id="msg_abc"
    )
    with WebhookAdapter() as adapter:
        result = adapter.dispatch_webhook(httpserver.url_for("/hook"), SECRET, event)
    assert result.status_code == 204 and not result.disabled and result.event_id == "msg_abc"
    request = httpserver.log[0][0]
    body = request.get_data()
    assert request.headers["webhook-id"] == "msg_abc"
    assert request.headers["webhook-signature"] == independent_signature(
        SECRET, "msg_abc", request.headers["webhook-timestamp"], body
    )
    envelope = json.loads(body)
    assert envelope["type"] == "contact.created" and envelope["data"] == {"id": 7, "email": "a@b.co"}


def test_dispatch_410_disables_endpoint(httpserver):
    httpserver.expect_request("/gone").respond_with_data("", status=410)
    result = WebhookAdapter().dispatch_webhook(httpserver.url_for("/gone"), SECRET, WebhookEvent("x", {}))
    assert result.disabled and result.status_code == 410 and result.event_id.startswith("msg_")


def test_dispatch_redirect_is_a_failure_and_not_followed(httpserver):
    httpserver.expect_request("/moved").respond_with_data(
        "", status=307, headers={"Location": httpserver.url_for("/other")}
    )
    httpserver.expect_request("/other").respond_with_data("", status=200)
    with pytest.raises(ProviderError) as info:
        WebhookAdapter().dispatch_webhook(httpserver.url_for("/moved"), SECRET, WebhookEvent("x", {}))
    assert info.value.status == 307 and info.value.kind is ErrorKind.TRANSIENT
    assert [r.path for r, _ in httpserver.log] == ["/moved"]


@pytest.mark.parametrize(
    ("status", "kind"), [(500, ErrorKind.TRANSIENT), (429, ErrorKind.THROTTLED), (400, ErrorKind.BAD_INPUT)]
)
def test_dispatch_failures_are_classified(httpserver, status, kind):
    httpserver.expect_request("/hook").respond_with_response(
        Response("", status=status, headers={"Retry-After": "12"})
    )
    with pytest.raises(ProviderError) as info:
        WebhookAdapter().dispatch_webhook(httpserver.url_for("/hook"), SECRET, WebhookEvent("x", {}))
    assert info.value.kind is kind and info.value.status == status
    if kind is ErrorKind.THROTTLED:
        assert info.value.retry_after == 12.0


def test_dispatch_timeout_is_transient(httpserver):
    httpserver.expect_request("/slow").respond_with_handler(handler := slow(0.6))
    with pytest.raises(ProviderError) as info:
        WebhookAdapter(timeout=0.2).dispatch_webhook(
            httpserver.url_for("/slow"), SECRET, WebhookEvent("x", {})
        )
    assert info.value.kind is ErrorKind.TRANSIENT
    handler.wait()


def test_dispatch_refuses_internal_urls_without_loopback_permission(httpserver, settings):
    adapter = WebhookAdapter()
    settings.GATEWAY_LOOPBACK_ALLOW = []
    port = httpserver.port
    for url in (
        httpserver.url_for("/hook"),
        f"http://127.1:{port}/hook",
        f"http://2130706433:{port}/hook",
        f"http://[::ffff:127.0.0.1]:{port}/hook",
        "http://169.254.169.254/",
    ):
        with pytest.raises(ProviderError) as info:
            adapter.dispatch_webhook(url, SECRET, WebhookEvent("x", {}))
        assert info.value.kind is ErrorKind.BAD_INPUT
    assert httpserver.log == []
