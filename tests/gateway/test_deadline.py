"""The account's timeout bounds a whole HTTP call (connect + send + read headers and body), whatever pace
the other side keeps, for every adapter (they all go through ``Adapter.request``); and an answer is read only
up to ``response_body_limit`` decoded bytes."""

from __future__ import annotations

import gzip
import time

import pytest

from gateway.adapters.base import Adapter
from gateway.deadline import current_deadline
from gateway.errors import ErrorKind, ProviderError

DEADLINE = 0.8


class VendorAdapter(Adapter):
    key = "vendor"
    label = "Vendor"
    response_body_limit = 4096

    def fetch(self) -> bytes:
        return self.request("GET", "/v1/thing").content


def head(length: int, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n".encode()


@pytest.mark.parametrize("interval", [0.02, 0.1, 0.3])
@pytest.mark.parametrize("trickle_head", [False, True])
def test_a_trickled_answer_ends_at_the_total_deadline(trickle_server, interval, trickle_head):
    body = b"1" * 400
    server = trickle_server(head=head(len(body)), body=body, interval=interval, trickle_head=trickle_head)
    adapter = VendorAdapter(base_url=server.url_for(""), timeout=DEADLINE)

    started = time.monotonic()
    with adapter, pytest.raises(ProviderError) as caught:
        adapter.fetch()
    took = time.monotonic() - started

    assert caught.value.kind == ErrorKind.TRANSIENT
    assert f"Vendor exceeded the {DEADLINE:g} s total deadline" in str(caught.value)
    assert took < server.full_answer_seconds / 2
    assert server.finished == 0
    assert current_deadline() is None  # the deadline belongs to the call, not to the thread


def test_an_answer_within_the_deadline_is_read_whole_and_each_call_gets_its_own_deadline(trickle_server):
    body = b'{"ok": true}'
    server = trickle_server(head=head(len(body)), body=body, interval=0)
    with VendorAdapter(base_url=server.url_for(""), timeout=DEADLINE) as adapter:
        assert adapter.fetch() == body
        time.sleep(DEADLINE * 1.5)  # the first call's deadline has passed: not this one's
        assert adapter.fetch() == body


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_an_oversized_answer_fails_the_call_without_reading_it_all(trickle_server, encoding):
    raw = b"0" * (10 * 1024 * 1024)
    body = gzip.compress(raw) if encoding == "gzip" else raw
    extra = "Content-Encoding: gzip\r\n" if encoding == "gzip" else ""
    server = trickle_server(head=head(len(body), extra), body=body, interval=0, step=len(body))

    with (
        VendorAdapter(base_url=server.url_for(""), timeout=5) as adapter,
        pytest.raises(ProviderError) as caught,
    ):
        adapter.fetch()

    assert caught.value.kind == ErrorKind.TRANSIENT
    assert "more than 4,096 bytes" in str(caught.value)


def test_a_truncating_adapter_keeps_the_first_bytes(trickle_server):
    class Truncating(VendorAdapter):
        response_body_truncate = True

    body = b"a" * 10_000
    server = trickle_server(head=head(len(body)), body=body, interval=0, step=len(body))
    with Truncating(base_url=server.url_for(""), timeout=5) as adapter:
        assert adapter.fetch() == b"a" * 4096
