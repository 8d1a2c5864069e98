"""Outbound webhooks: endpoints (URL, subscribed events, ``whsec_`` secret), the events the platform records
fanned out into one ``WebhookDelivery`` per subscribed endpoint, and the delivery state machine.

Events are written in the transaction that records them (a rolled-back event has no delivery) and queued
on commit. Each attempt is one ``gateway.services.dispatch_webhook`` call (Standard Webhooks signature,
redirects not followed, the SSRF guard at connect time). Outcomes (docs/PUBLISHING.md, "Webhooks"):

- 2xx: succeeded.
- 410 Gone: the endpoint is disabled (reason and time kept), its waiting deliveries are discarded.
- 429 / 503 with ``Retry-After`` (seconds or HTTP-date): next attempt not before it, capped at
  ``RETRY_AFTER_CAP_SECONDS``.
- Other 5xx, 3xx (not followed; the Location is in the error), 408, timeouts, connection errors: retried
  on ``retry_delay``'s schedule, then failed after ``MAX_ATTEMPTS``.
- Other 4xx, or a URL the SSRF guard refuses now: failed at once.
- ``DISABLE_AFTER_FAILED_DELIVERIES`` deliveries in a row ending failed disable the endpoint.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from aicmo.audit import audit_record
from aicmo.jobs import task_enqueue
from aicmo.models import Workspace
from crm.signals import OptOut
from gateway import services as gateway
from gateway.capabilities import Capability, WebhookEvent
from gateway.crypto import CredentialsUnreadable, decrypt_credentials, encrypt_credentials
from gateway.errors import ProviderError, ProvidersUnavailable
from gateway.models import ProviderAccount
from gateway.signing import generate_secret
from gateway.ssrf import HostUnresolvable, UnsafeURL, check_url

from ..models import (
    WEBHOOK_TEST_EVENT,
    Campaign,
    EngagementEvent,
    EngagementKind,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEventType,
)

S = WebhookDeliveryStatus

# Retry schedule: attempt n+1 waits RETRY_BASE_SECONDS * RETRY_FACTOR**(n-1), capped at RETRY_MAX_SECONDS,
# times a jitter factor uniform in [1 - RETRY_JITTER, 1 + RETRY_JITTER]: 1 min, 4 min, 16 min, 64 min,
# 4.3 h, 6 h, 6 h, 6 h — nine attempts over about 24 hours.
MAX_ATTEMPTS = 9
RETRY_BASE_SECONDS = 60
RETRY_FACTOR = 4
RETRY_MAX_SECONDS = 6 * 3600
RETRY_JITTER = 0.2
RETRY_AFTER_CAP_SECONDS = 6 * 3600  # a receiver's Retry-After further away than this is cut to it
DISABLE_AFTER_FAILED_DELIVERIES = 5
ATTEMPT_LEASE = timedelta(minutes=5)  # an attempt whose worker died is tried again after this
ENQUEUE_LEASE = timedelta(minutes=10)  # a queued task not run by then (lost message) is queued again
DUE_BATCH = 500
ERROR_MAX_CHARS = 1000
GATEWAY_ACCOUNT_NAME = "Outbound webhooks"
GATEWAY_TIMEOUT_SECONDS = 10.0  # total deadline of each attempt, connect to last byte (the account timeout)
ACTIVE = (S.PENDING, S.RETRYING)

ENGAGEMENT_TYPES = {
    EngagementKind.DELIVERED: WebhookEventType.EMAIL_DELIVERED,
    EngagementKind.OPEN: WebhookEventType.EMAIL_OPENED,
    EngagementKind.CLICK: WebhookEventType.EMAIL_CLICKED,
    EngagementKind.REPLY: WebhookEventType.EMAIL_REPLIED,
    EngagementKind.BOUNCE_HARD: WebhookEventType.EMAIL_BOUNCED,
    EngagementKind.BOUNCE_SOFT: WebhookEventType.EMAIL_BOUNCED,
    EngagementKind.COMPLAINT: WebhookEventType.EMAIL_COMPLAINED,
    EngagementKind.CONVERSION: WebhookEventType.CONVERSION_RECORDED,
}


@dataclass(frozen=True)
class OutboundEvent:
    """One event to fan out: ``event_id`` is stable for the fact it describes (a re-recorded fact gets the
    same id, and a delivery is unique per endpoint and id); ``data`` is the envelope's ``data`` object."""

    workspace_id: int
    event_id: str
    event_type: str
    occurred_at: datetime
    data: dict[str, Any]


