"""SSRF guard for every user-supplied destination (webhook URLs, adapter base URLs, SMTP/IMAP hosts).

Names are resolved and every resulting address is checked; the HTTP transport and the SMTP/IMAP
socket factories connect to the *checked* address (TLS still verifies the original host name), so a
DNS answer that changes between check and connect (rebinding) cannot reach an internal address.

Loopback is refused in every profile unless the exact address and port are on the operator's allow-list,
``settings.GATEWAY_LOOPBACK_ALLOW`` (env ``AICMO_GATEWAY_LOOPBACK_ALLOW``, comma separated), e.g.
``["127.0.0.1:1025", "[::1]:1025", "localhost:8025"]`` (``localhost`` stands for 127.0.0.1 and ::1).
The allow-list is read at every check, so the save-time check and the connect-time check agree. Every
spelling of a loopback address (``127.1``, ``2130706433``, ``0x7f000001``, ``017700000001``,
``[::ffff:127.0.0.1]``, ``localhost``, a name resolving to 127/8 or ::1) is reduced to the address first.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from gateway.deadline import DeadlineStream, bounded

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

HTTP_SCHEMES = {"http": 80, "https": 443}

METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS / GCP / Azure / OpenStack
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6 IMDS
    }
)
# Shared address space (RFC 6598) and NAT64 are not "private" to the ipaddress module but route inward.
_EXTRA_BLOCKED_NETS = (
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("198.18.0.0/15"),
)
_NAT64_WKP = ipaddress.ip_network("64:ff9b::/96")

_IPV4_PART = re.compile(r"^(0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)$", re.IGNORECASE)


LOCALHOST_ADDRESSES = ("127.0.0.1", "::1")


class UnsafeURL(ValueError):
    """The destination is not allowed (internal address, bad scheme, unparseable)."""


class HostUnresolvable(OSError):
    """The host name does not resolve (now). Transient for one call; when it persists, the account's
    configuration (its base URL / host) is what needs fixing, not the data of the call."""

    def __init__(self, host: str, detail: str = "") -> None:
        self.host = host
        super().__init__(f"Host name {host!r} does not resolve" + (f": {detail}" if detail else ""))


def _is_localhost_name(host: str) -> bool:
    """RFC 6761: ``localhost`` and every name under ``.localhost`` are loopback, whatever DNS says."""
    lowered = host.lower().rstrip(".")
    return lowered in {"localhost", "localhost.localdomain"} or lowered.endswith(".localhost")


def _split_host_port(entry: str) -> tuple[str, int]:
    host, sep, port = entry.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ImproperlyConfigured(f"GATEWAY_LOOPBACK_ALLOW entry {entry!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def loopback_allow_list() -> frozenset[tuple[IPAddress, int]]:
    """The (loopback address, port) pairs of ``settings.GATEWAY_LOOPBACK_ALLOW``.

    Raises ImproperlyConfigured for an entry that is not ``host:port`` with a loopback host.
    """
    allowed: set[tuple[IPAddress, int]] = set()
    for entry in getattr(settings, "GATEWAY_LOOPBACK_ALLOW", ()) or ():
        host, port = _split_host_port(str(entry))
        if _is_localhost_name(host):
            addresses = [ipaddress.ip_address(a) for a in LOCALHOST_ADDRESSES]
        else:
            literal = ip_literal(host)
            if literal is None or not _unmapped(literal).is_loopback:
                raise ImproperlyConfigured(
                    f"GATEWAY_LOOPBACK_ALLOW entry {entry!r}: {host!r} is not a loopback address"
                )
            addresses = [_unmapped(literal)]
        allowed.update((a, port) for a in addresses)
    return frozenset(allowed)


def _unmapped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def loopback_allowed(ip: IPAddress, port: int | None) -> bool:
    """Whether the operator allow-listed this loopback address and port."""
    return port is not None and (_unmapped(ip), int(port)) in loopback_allow_list()


def parse_ipv4_legacy(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a BSD ``inet_aton`` would read from ``host`` (``2130706433``, ``0x7f.1``,
    ``017700000001``, ``127.1``), or None when it is not such a literal."""
    parts = host.rstrip(".").split(".") if host else []
    if not parts or len(parts) > 4 or not all(_IPV4_PART.match(p) for p in parts):
        return None
    try:
        values = [
            int(p, 16) if p.lower().startswith("0x") else int(p, 8) if p.startswith("0") else int(p)
            for p in parts
        ]
    except ValueError:
        return None  # "0x" alone
    if any(p.lower() == "0x" for p in parts):
        return None
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for v in head:
        number = number * 256 + v
    number = number * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(number)


