import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from gateway.ssrf import (
    HostUnresolvable,
    UnsafeURL,
    blocked_reason,
    check_host,
    check_url,
    guarded_client,
    guarded_create_connection,
    loopback_allow_list,
    parse_ipv4_legacy,
)

ROOT = Path(__file__).resolve().parents[2]


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
        check_url(url)


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
        check_url(url, resolve=False)


def test_public_literal_is_allowed():
    assert check_url("https://93.184.215.14/hook") == "https://93.184.215.14/hook"
    assert check_host("8.8.8.8", 443) == ["8.8.8.8"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.1:8025/",
        "http://2130706433:8025/",
        "http://0x7f000001:8025/",
        "http://[::ffff:127.0.0.1]:8025/",
        "http://localhost:8025/",
        "http://mail.localhost:8025/",
        "http://[::1]:8025/",
    ],
)
def test_loopback_is_refused_in_the_test_profile_unless_allow_listed(url):
    """No profile allows loopback wholesale: only exact allow-listed host:port pairs pass."""
    with pytest.raises(UnsafeURL, match="loopback"):
        check_url(url)
    with pytest.raises(UnsafeURL, match="loopback"):
        check_url(url, resolve=False)
    with override_settings(GATEWAY_LOOPBACK_ALLOW=["localhost:8025"]):
        assert check_url(url) == url
        with pytest.raises(UnsafeURL, match="loopback"):
            check_url(url.replace(":8025", ":8026"))


def test_dev_profile_allows_no_loopback_by_default():
    """``make run`` (AICMO_ENV=dev) has no loopback allowance unless the operator lists a host:port."""
    code = (
        "import django; django.setup();"
        "from django.conf import settings; from gateway.ssrf import UnsafeURL, check_url;"
        "print(settings.GATEWAY_LOOPBACK_ALLOW);"
        'exec(\'try:\\n check_url("http://127.1:8000/")\\n print("allowed")\\nexcept UnsafeURL:\\n print("refused")\')'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AICMO_", "DJANGO_"))}
    env |= {"AICMO_ENV": "dev", "DJANGO_SETTINGS_MODULE": "aicmo.settings"}
    for allow, expected in (
        ({}, ["[]", "refused"]),
        ({"AICMO_GATEWAY_LOOPBACK_ALLOW": "127.0.0.1:8000"}, ["['127.0.0.1:8000']", "allowed"]),
    ):
        run = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env | allow,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.split() == expected


def test_allow_list_entries_must_be_loopback_host_port():
    with override_settings(GATEWAY_LOOPBACK_ALLOW=["127.0.0.1:1025", "[::1]:1025", "localhost:2525"]):
        assert loopback_allow_list() == {
            (ipaddress.ip_address("127.0.0.1"), 1025),
            (ipaddress.ip_address("::1"), 1025),
            (ipaddress.ip_address("127.0.0.1"), 2525),
            (ipaddress.ip_address("::1"), 2525),
        }
    for bad in ("127.0.0.1", "10.0.0.1:25", "example.com:25", "127.0.0.1:0", "127.0.0.1:x"):
        with override_settings(GATEWAY_LOOPBACK_ALLOW=[bad]), pytest.raises(ImproperlyConfigured):
            loopback_allow_list()


def test_allow_listed_loopback_never_opens_private_or_metadata_addresses():
    with override_settings(GATEWAY_LOOPBACK_ALLOW=["127.0.0.1:80"]):
        assert check_host("127.0.0.1", 80) == ["127.0.0.1"]
        assert check_host("::ffff:127.0.0.1", 80) == ["::ffff:7f00:1"]  # the same endpoint
        # 6to4 / NAT64 / IPv4-compatible forms embed the address but route elsewhere: still refused
        for host in (
            "169.254.169.254",
            "10.1.2.3",
            "127.0.0.2",
            "2002:7f00:1::",
            "64:ff9b::7f00:1",
            "::7f00:1",
        ):
            with pytest.raises(UnsafeURL):
                check_host(host, 80)


def _spellings(ip: ipaddress.IPv4Address) -> list[str]:
    """Ways to write ``ip`` that a URL parser or ``inet_aton`` accepts."""
    n = int(ip)
    a, b, c, d = ip.packed
    return [
        str(ip),
        str(n),
        hex(n),
        "0" + oct(n)[2:],
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}",
        f"0x{a:x}.{b}.{c}.{d}",
        f"0{a:o}.{b}.{c}.{d}",
        f"[::ffff:{ip}]",
        f"[::ffff:{(n >> 16):x}:{(n & 0xFFFF):x}]",
    ]


