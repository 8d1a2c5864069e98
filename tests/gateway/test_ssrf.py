import ipaddress
import socket

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.ssrf import (
    UnsafeURL,
    blocked_reason,
    check_host,
    check_url,
    guarded_client,
    guarded_create_connection,
    parse_ipv4_legacy,
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8000/",
        "http://app.localhost/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0x7f000001/",
        "http://017700000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.5/",
        "http://172.16.3.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://224.0.0.1/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::]/",
    ],
)
def test_internal_targets_are_refused(url):
    with pytest.raises(UnsafeURL):
        check_url(url, allow_loopback=False)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://x/",
        "http://user:pw@example.com/",
        "http:///nohost",
        "",
        "  ",
    ],
)
def test_bad_shapes_are_refused(url):
    with pytest.raises(UnsafeURL):
        check_url(url, allow_loopback=False, resolve=False)


def test_public_literal_is_allowed():
    assert check_url("https://93.184.215.14/hook", allow_loopback=False) == "https://93.184.215.14/hook"
    assert check_host("8.8.8.8", 443, allow_loopback=False) == ["8.8.8.8"]


def test_loopback_allowed_only_when_asked():
    assert check_host("127.0.0.1", 80, allow_loopback=True) == ["127.0.0.1"]
    with pytest.raises(UnsafeURL):
        check_host("127.0.0.1", 80, allow_loopback=False)
    # metadata and private stay refused even when loopback is allowed
    with pytest.raises(UnsafeURL):
        check_host("169.254.169.254", 80, allow_loopback=True)
    with pytest.raises(UnsafeURL):
        check_host("10.1.2.3", 80, allow_loopback=True)


def test_name_resolving_to_internal_address_is_refused(monkeypatch):
    def fake_getaddrinfo(host, port, *args, **kwargs):
        assert host == "rebind.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(UnsafeURL, match="10.0.0.7"):
        check_url("https://rebind.example/hook", allow_loopback=False)


def test_transport_checks_at_connect_time_and_does_not_follow_redirects(httpserver, monkeypatch):
    """The name resolves to loopback at connect time: refused without loopback, reached with it."""
    httpserver.expect_request("/hook").respond_with_data(
        "", status=302, headers={"Location": "http://10.0.0.1/"}
    )
    real = socket.getaddrinfo

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host == "hooks.example":
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    url = f"http://hooks.example:{httpserver.port}/hook"
    with guarded_client(allow_loopback=False) as client, pytest.raises(UnsafeURL, match="loopback"):
        client.get(url)
    with guarded_client(allow_loopback=True) as client:
        response = client.get(url)
    assert response.status_code == 302  # returned, not followed
    assert httpserver.log[0][0].headers["Host"] == f"hooks.example:{httpserver.port}"


def test_transport_refuses_literal_forms_before_connecting():
    with guarded_client(allow_loopback=False) as client:
        for url in ("http://2130706433/", "http://0x7f.1/", "http://[::ffff:7f00:1]/"):
            with pytest.raises((UnsafeURL, httpx.InvalidURL)):
                client.get(url)


def test_guarded_create_connection_for_mail_hosts(smtp_sink):
    sock = guarded_create_connection(smtp_sink.host, smtp_sink.port, 5, allow_loopback=True)
    sock.close()
    with pytest.raises(UnsafeURL):
        guarded_create_connection(smtp_sink.host, smtp_sink.port, 5, allow_loopback=False)


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_legacy_ipv4_forms_agree_with_the_address(number):
    ip = ipaddress.IPv4Address(number)
    a, b, c, d = ip.packed
    for form in (
        str(number),
        hex(number),
        "0" + oct(number)[2:] if number else "0",
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}",
    ):
        assert parse_ipv4_legacy(form) == ip


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_ipv4_mapped_ipv6_is_judged_like_its_ipv4(number):
    ip = ipaddress.IPv4Address(number)
    mapped = ipaddress.IPv6Address(f"::ffff:{ip}")
    assert (blocked_reason(ip) is None) == (blocked_reason(mapped) is None)


@given(st.ip_addresses())
def test_only_global_unicast_addresses_pass(ip):
    if blocked_reason(ip) is None:
        assert ip.is_global and not ip.is_multicast and not ip.is_loopback and not ip.is_private


def test_https_connects_to_checked_ip_but_verifies_certificate_by_name(tmp_path, monkeypatch):
    """Connect-time pinning must keep SNI and hostname verification on the URL's name."""
    import http.server
    import ssl
    import threading

    from gateway.ssrf import GuardedTransport
    from tests.gateway.conftest import self_signed_cert

    cert, key = self_signed_cert(tmp_path, "hooks.example")
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    sni_seen = []
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    server_ctx.sni_callback = lambda sock, name, ctx: sni_seen.append(name)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **kw: real(
            "127.0.0.1" if host in ("hooks.example", "other.example") else host, port, *a, **kw
        ),
    )
    client_ctx = ssl.create_default_context(cafile=cert)
    try:
        port = server.server_address[1]
        with httpx.Client(transport=GuardedTransport(allow_loopback=True, verify=client_ctx)) as client:
            assert client.get(f"https://hooks.example:{port}/").status_code in (200, 404)
            with pytest.raises(httpx.ConnectError):  # same IP, wrong name: certificate check still bites
                client.get(f"https://other.example:{port}/")
        assert sni_seen[0] == "hooks.example"
    finally:
        server.shutdown()
        server.server_close()
