"""The adapter contract: one class per vendor, one method per capability, typed results, classified errors."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar

import httpx

from gateway.capabilities import (
    AdCampaignResult,
    AdCampaignSpec,
    AdInsight,
    Capability,
    CrmRecord,
    CrmSyncResult,
    EnrichmentResult,
    InboundMessage,
    OutgoingEmail,
    PersonQuery,
    SendResult,
    SocialMetrics,
    SocialPost,
    SocialPostResult,
    VerificationResult,
    WebhookEvent,
    WebhookResult,
)
from gateway.deadline import DeadlineExceeded, total_deadline
from gateway.errors import ErrorKind, ProviderError, classify_exception, error_from_response
from gateway.ssrf import HTTP_SCHEMES, UnsafeURL, check_url, guarded_client
from gateway.tls import tls_context


@dataclass(frozen=True)
class FieldSpec:
    """How one credential or option is asked for on the dashboard's account form.

    ``kind``: ``text``, ``secret`` (credentials: write-only, never shown back), ``email``, ``number``
    (a float; ``minimum`` when given) or ``bool`` (a checkbox, stored as ``true``/``false``).
    """

    label: str
    help: str = ""
    kind: str = "text"
    required: bool = False
    minimum: float | None = None


class Adapter:
    """Base class for provider adapters.

    Subclasses set the class attributes and implement the methods of the capabilities they declare.
    An instance is cheap and holds one lazily built httpx.Client (connection reuse across calls);
    call :meth:`close` (or use it as a context manager) when done.
    """

    key: ClassVar[str] = ""
    label: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    credential_fields: ClassVar[tuple[str, ...]] = ()
    option_fields: ClassVar[tuple[str, ...]] = ()
    # The form spec of every name in credential_fields + option_fields (tests/gateway/test_forms.py
    # holds them equal), and the vendor page explaining where to find those values.
    field_specs: ClassVar[Mapping[str, FieldSpec]] = {}
    docs_url: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    url_schemes: ClassVar[dict[str, int]] = HTTP_SCHEMES  # allowed base URL schemes -> default port
    base_url_required: ClassVar[bool] = False
    base_url_help: ClassVar[str] = ""
    is_demo: ClassVar[bool] = False
    # Decoded bytes of an answer read at most; a vendor answering more fails the call (transient), unless
    # the adapter only needs the start of it (``response_body_truncate``).
    response_body_limit: ClassVar[int] = 32 * 1024 * 1024
    response_body_truncate: ClassVar[bool] = False

    def __init__(
        self,
        *,
        base_url: str | None = None,
        credentials: Mapping[str, Any] | None = None,
        timeout: float = 10.0,
        options: Mapping[str, Any] | None = None,
        ca_pem: str = "",
    ) -> None:
        """``ca_pem``: PEM certificates of a private CA trusted in addition to the system store (the
        account's ``ca_pem``, validated on save by :func:`gateway.tls.validate_ca_pem`)."""
        self.base_url = (base_url or self.default_base_url or "").rstrip("/")
        self.credentials = dict(credentials or {})
        self.timeout = float(timeout)
        self.options = dict(options or {})
        self.ca_pem = ca_pem or ""
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} key={self.key!r} base_url={self.base_url!r}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------

    def credential(self, name: str) -> str:
        value = self.credentials.get(name)
        if value in (None, ""):
            raise ProviderError(ErrorKind.REAUTH, f"Missing credential {name!r}", provider=self.key)
        return str(value)

    def default_headers(self) -> dict[str, str]:
        """Headers sent on every request (auth headers go here in subclasses)."""
        return {"Accept": "application/json", "User-Agent": "AICMO-gateway/1"}

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            if self.base_url:
                try:
                    check_url(self.base_url, resolve=False, schemes=self.url_schemes)
                except UnsafeURL as exc:
                    raise ProviderError(ErrorKind.BAD_INPUT, str(exc), provider=self.key) from exc
            self._client = guarded_client(
                base_url=self.base_url,
                timeout=self.timeout,
                headers=self.default_headers(),
                verify=self.tls_context() if self.ca_pem else True,
            )
        return self._client

    def tls_context(self):
        """The SSL context for this account: system trust store plus the account's ``ca_pem``."""
        return tls_context(ca_pem=self.ca_pem)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def request(self, method: str, url: str, *, expect: Iterable[int] = (), **kwargs) -> httpx.Response:
        """Send a request and read its answer within the account's timeout *in total* (connect, send, read
        headers and body: :func:`gateway.deadline.total_deadline`), reading at most
        ``response_body_limit`` bytes of (decoded) body. Transport failures, the deadline, an oversized body
        and non-2xx answers (unless in ``expect``) raise ProviderError; the returned response is read."""
        with total_deadline(self.timeout) as deadline:
            try:
                with self.client.stream(method, url, **kwargs) as streamed:
                    response = self._read_capped(streamed)
            except ProviderError:
                raise
            except httpx.TimeoutException as exc:
                if isinstance(exc.__cause__, DeadlineExceeded) or deadline.expired:
                    raise self.fail(
                        ErrorKind.TRANSIENT,
                        f"{self.label or self.key} exceeded the {self.timeout:g} s total deadline "
                        f"(connect + send + read) ({type(exc).__name__})",
                    ) from exc
                raise classify_exception(exc, provider=self.key) from exc
            except (httpx.HTTPError, UnsafeURL, OSError) as exc:
                raise classify_exception(exc, provider=self.key) from exc
        if response.status_code in set(expect) or 200 <= response.status_code < 300:
            return response
        raise self.error_for(response)

    def _read_capped(self, streamed: httpx.Response) -> httpx.Response:
        """The streamed answer read into memory, at most ``response_body_limit`` decoded bytes (gzip bombs
        included): past it, truncated when ``response_body_truncate``, else a transient ProviderError."""
        limit = self.response_body_limit
        chunks: list[bytes] = []
        size = 0
        for chunk in streamed.iter_bytes():
            size += len(chunk)
            if size > limit:
                if not self.response_body_truncate:
                    raise self.fail(
                        ErrorKind.TRANSIENT,
                        f"{self.label or self.key} answered with more than {limit:,} bytes; not read further",
                        status=streamed.status_code,
                    )
                chunks.append(chunk[: len(chunk) - (size - limit)])
                break
            chunks.append(chunk)
        # The body is decoded already: the copy drops Content-Encoding so it is not decoded twice.
        headers = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() != "content-encoding"]
        response = httpx.Response(
            streamed.status_code,
            headers=headers,
            content=b"".join(chunks),
            request=streamed.request,
            extensions={"http_version": streamed.extensions.get("http_version", b"HTTP/1.1")},
        )
        response.read()
        return response

    def error_for(self, response: httpx.Response) -> ProviderError:
        """Classify a failed response; vendors override to read their own error bodies."""
        return error_from_response(response, provider=self.key)

    @staticmethod
    def error_body(response: httpx.Response) -> dict[str, Any]:
        """The JSON object of an error response, or {} when the body is not a JSON object."""
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            return {}
        return body if isinstance(body, dict) else {}

    def json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProviderError(
                ErrorKind.TRANSIENT,
                f"Malformed JSON from {self.key}: {response.text[:200]!r}",
                status=response.status_code,
                provider=self.key,
            ) from exc

    def fail(self, kind: ErrorKind, message: str, **kwargs) -> ProviderError:
        return ProviderError(kind, message, provider=self.key, **kwargs)

    def unsupported(self, capability: str) -> NotImplementedError:
        return NotImplementedError(f"{type(self).__name__} does not provide {capability}")

    # -- health -----------------------------------------------------------------------------------

    def health_check(self) -> None:
        """The cheapest authenticated call; raises ProviderError on failure."""
        raise self.unsupported("health_check")

    # -- capabilities (method name == capability) -----------------------------------------------

    def enrich_person(self, query: PersonQuery) -> EnrichmentResult:
        raise self.unsupported(Capability.ENRICH_PERSON)

    def enrich_people(self, queries: Sequence[PersonQuery]) -> list[EnrichmentResult]:
        """Results in the order of ``queries``; adapters with a bulk endpoint override this."""
        return [self.enrich_person(q) for q in queries]

    def verify_email(self, email: str) -> VerificationResult:
        raise self.unsupported(Capability.VERIFY_EMAIL)

    def send_email(self, msg: OutgoingEmail) -> SendResult:
        raise self.unsupported(Capability.SEND_EMAIL)

    def send_emails(self, msgs: Sequence[OutgoingEmail]) -> list[SendResult | ProviderError]:
        """Send a batch; per-message failures are returned in place, not raised."""
        out: list[SendResult | ProviderError] = []
        for msg in msgs:
            try:
                out.append(self.send_email(msg))
            except ProviderError as exc:
                out.append(exc)
        return out

    def fetch_replies(self, since: datetime | date, known_message_ids: Iterable[str]) -> list[InboundMessage]:
        raise self.unsupported(Capability.FETCH_REPLIES)

    def sync_crm(self, records: Sequence[CrmRecord]) -> CrmSyncResult:
        raise self.unsupported(Capability.SYNC_CRM)

    def post_social(self, post: SocialPost) -> SocialPostResult:
        raise self.unsupported(Capability.POST_SOCIAL)

    def social_metrics(self, external_id: str) -> SocialMetrics:
        raise self.unsupported("social_metrics")

    def run_ads(self, spec: AdCampaignSpec) -> AdCampaignResult:
        raise self.unsupported(Capability.RUN_ADS)

    def pause_ad(self, external_id: str) -> AdCampaignResult:
        raise self.unsupported("pause_ad")

    def resume_ad(self, external_id: str) -> AdCampaignResult:
        raise self.unsupported("resume_ad")

    def fetch_ad_insights(self, external_id: str, since: date, until: date) -> list[AdInsight]:
        raise self.unsupported(Capability.FETCH_AD_INSIGHTS)

    def dispatch_webhook(self, url: str, secret: str, event: WebhookEvent) -> WebhookResult:
        raise self.unsupported(Capability.DISPATCH_WEBHOOK)