# -- endpoints -----------------------------------------------------------------------------------------


def url_clean(url) -> str:
    """A receiver URL: http(s), no credentials, no internal address (``gateway.ssrf``; loopback only as
    allow-listed). A name that does not resolve yet is accepted: the connect-time check decides then.
    Raises ``ValidationError({"url": ...})``."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError({"url": "Give the receiver's URL."})
    url = url.strip()
    if len(url) > 2000:
        raise ValidationError({"url": "The URL is longer than 2,000 characters."})
    try:
        check_url(url, resolve=True)
    except HostUnresolvable:
        pass
    except UnsafeURL as exc:
        raise ValidationError({"url": str(exc)}) from exc
    return url


def event_types_clean(value) -> list[str]:
    """The subscribed types: a non-empty list of ``WebhookEventType`` values, deduplicated, in the
    documented order. Raises ``ValidationError({"event_types": ...})``."""
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError({"event_types": "Choose at least one event type."})
    if not all(isinstance(v, str) for v in value):
        raise ValidationError({"event_types": "Event types are strings."})
    unknown = sorted({v for v in value if v not in WebhookEventType.values})
    if unknown:
        raise ValidationError({"event_types": f"Unknown event type(s): {', '.join(unknown)}."})
    return [t for t in WebhookEventType.values if t in set(value)]


def _description_clean(value) -> str:
    value = "" if value is None else value
    if not isinstance(value, str) or len(value.strip()) > 200:
        raise ValidationError({"description": "At most 200 characters of text."})
    return value.strip()


def _set_secret(endpoint: WebhookEndpoint) -> str:
    secret = generate_secret()
    endpoint.secret_encrypted = encrypt_credentials({"secret": secret})
    endpoint.secret_hint = f"whsec_…{secret[-4:]}"
    return secret


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    """The plain ``whsec_…`` secret (for signing; never shown again after creation or rotation)."""
    return decrypt_credentials(endpoint.secret_encrypted)["secret"]


def gateway_account_ensure(*, workspace: Workspace, by=None) -> ProviderAccount | None:
    """The workspace's ``dispatch_webhook`` account: created (adapter ``webhook``, 10 s timeout) when it
    has none, so webhooks work without configuring a provider first. An existing one (even disabled) is
    left as the operator set it."""
    existing = ProviderAccount.objects.for_workspace(workspace).filter(capability=Capability.DISPATCH_WEBHOOK)
    if existing.exists():
        return None
    return gateway.account_create(
        workspace=workspace,
        by=by,
        capability=Capability.DISPATCH_WEBHOOK,
        adapter="webhook",
        name=GATEWAY_ACCOUNT_NAME,
        timeout_seconds=GATEWAY_TIMEOUT_SECONDS,
    )


@transaction.atomic
def endpoint_create(
    *, workspace: Workspace, by, url, event_types, description: str = "", active: bool = True
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (returned once, stored encrypted). ValidationError per field."""
    endpoint = WebhookEndpoint(
        workspace=workspace,
        url=url_clean(url),
        event_types=event_types_clean(event_types),
        description=_description_clean(description),
        active=bool(active),
        created_by=by if getattr(by, "pk", None) else None,
    )
    if not endpoint.active:
        endpoint.disabled_reason, endpoint.disabled_at = "Disabled by an administrator.", timezone.now()
    secret = _set_secret(endpoint)
    endpoint.save()
    gateway_account_ensure(workspace=workspace, by=by)
    audit_record(
        workspace=workspace,
        actor=by,
        verb="publishing.webhook_created",
        target=endpoint,
        changes={"url": endpoint.url, "event_types": endpoint.event_types},
    )
    return endpoint, secret