def ip_literal(host: str) -> IPAddress | None:
    """An IP address written in ``host`` in any notation (bracketed IPv6, zone ids, legacy IPv4)."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return parse_ipv4_legacy(host)


def blocked_reason(ip: IPAddress | str, port: int | None = None) -> str | None:
    """Why connecting to ``ip`` (at ``port``) is refused, or None when it is a public unicast address or
    an allow-listed loopback address and port (see :func:`loopback_allowed`)."""
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is None and ip in _NAT64_WKP:
            mapped = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if mapped is None and ip.teredo:
            mapped = ip.teredo[1]
        if mapped is not None:
            # Only an IPv4-mapped address is the same endpoint as its IPv4 address; a 6to4, NAT64 or
            # Teredo address embedding an allow-listed loopback address goes elsewhere: never allowed.
            same_endpoint = ip.ipv4_mapped is not None
            reason = blocked_reason(mapped, port if same_endpoint else None)
            return f"{reason} (embedded in {ip})" if reason else None
        # IPv4-compatible (deprecated) ::a.b.c.d
        if int(ip) >> 32 == 0 and int(ip) > 1:
            reason = blocked_reason(ipaddress.IPv4Address(int(ip)), None)
            return f"{reason} (embedded in {ip})" if reason else "IPv4-compatible IPv6 address"
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    if ip.is_loopback:
        return None if loopback_allowed(ip, port) else "loopback address (not on GATEWAY_LOOPBACK_ALLOW)"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:
        return "multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "broadcast address"
    if ip.is_private:
        return "private address"
    if ip.is_reserved:
        return "reserved address"
    if any(ip in net for net in _EXTRA_BLOCKED_NETS if net.version == ip.version):
        return "internal (shared/benchmark) address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local address"
    if not ip.is_global:
        return "non-global address"
    return None


def is_blocked_ip(ip: IPAddress | str, port: int | None = None) -> bool:
    return blocked_reason(ip, port) is not None


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise UnsafeURL(f"Invalid host name {host!r}: {exc}") from exc
    except socket.gaierror as exc:
        raise HostUnresolvable(host, str(exc)) from exc
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in seen:
            seen.append(address)
    return seen


def check_host(host: str, port: int | None = None) -> list[str]:
    """Resolve ``host`` and return its addresses, refusing if ANY of them is internal.

    Refusing on any (not all) bad address closes the "one public + one private A record" trick.
    Raises :class:`UnsafeURL` (refused or malformed) or :class:`HostUnresolvable` (DNS has no answer).
    """
    if not host or not host.strip():
        raise UnsafeURL("Missing host name")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if any(ch in host for ch in "/\\@ \t\r\n#?"):
        raise UnsafeURL(f"Invalid host name {host!r}")
    if port is not None and not 0 < int(port) < 65536:
        raise UnsafeURL(f"Invalid port {port!r}")
    literal = ip_literal(host)
    if literal is not None:
        reason = blocked_reason(literal, port)
        if reason:
            raise UnsafeURL(f"Refusing to connect to {host!r}: {reason} ({literal})")
        return [str(literal)]
    addresses = list(LOCALHOST_ADDRESSES) if _is_localhost_name(host) else _resolve(host, port or 0)
    if not addresses:
        raise HostUnresolvable(host, "no address")
    for address in addresses:
        reason = blocked_reason(address, port)
        if reason:
            raise UnsafeURL(f"Refusing to connect to {host!r}: it resolves to a {reason} ({address})")
    return addresses


def check_url(url: str, *, resolve: bool = True, schemes: dict[str, int] | None = None) -> str:
    """Validate a user-supplied URL and return it; raises :class:`UnsafeURL` (or
    :class:`HostUnresolvable` when ``resolve`` and the name has no address).

    ``schemes`` maps the allowed schemes to their default ports (default: http 80, https 443; the mail
    adapters pass ``smtp``/``smtps``/``imap``/``imaps``). ``resolve=False`` only checks syntax and
    literal addresses (the connect-time check resolves).
    """
    schemes = schemes or HTTP_SCHEMES
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURL("Missing URL")
    url = url.strip()
    if any(ord(ch) < 33 for ch in url):
        raise UnsafeURL("URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"Invalid URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise UnsafeURL(f"Only {allowed} URLs are allowed, not {parts.scheme or 'no scheme'!r}")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("URLs with embedded credentials are not allowed")
    host = parts.hostname
    if not host:
        raise UnsafeURL(f"URL {url!r} has no host")
    if port is None:
        port = schemes[scheme]
    if resolve:
        check_host(host, port)
    else:
        literal = ip_literal(host)
        literals = [literal] if literal is not None else []
        if _is_localhost_name(host):
            literals = [ipaddress.ip_address(a) for a in LOCALHOST_ADDRESSES]
        for address in literals:
            reason = blocked_reason(address, port)
            if reason:
                raise UnsafeURL(f"Refusing to connect to {host!r}: {reason} ({address})")
    return url


def guarded_create_connection(
    host: str,
    port: int,
    timeout: float | None = None,
    *,
    source_address: tuple[str, int] | None = None,
) -> socket.socket:
    """``socket.create_connection`` that only ever connects to addresses :func:`check_host` approved."""
    addresses = check_host(host, port)
    last_error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout, source_address=source_address)
        except OSError as exc:
            last_error = exc
    assert last_error is not None
    raise last_error


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore network backend: resolve + check at connect time, then connect to the checked IP; every
    stream obeys the call's :func:`gateway.deadline.total_deadline`.

    TLS is layered on top by httpcore with ``server_hostname`` = the URL host, so SNI and certificate
    verification still use the real name.
    """

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[tuple] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = check_host(host, port)
        last_error: Exception | None = None
        for address in addresses:
            try:
                with bounded(timeout, httpcore.ConnectTimeout) as limit:
                    stream = super().connect_tcp(address, port, limit, local_address, socket_options)
                return DeadlineStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    def connect_unix_socket(self, *args, **kwargs):  # pragma: no cover - defensive
        raise UnsafeURL("Unix sockets are not allowed")


