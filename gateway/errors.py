"""How a provider call failed, in words the chain and the breaker understand.

Every adapter turns vendor failures into a :class:`ProviderError` with an :class:`ErrorKind`; the chain
decides retry / failover / breaker from the kind alone, never from vendor specifics.
"""

from __future__ import annotations

import enum
import imaplib
import smtplib
import socket
import ssl
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

# A Retry-After further away than this is treated as garbage (a vendor bug, not a plan).
MAX_RETRY_AFTER_SECONDS = 7 * 24 * 3600.0

# Marks a failure as "the host name does not resolve" in every message derived from it (failure log,
# breaker cause, account state cause, self-check message), so the health page can tell the operator that
# the account's base URL / host needs checking (see gateway.selectors.recommendations).
DNS_CAUSE = "host name does not resolve: check the base URL"

_RATE_WORDS = ("rate limit", "rate-limit", "ratelimit", "too many requests", "quota", "throttl")


class ErrorKind(enum.StrEnum):
    TRANSIENT = "transient"  # timeout, connection error, 5xx: retry later / fail over
    THROTTLED = "throttled"  # 429 or a rate-limit 403: wait retry_after, then retry
    REAUTH = "reauth"  # credentials rejected: needs an operator, do not retry
    BAD_INPUT = "bad_input"  # the vendor refused our data: never retried, never trips the breaker
    NO_MATCH = "no_match"  # success without data

    @property
    def words(self) -> str:
        """What this kind means to the person who configured the account (dashboards show this; the raw
        kind and message stay one click away)."""
        return KIND_WORDS[self]

    @property
    def retryable(self) -> bool:
        return self in (ErrorKind.TRANSIENT, ErrorKind.THROTTLED)

    @property
    def counts_as_failure(self) -> bool:
        """Whether the breaker / health should count this against the provider account."""
        return self in (ErrorKind.TRANSIENT, ErrorKind.THROTTLED, ErrorKind.REAUTH)


KIND_WORDS = {
    ErrorKind.TRANSIENT: "The provider could not be reached or had a temporary failure",
    ErrorKind.THROTTLED: "The provider is limiting how often we may call it",
    ErrorKind.REAUTH: "The provider rejected the credentials",
    ErrorKind.BAD_INPUT: "The provider or the gateway refused the request as configured",
    ErrorKind.NO_MATCH: "The provider answered, without data",
}


def kind_words(kind: str) -> str:
    """``ErrorKind(kind).words``, or a plain fallback for a kind this version does not know."""
    try:
        return ErrorKind(kind).words
    except ValueError:
        return "The call failed"


