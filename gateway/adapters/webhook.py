"""Outbound webhooks to user URLs, signed per Standard Webhooks; redirects are failures, 410 disables."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

from gateway.adapters.base import Adapter
from gateway.capabilities import Capability, WebhookEvent, WebhookResult
from gateway.errors import ErrorKind, error_from_response
from gateway.signing import InvalidSecret, signature_headers
from gateway.ssrf import UnsafeURL, check_url


def webhook_body(event: WebhookEvent, timestamp: datetime) -> bytes:
    """The JSON envelope recommended by Standard Webhooks: ``{type, timestamp, data}``."""
    envelope = {
        "type": event.event_type,
        "timestamp": timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": event.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True, default=str).encode()


class WebhookAdapter(Adapter):
    """POSTs one signed event to one user URL. The retry schedule (hours, backoff + jitter) belongs to the
    caller's task; this adapter reports each attempt's outcome as a result or a classified error."""

    key = "webhook"
    label = "Outbound webhook"
    capabilities = frozenset({Capability.DISPATCH_WEBHOOK})
    credential_fields = ()
    default_base_url = ""
    # Only the status and headers decide a delivery; the start of the body is kept for the error text.
    response_body_limit = 64 * 1024
    response_body_truncate = True

    def dispatch_webhook(self, url: str, secret: str, event: WebhookEvent) -> WebhookResult:
        try:
            check_url(url, resolve=False)
        except UnsafeURL as exc:
            raise self.fail(ErrorKind.BAD_INPUT, str(exc)) from exc
        event_id = event.event_id or f"msg_{uuid.uuid4().hex}"
        sent_at = event.timestamp or datetime.now(UTC)
        body = webhook_body(event, sent_at)
        try:
            headers = signature_headers(secret, event_id, int(time.time()), body)
        except (InvalidSecret, ValueError) as exc:
            raise self.fail(ErrorKind.BAD_INPUT, str(exc)) from exc
        headers["Content-Type"] = "application/json"
        response = self.request("POST", url, content=body, headers=headers, expect=range(300, 600))
        status = response.status_code
        if 200 <= status < 300:
            return WebhookResult(status_code=status, event_id=event_id)
        if status == 410:
            return WebhookResult(status_code=status, disabled=True, event_id=event_id)
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            raise self.fail(
                ErrorKind.TRANSIENT,
                f"Webhook endpoint redirected ({status} to {location[:200]!r}); redirects are not followed",
                status=status,
            )
        error = error_from_response(response, provider=self.key)
        if 400 <= status < 500 and status not in (408, 425, 429):
            # The receiver refused this event (401/403 included): its answer is about the event, never
            # about our gateway account, so it must not mark the account as needing re-authentication.
            error.kind = ErrorKind.BAD_INPUT
        raise error

    def health_check(self) -> None:
        """Nothing to authenticate against: a webhook account is healthy by construction."""