@transaction.atomic
def endpoint_update(*, endpoint: WebhookEndpoint, by, **fields) -> WebhookEndpoint:
    """Change ``url``, ``description``, ``event_types`` or ``active``. Enabling clears the disabled reason
    and the failure count; disabling discards the deliveries still waiting."""
    unknown = set(fields) - {"url", "description", "event_types", "active"}
    if unknown:
        raise TypeError(f"Unknown webhook fields: {sorted(unknown)}")
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    clean = {}
    if "url" in fields:
        clean["url"] = url_clean(fields["url"])
    if "description" in fields:
        clean["description"] = _description_clean(fields["description"])
    if "event_types" in fields:
        clean["event_types"] = event_types_clean(fields["event_types"])
    changes = {k: [str(getattr(endpoint, k)), str(v)] for k, v in clean.items() if getattr(endpoint, k) != v}
    for name, value in clean.items():
        setattr(endpoint, name, value)
    if "active" in fields and bool(fields["active"]) != endpoint.active:
        changes["active"] = [str(endpoint.active), str(bool(fields["active"]))]
        if fields["active"]:
            endpoint.active, endpoint.disabled_reason, endpoint.disabled_at = True, "", None
            endpoint.consecutive_failures = 0
        else:
            endpoint.active = False
            endpoint.disabled_reason, endpoint.disabled_at = "Disabled by an administrator.", timezone.now()
            _discard_waiting(endpoint.pk, "The endpoint was disabled by an administrator.")
    endpoint.save()
    if changes:
        audit_record(
            workspace=endpoint.workspace,
            actor=by,
            verb="publishing.webhook_updated",
            target=endpoint,
            changes=changes,
        )
    return endpoint