class GuardedTransport(httpx.HTTPTransport):
    """httpx transport for user-supplied destinations: no proxies from the environment, scheme check
    per request, resolve-and-check at connect time. Pair with ``follow_redirects=False``."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("trust_env", False)
        kwargs.pop("proxy", None)
        kwargs.pop("uds", None)
        super().__init__(**kwargs)
        self._pool._network_backend = _GuardedBackend()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in HTTP_SCHEMES:
            raise UnsafeURL(f"Only http and https URLs are allowed, not {request.url.scheme!r}")
        literal = ip_literal(request.url.host)
        if literal is not None:
            port = request.url.port or HTTP_SCHEMES[request.url.scheme]
            reason = blocked_reason(literal, port)
            if reason:
                raise UnsafeURL(f"Refusing to connect to {request.url.host!r}: {reason} ({literal})")
        return super().handle_request(request)


def guarded_client(
    *,
    base_url: str = "",
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """An httpx.Client that never follows redirects and connects only to checked addresses.

    ``verify`` is an SSL context for a private CA (see :func:`gateway.tls.tls_context`)."""
    return httpx.Client(
        base_url=base_url,
        timeout=timeout,
        headers=headers,
        follow_redirects=False,
        trust_env=False,
        transport=GuardedTransport(verify=verify),
    )