class ProviderError(Exception):
    """A classified failure of one provider call."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        provider: str = "",
    ) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.message = message
        self.retry_after = retry_after
        self.status = status
        self.provider = provider

    @property
    def retryable(self) -> bool:
        return self.kind.retryable

    def __str__(self) -> str:
        bits = [f"[{self.kind.value}]"]
        if self.provider:
            bits.append(f"{self.provider}:")
        bits.append(self.message)
        if self.status is not None:
            bits.append(f"(HTTP {self.status})")
        if self.retry_after is not None:
            bits.append(f"(retry after {self.retry_after:g}s)")
        return " ".join(bits)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind.value!r}, message={self.message!r}, "
            f"retry_after={self.retry_after!r}, status={self.status!r}, provider={self.provider!r})"
        )


class ProvidersUnavailable(Exception):
    """Every account for a capability failed or is cooling down; retry the work at ``retry_at``."""

    def __init__(
        self,
        capability: str,
        retry_at: datetime | None,
        errors: Iterable[ProviderError] | Mapping[str, ProviderError] = (),
    ) -> None:
        self.capability = str(capability)
        self.retry_at = retry_at
        self.errors = dict(errors) if isinstance(errors, Mapping) else list(errors)
        when = f"; retry at {retry_at.isoformat()}" if retry_at else ""
        values = self.errors.values() if isinstance(self.errors, dict) else self.errors
        detail = "; ".join(str(e) for e in values)
        super().__init__(
            f"No provider available for {self.capability}{when}" + (f": {detail}" if detail else "")
        )


def parse_retry_after(value: str | float | int | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from ``now``: delta-seconds or an HTTP-date; garbage/negative -> None.

    An HTTP-date in the past means "retry now" (0.0): the server asked for a wait that already elapsed.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        if seconds != seconds or seconds < 0 or seconds > MAX_RETRY_AFTER_SECONDS:  # NaN check first
            return None
        return seconds
    text = str(value).strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        seconds = float(int(text))
        return seconds if seconds <= MAX_RETRY_AFTER_SECONDS else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    seconds = (when - now).total_seconds()
    if seconds > MAX_RETRY_AFTER_SECONDS:
        return None
    return max(0.0, seconds)


def _body_text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        return body[:4000].decode("utf-8", "replace").lower()
    if isinstance(body, str):
        return body[:4000].lower()
    return repr(body)[:4000].lower()


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    if isinstance(headers, httpx.Headers):
        return headers.get(name)
    lname = name.lower()
    for key, value in headers.items():
        if key.lower() == lname:
            return value
    return None


def classify_http(
    status: int, headers: Mapping[str, str] | None = None, body: Any = None
) -> ErrorKind | None:
    """The kind of failure an HTTP status means; None for a success (2xx) the adapter handles itself.

    403 is ambiguous: vendors use it both for "key lacks rights" and for "quota exhausted"; a
    Retry-After header or rate-limit wording in the body makes it THROTTLED, else REAUTH.
    """
    if 200 <= status < 300:
        return None
    if status == 429:
        return ErrorKind.THROTTLED
    if status == 401 or status == 407:
        return ErrorKind.REAUTH
    if status == 403:
        text = _body_text(body)
        if _header(headers, "Retry-After") is not None or any(w in text for w in _RATE_WORDS):
            return ErrorKind.THROTTLED
        return ErrorKind.REAUTH
    if status in (408, 425):
        return ErrorKind.TRANSIENT
    if 500 <= status < 600:
        return ErrorKind.TRANSIENT
    if 300 <= status < 400:
        # We never follow redirects: a vendor redirect means a misconfigured base URL, not bad data.
        return ErrorKind.TRANSIENT
    if 400 <= status < 500:
        return ErrorKind.BAD_INPUT
    # 1xx or nonsense status codes: treat as a broken server.
    return ErrorKind.TRANSIENT


def error_from_response(
    response: httpx.Response, *, provider: str = "", message: str = "", now: datetime | None = None
) -> ProviderError:
    """A ProviderError for a non-2xx response (kind from :func:`classify_http`, Retry-After honoured)."""
    try:
        body = response.content
    except httpx.ResponseNotRead:
        body = b""
    kind = classify_http(response.status_code, response.headers, body) or ErrorKind.TRANSIENT
    retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
    detail = message or _short_detail(body) or response.reason_phrase
    return ProviderError(
        kind,
        f"HTTP {response.status_code} from {provider or 'provider'}: {detail}",
        retry_after=retry_after,
        status=response.status_code,
        provider=provider,
    )


def _short_detail(body: bytes) -> str:
    text = body[:300].decode("utf-8", "replace").strip()
    return " ".join(text.split())


def classify_exception(exc: BaseException, *, provider: str = "") -> ProviderError:
    """A ProviderError for a transport-level exception (httpx, smtplib, imaplib, socket, ssl)."""
    if isinstance(exc, ProviderError):
        return exc
    # Imported lazily: ssrf imports this module.
    from gateway.ssrf import UnsafeURL

    kind = ErrorKind.TRANSIENT
    status: int | None = None
    message = f"{type(exc).__name__}: {exc}"
    dns = dns_failure(exc)
    if dns is not None:
        # Transient for the call (resolvers fail for seconds at a time); when it persists the breaker opens
        # and the account's state cause carries DNS_CAUSE. Never the data's fault, so never bad input.
        return ProviderError(ErrorKind.TRANSIENT, f"{DNS_CAUSE} ({dns})", provider=provider)
    if isinstance(exc, UnsafeURL):
        kind = ErrorKind.BAD_INPUT
    elif isinstance(exc, httpx.HTTPStatusError):
        return error_from_response(exc.response, provider=provider)
    elif isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
        kind = ErrorKind.TRANSIENT
    elif isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL | httpx.TooManyRedirects):
        kind = ErrorKind.BAD_INPUT
    elif isinstance(exc, smtplib.SMTPAuthenticationError):
        kind, status = ErrorKind.REAUTH, exc.smtp_code
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        kind = ErrorKind.BAD_INPUT
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        status = codes[0] if codes else None
        kind = smtp_code_kind(status) if status else ErrorKind.BAD_INPUT
    elif isinstance(exc, smtplib.SMTPResponseException):
        status = exc.smtp_code
        kind = smtp_code_kind(status)
    elif isinstance(exc, smtplib.SMTPException):
        kind = ErrorKind.TRANSIENT  # disconnects, connect errors, protocol confusion
    elif isinstance(exc, imaplib.IMAP4.error):
        text = str(exc).lower()
        if "authenticationfailed" in text or "authentication failed" in text or "login" in text:
            kind = ErrorKind.REAUTH
        elif isinstance(exc, imaplib.IMAP4.abort):
            kind = ErrorKind.TRANSIENT
        else:
            kind = ErrorKind.BAD_INPUT
    elif isinstance(exc, ssl.SSLCertVerificationError):
        kind = ErrorKind.BAD_INPUT
    elif isinstance(exc, TimeoutError | ConnectionError | OSError | EOFError):
        kind = ErrorKind.TRANSIENT
    else:
        kind = ErrorKind.TRANSIENT
    return ProviderError(kind, message, status=status, provider=provider)


def dns_failure(exc: BaseException) -> str | None:
    """A description of the name-resolution failure behind ``exc``, or None when DNS is not the cause.

    Recognizes the guard's :class:`gateway.ssrf.HostUnresolvable`, ``socket.gaierror`` and any exception
    (e.g. ``httpx.ConnectError``) whose ``__cause__``/``__context__`` chain contains one of them.
    """
    from gateway.ssrf import HostUnresolvable

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, HostUnresolvable | socket.gaierror):
            return str(current)
        current = current.__cause__ or current.__context__
    return None


def smtp_code_kind(code: int) -> ErrorKind:
    """SMTP reply codes: 530/534/535/538 auth; any 4xx transient; any other 5xx refuses our message."""
    if code in (530, 534, 535, 538):
        return ErrorKind.REAUTH
    if 500 <= code < 600:
        return ErrorKind.BAD_INPUT
    return ErrorKind.TRANSIENT