@transaction.atomic
def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, by) -> str:
    """A new secret (returned once); the old one stops signing at once, retries included."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = _set_secret(endpoint)
    endpoint.save(update_fields=["secret_encrypted", "secret_hint", "updated_at"])
    audit_record(
        workspace=endpoint.workspace, actor=by, verb="publishing.webhook_secret_rotated", target=endpoint
    )
    return secret


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint, by) -> None:
    audit_record(workspace=endpoint.workspace, actor=by, verb="publishing.webhook_deleted", target=endpoint)
    endpoint.delete()


def endpoint_send_test(*, endpoint: WebhookEndpoint, by=None) -> WebhookDelivery:
    """Queue a ``webhook.test`` event for this endpoint only (whatever it subscribed to). ValidationError
    for a disabled endpoint."""
    if not endpoint.active:
        raise ValidationError("The endpoint is disabled; enable it before sending a test event.")
    now = timezone.now()
    event = OutboundEvent(
        workspace_id=endpoint.workspace_id,
        event_id=f"evt_test_{uuid.uuid4().hex}",
        event_type=WEBHOOK_TEST_EVENT,
        occurred_at=now,
        data={"endpoint": {"id": endpoint.pk}, "message": "A test event sent from AICMO."},
    )
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            workspace_id=endpoint.workspace_id,
            endpoint=endpoint,
            event_id=event.event_id,
            event_type=event.event_type,
            payload=event.data,
            occurred_at=now,
            next_attempt_at=now,
        )
        _enqueue_due()
    return delivery


# -- events --------------------------------------------------------------------------------------------


def _enqueue_due() -> None:
    from ..tasks import webhook_dispatch_due_task

    # a broker error is logged only: the request that fanned out stands, beat's 15 s tick dispatches
    task_enqueue(webhook_dispatch_due_task)


def events_emit(events: Iterable[OutboundEvent]) -> int:
    """Fan ``events`` out to the active endpoints subscribed to their type, in the caller's transaction (a
    rollback takes the deliveries with it); their dispatch is queued on commit. An event already fanned out
    (same id) is not doubled. Returns the number of deliveries handed to the insert. One query when no
    endpoint of these workspaces is active."""
    events = list(events)
    if not events:
        return 0
    endpoints = list(
        WebhookEndpoint.objects.filter(workspace_id__in={e.workspace_id for e in events}, active=True).only(
            "id", "workspace_id", "event_types"
        )
    )
    if not endpoints:
        return 0
    now = timezone.now()
    rows = [
        WebhookDelivery(
            workspace_id=event.workspace_id,
            endpoint_id=endpoint.pk,
            event_id=event.event_id,
            event_type=event.event_type,
            payload=event.data,
            occurred_at=event.occurred_at,
            next_attempt_at=now,
        )
        for event in events
        for endpoint in endpoints
        if endpoint.workspace_id == event.workspace_id and event.event_type in endpoint.event_types
    ]
    if rows:
        with transaction.atomic():
            WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
            _enqueue_due()
    return len(rows)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _engagement_id(event: EngagementEvent) -> str:
    if event.key:
        return f"evt_{event.key}"
    if event.dedupe_key:
        digest = hashlib.sha256(f"{event.workspace_id}:{event.dedupe_key}".encode()).hexdigest()[:32]
        return f"evt_{digest}"
    return f"evt_engagement_{event.pk}"


def engagement_data(event: EngagementEvent, email: str = "") -> dict[str, Any]:
    """The ``data`` object of an engagement event (docs/PUBLISHING.md, "Webhooks", payload shapes)."""
    meta = event.metadata or {}
    data: dict[str, Any] = {
        "occurred_at": _iso(event.occurred_at),
        "channel": event.channel,
        "campaign": {"id": event.campaign_id} if event.campaign_id else None,
        "delivery": {"id": event.delivery_id} if event.delivery_id else None,
        "contact": {"id": event.contact_id, "email": email} if event.contact_id else None,
    }
    kind = event.kind
    if kind in (EngagementKind.OPEN, EngagementKind.CLICK):
        data["machine"] = bool(event.machine)
    if kind == EngagementKind.CLICK:
        data["url"] = meta.get("url", "")
    if kind in (EngagementKind.BOUNCE_HARD, EngagementKind.BOUNCE_SOFT):
        data["bounce_type"] = "hard" if kind == EngagementKind.BOUNCE_HARD else "soft"
    if kind in (EngagementKind.BOUNCE_HARD, EngagementKind.BOUNCE_SOFT, EngagementKind.COMPLAINT):
        data["reason"] = str(meta.get("reason") or meta.get("description") or "")[:1000]
    if kind == EngagementKind.CONVERSION:
        data["order_id"] = meta.get("order_id", "")
        data["value"] = str(event.value) if event.value is not None else None
        data["currency"] = meta.get("currency", "")
        data["attributed"] = bool(meta.get("attributed"))
    return data


def engagement_events_emit(events: Sequence[EngagementEvent], emails: dict[int, str] | None = None) -> int:
    """`events_emit` for recorded engagement events (kinds without a webhook type, e.g. ``sent``, are
    skipped). ``emails``: contact id → address, where the caller has it without a query."""
    emails = emails or {}
    outbound = [
        OutboundEvent(
            workspace_id=e.workspace_id,
            event_id=_engagement_id(e),
            event_type=ENGAGEMENT_TYPES[e.kind],
            occurred_at=e.occurred_at,
            data=engagement_data(e, emails.get(e.contact_id, "")),
        )
        for e in events
        if e.kind in ENGAGEMENT_TYPES
    ]
    return events_emit(outbound)


def opt_outs_emit(opt_outs: Sequence[OptOut]) -> int:
    """``contact.unsubscribed`` for each opt-out crm decided (``crm.signals.contacts_opted_out``, sent by
    crm's consent service whatever the way in), in the caller's transaction. ``data``: the engagement
    shape plus ``reason`` (``unsubscribed`` / ``complained``) and ``source`` (how: ``one-click``, ``link``,
    ``mailto``, a provider's name for a complaint; else the consent log's ``api``, ``dashboard``,
    ``import:<run id>``). The event id is the consent log row's, so the fact has one id."""
    outbound = []
    for opt_out in opt_outs:
        context = opt_out.context
        campaign_id, delivery_id = context.get("campaign_id"), context.get("delivery_id")
        outbound.append(
            OutboundEvent(
                workspace_id=opt_out.workspace_id,
                event_id=f"evt_optout_{opt_out.consent_event_id}",
                event_type=WebhookEventType.CONTACT_UNSUBSCRIBED,
                occurred_at=opt_out.at,
                data={
                    "occurred_at": _iso(opt_out.at),
                    "channel": opt_out.channel,
                    "campaign": {"id": campaign_id} if campaign_id else None,
                    "delivery": {"id": delivery_id} if delivery_id else None,
                    "contact": {"id": opt_out.contact_id, "email": opt_out.email},
                    "reason": opt_out.reason,
                    "source": str(context.get("source") or opt_out.source),
                },
            )
        )
    return events_emit(outbound)


def campaign_event_emit(*, campaign: Campaign, event_type: str, counts: dict[str, int] | None = None) -> int:
    """``campaign.scheduled`` / ``campaign.sent`` / ``campaign.failed`` for ``campaign`` as it now is."""
    at = {
        WebhookEventType.CAMPAIGN_SCHEDULED: campaign.scheduled_at,
        WebhookEventType.CAMPAIGN_SENT: campaign.finished_at,
        WebhookEventType.CAMPAIGN_FAILED: campaign.finished_at,
    }[event_type] or timezone.now()
    suffix = event_type.split(".", 1)[1]
    data = {
        "campaign": {
            "id": campaign.pk,
            "name": campaign.name,
            "status": campaign.status,
            "channel": campaign.channel,
            "scheduled_at": _iso(campaign.scheduled_at),
            "started_at": _iso(campaign.started_at),
            "finished_at": _iso(campaign.finished_at),
        }
    }
    if counts is not None:
        data["deliveries"] = counts
    event = OutboundEvent(
        workspace_id=campaign.workspace_id,
        event_id=f"evt_campaign_{campaign.pk}_{suffix}_{int(at.timestamp())}",
        event_type=event_type,
        occurred_at=timezone.now() if event_type == WebhookEventType.CAMPAIGN_SCHEDULED else at,
        data=data,
    )
    return events_emit([event])


# -- delivery ------------------------------------------------------------------------------------------


def retry_delay(attempts: int) -> float:
    """Seconds to wait after failed attempt number ``attempts`` (1-based), jittered ±``RETRY_JITTER``."""
    base = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * RETRY_FACTOR ** max(0, attempts - 1))
    return base * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)  # noqa: S311 - jitter, not security