@given(
    st.integers(min_value=0, max_value=2**24 - 1).map(lambda low: ipaddress.IPv4Address((127 << 24) | low)),
    st.integers(min_value=1, max_value=65534),
)
@hypothesis_settings(max_examples=60, deadline=None)  # each example makes ~40 guard checks
def test_every_spelling_of_loopback_is_one_address_to_the_guard(ip, port):
    """Refused without an allow-list entry; with ``ip:port`` allowed, every spelling passes at that port
    and none at the next port, at save time (check_url with and without DNS) and at connect time."""
    urls = [f"http://{form}:{port}/" for form in _spellings(ip)]
    with override_settings(GATEWAY_LOOPBACK_ALLOW=[]):
        for url in urls:
            with pytest.raises(UnsafeURL, match="loopback"):
                check_url(url, resolve=False)
            with pytest.raises(UnsafeURL, match="loopback"):
                check_url(url)
    with override_settings(GATEWAY_LOOPBACK_ALLOW=[f"{ip}:{port}"]):
        for url in urls:
            assert check_url(url) == url
            with pytest.raises(UnsafeURL, match="loopback"):
                check_url(url.replace(f":{port}/", f":{port + 1}/"))


def test_unresolvable_name_is_not_an_unsafe_url(dns_down):
    with pytest.raises(HostUnresolvable, match="does not resolve") as info:
        check_url("https://api.typo-vendor.example/v1")
    assert not isinstance(info.value, UnsafeURL) and info.value.host == "api.typo-vendor.example"


def test_mail_schemes_go_through_the_same_guard():
    schemes = {"smtp": 587, "smtps": 465, "smtp+plain": 25}
    assert check_url("smtp://93.184.215.14", schemes=schemes) == "smtp://93.184.215.14"
    with pytest.raises(UnsafeURL, match="loopback"):
        check_url("smtp+plain://127.1:1025", schemes=schemes)
    with override_settings(GATEWAY_LOOPBACK_ALLOW=["127.0.0.1:1025"]):
        assert check_url("smtp+plain://127.1:1025", schemes=schemes)
        with pytest.raises(UnsafeURL, match="loopback"):
            check_url("smtp://127.0.0.1", schemes=schemes)  # default port 587 is not allowed
    with pytest.raises(UnsafeURL, match="Only smtp://"):
        check_url("http://93.184.215.14", schemes=schemes)


def test_name_resolving_to_internal_address_is_refused(monkeypatch):
    def fake_getaddrinfo(host, port, *args, **kwargs):
        assert host == "rebind.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(UnsafeURL, match="10.0.0.7"):
        check_url("https://rebind.example/hook")


def test_transport_checks_at_connect_time_and_does_not_follow_redirects(
    make_httpserver, loopback_allow, resolve_to_loopback
):
    """The name resolves to loopback at connect time: refused until its port is allowed, then reached."""
    httpserver = make_httpserver
    httpserver.clear()
    httpserver.expect_request("/hook").respond_with_data(
        "", status=302, headers={"Location": "http://10.0.0.1/"}
    )
    resolve_to_loopback("hooks.example")
    url = f"http://hooks.example:{httpserver.port}/hook"
    with guarded_client() as client, pytest.raises(UnsafeURL, match="loopback"):
        client.get(url)
    loopback_allow("127.0.0.1", httpserver.port)
    with guarded_client() as client:
        response = client.get(url)
    assert response.status_code == 302  # returned, not followed
    assert httpserver.log[0][0].headers["Host"] == f"hooks.example:{httpserver.port}"


def test_transport_refuses_literal_forms_before_connecting():
    with guarded_client() as client:
        for url in ("http://2130706433/", "http://0x7f.1/", "http://[::ffff:7f00:1]/"):
            with pytest.raises((UnsafeURL, httpx.InvalidURL)):
                client.get(url)


def test_guarded_create_connection_for_mail_hosts(smtp_sink, settings):
    sock = guarded_create_connection(smtp_sink.host, smtp_sink.port, 5)
    sock.close()
    settings.GATEWAY_LOOPBACK_ALLOW = []
    with pytest.raises(UnsafeURL):
        guarded_create_connection(smtp_sink.host, smtp_sink.port, 5)


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


def test_https_connects_to_checked_ip_but_verifies_certificate_by_name(
    tmp_path, resolve_to_loopback, loopback_allow
):
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
    resolve_to_loopback("hooks.example", "other.example")
    client_ctx = ssl.create_default_context(cafile=cert)
    try:
        port = server.server_address[1]
        loopback_allow("127.0.0.1", port)
        with httpx.Client(transport=GuardedTransport(verify=client_ctx)) as client:
            assert client.get(f"https://hooks.example:{port}/").status_code in (200, 404)
            with pytest.raises(httpx.ConnectError):  # same IP, wrong name: certificate check still bites
                client.get(f"https://other.example:{port}/")
        assert sni_seen[0] == "hooks.example"
    finally:
        server.shutdown()
        server.server_close()


def test_localhost_name_needs_both_its_addresses_allowed_with_or_without_dns():
    """``localhost`` is 127.0.0.1 and ::1 (RFC 6761, never asked of DNS): allowing one is not enough."""
    with override_settings(GATEWAY_LOOPBACK_ALLOW=["127.0.0.1:8025"]):
        assert check_url("http://127.1:8025/") == "http://127.1:8025/"
        for resolve in (True, False):
            with pytest.raises(UnsafeURL, match="::1"):
                check_url("http://localhost:8025/", resolve=resolve)
    with override_settings(GATEWAY_LOOPBACK_ALLOW=["127.0.0.1:8025", "[::1]:8025"]):
        assert check_host("app.localhost", 8025) == ["127.0.0.1", "::1"]