def deliveries_dispatch_due(*, now: datetime | None = None, limit: int = DUE_BATCH) -> int:
    """Queue a delivery task for each due delivery not in flight and not queued in the last
    ``ENQUEUE_LEASE``; returns how many. Beat runs it every 15 s, and every fan-out on commit."""
    from ..tasks import webhook_deliver_task

    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.filter(status__in=ACTIVE, next_attempt_at__lte=now)
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - ENQUEUE_LEASE))
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            WebhookDelivery.objects.filter(pk__in=ids).update(enqueued_at=now)
            for pk in ids:  # a broker error is logged: the lease runs out and beat queues it again
                task_enqueue(webhook_deliver_task, pk)
    return len(ids)


def _claim(delivery_id: int, now: datetime) -> WebhookDelivery | None:
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status__in=ACTIVE, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + ATTEMPT_LEASE, enqueued_at=None, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("endpoint", "workspace").get(pk=delivery_id)


def _discard_waiting(endpoint_id: int, why: str) -> int:
    return WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status__in=ACTIVE).update(
        status=S.DISCARDED, last_error=why, finished_at=timezone.now(), next_attempt_at=None
    )


def endpoint_disable(*, endpoint_id: int, reason: str) -> bool:
    """Disable an active endpoint (410 Gone, too many failures) and discard what waits for it."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id, active=True).first()
        if endpoint is None:
            return False
        endpoint.active, endpoint.disabled_reason, endpoint.disabled_at = False, reason[:500], timezone.now()
        endpoint.save(update_fields=["active", "disabled_reason", "disabled_at", "updated_at"])
        _discard_waiting(endpoint_id, f"Endpoint disabled: {reason}"[:ERROR_MAX_CHARS])
        audit_record(
            workspace=endpoint.workspace,
            actor=None,
            verb="publishing.webhook_disabled",
            target=endpoint,
            changes={"reason": reason[:500]},
        )
    return True


@dataclass(frozen=True)
class Outcome:
    status: str  # a WebhookDeliveryStatus value
    code: int | None = None
    error: str = ""
    retry_in: float | None = None  # seconds until the next attempt (status retrying)


def _classify(exc: ProviderError | ProvidersUnavailable, attempts: int) -> Outcome:
    """What one failed attempt means for the delivery (see the module docstring)."""
    if isinstance(exc, ProviderError):  # bad input: a 4xx on our event, or a URL refused at connect time
        return Outcome(S.FAILED, exc.status, str(exc))
    errors = list(exc.errors.values()) if isinstance(exc.errors, dict) else list(exc.errors)
    cause = errors[0] if errors else None
    code = cause.status if cause is not None else None
    error = str(cause) if cause is not None else str(exc)
    if attempts >= MAX_ATTEMPTS:
        return Outcome(S.FAILED, code, f"Gave up after {attempts} attempts. Last: {error}")
    delay = retry_delay(attempts)
    if cause is not None and cause.retry_after is not None and code in (429, 503):
        delay = min(max(cause.retry_after, 1.0), float(RETRY_AFTER_CAP_SECONDS))
    return Outcome(S.RETRYING, code, error, delay)


def delivery_attempt(*, delivery_id: int) -> str:
    """Make the next attempt of a due delivery and record its outcome; returns the new status, or
    ``"skipped"`` when it is not due, finished, or in another worker's hands (so a duplicate task is
    harmless). No database transaction is open during the HTTP call."""
    now = timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return "skipped"
    endpoint = delivery.endpoint
    if not endpoint.active:
        outcome = Outcome(S.DISCARDED, None, f"Endpoint disabled: {endpoint.disabled_reason}")
    else:
        event = WebhookEvent(
            event_type=delivery.event_type,
            payload=delivery.payload,
            event_id=delivery.event_id,
            timestamp=delivery.occurred_at,
        )
        try:
            secret = endpoint_secret(endpoint)
            result = gateway.dispatch_webhook(
                workspace=delivery.workspace, url=endpoint.url, secret=secret, event=event
            )
        except CredentialsUnreadable:
            outcome = Outcome(S.FAILED, None, "The signing secret cannot be decrypted: rotate the secret.")
        except (ProviderError, ProvidersUnavailable) as exc:
            outcome = _classify(exc, delivery.attempts)
        else:
            if result.disabled:
                outcome = Outcome(
                    S.FAILED,
                    result.status_code,
                    "HTTP 410 Gone: the receiver asked us to stop; endpoint disabled",
                )
            else:
                outcome = Outcome(S.SUCCEEDED, result.status_code)
            if result.demo:
                outcome = Outcome(
                    outcome.status, outcome.code, "Sent by the demo provider (nothing left AICMO)"
                )
    return _record(delivery, outcome)


def _record(delivery: WebhookDelivery, outcome: Outcome) -> str:
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": outcome.status,
        "claimed_until": None,
        "last_attempt_at": now,
        "last_status_code": outcome.code,
        "last_error": outcome.error[:ERROR_MAX_CHARS],
        "updated_at": now,
    }
    if outcome.status == S.RETRYING:
        fields["next_attempt_at"] = now + timedelta(seconds=outcome.retry_in or 0)
    else:
        fields["next_attempt_at"] = None
        fields["finished_at"] = now
    endpoint_id = delivery.endpoint_id
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        if outcome.status == S.SUCCEEDED:
            WebhookEndpoint.objects.filter(pk=endpoint_id, consecutive_failures__gt=0).update(
                consecutive_failures=0
            )
        elif outcome.status == S.FAILED:
            WebhookEndpoint.objects.filter(pk=endpoint_id).update(
                consecutive_failures=F("consecutive_failures") + 1
            )
    if outcome.code == 410:
        endpoint_disable(endpoint_id=endpoint_id, reason="The receiver answered 410 Gone.")
    elif outcome.status == S.FAILED:
        failures = WebhookEndpoint.objects.filter(pk=endpoint_id).values_list(
            "consecutive_failures", flat=True
        )
        if (failures.first() or 0) >= DISABLE_AFTER_FAILED_DELIVERIES:
            endpoint_disable(
                endpoint_id=endpoint_id,
                reason=f"{DISABLE_AFTER_FAILED_DELIVERIES} deliveries in a row failed.",
            )
    return outcome.status


def delivery_retry(*, delivery: WebhookDelivery, by=None) -> WebhookDelivery:
    """Deliver again now, on a fresh schedule, with the same ``webhook-id`` (receivers dedupe). Any
    finished delivery may be retried; ValidationError when it is still waiting or the endpoint is disabled."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
        if delivery.status in ACTIVE:
            raise ValidationError("This delivery is still being attempted.")
        if not delivery.endpoint.active:
            raise ValidationError("The endpoint is disabled; enable it before retrying.")
        now = timezone.now()
        delivery.status, delivery.attempts, delivery.next_attempt_at = S.PENDING, 0, now
        delivery.finished_at = delivery.enqueued_at = delivery.claimed_until = None
        delivery.save(
            update_fields=[
                "status",
                "attempts",
                "next_attempt_at",
                "finished_at",
                "enqueued_at",
                "claimed_until",
                "updated_at",
            ]
        )
        audit_record(
            workspace=delivery.workspace,
            actor=by,
            verb="publishing.webhook_delivery_retried",
            target=delivery,
        )
        _enqueue_due()
    return delivery
