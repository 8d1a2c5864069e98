"""Inbound provider events: per-workspace tracking webhooks verified and parsed by django-anymail.

anymail's webhook secrets are global settings, so its views are not routed directly. Each workspace has
``InboundHook`` rows; the URL carries the hook's random key and the request is verified with that hook's
secret by instantiating anymail's view class for the provider with the secret as its init kwarg (anymail
reads every setting from view kwargs first) and calling its ``run_validators`` and ``parse_events``. Its
normalized ``AnymailTrackingEvent`` objects (event_type, message_id, event_id, timestamp, esp_event) are
then recorded here, so the signature checks and payload parsing stay anymail's.

Recording: ``delivered`` → delivered; ``bounced`` → bounce_hard (Postmark's ``SoftBounce`` type is a soft
bounce although anymail normalizes it to bounced); ``deferred`` → bounce_soft; ``complained`` → complaint.
Other types (opens, clicks — our own tracking records those) are acknowledged and ignored. The same
provider event twice is recorded once (``EngagementEvent.dedupe_key``: provider and event id, or a hash of
the raw event when the provider gives no id). Hard bounces and complaints suppress the contact's email;
soft bounces suppress once the contact has ``PUBLISHING_SOFT_BOUNCE_LIMIT`` of them (default 3).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure
from anymail.signals import EventType
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from aicmo.models import Workspace
from crm import services as crm_services
from crm.models import Channel as CrmChannel
from crm.models import SuppressionReason
from gateway import services as gateway_services
from gateway.capabilities import Capability, InboundKind
from gateway.crypto import decrypt_credentials, encrypt_credentials
from gateway.models import ProviderAccount

from ..models import Delivery, EngagementEvent, EngagementKind, InboundHook, InboundProvider
from .tracking import event_record, public_url

_VIEWS = {
    InboundProvider.MAILGUN: (MailgunTrackingWebhookView, "webhook_signing_key"),
    InboundProvider.POSTMARK: (PostmarkTrackingWebhookView, "webhook_secret"),
    InboundProvider.SENDGRID: (SendGridTrackingWebhookView, "tracking_webhook_verification_key"),
}

_KINDS = {
    EventType.DELIVERED: EngagementKind.DELIVERED,
    EventType.BOUNCED: EngagementKind.BOUNCE_HARD,
    EventType.DEFERRED: EngagementKind.BOUNCE_SOFT,
    EventType.COMPLAINED: EngagementKind.COMPLAINT,
}


class WebhookRejected(Exception):
    """The request is not a validly signed event post of this hook's provider (answered 400)."""


@dataclass(frozen=True)
class InboundResult:
    recorded: int
    duplicates: int
    unmatched: int
    ignored: int


def hook_create(*, workspace: Workspace, provider: str, secret: str) -> InboundHook:
    """A webhook URL for one provider of a workspace; ``secret`` as described on ``InboundHook``."""
    if provider not in InboundProvider.values:
        raise ValueError(f"Unknown provider {provider!r}.")
    return InboundHook.objects.create(
        workspace=workspace,
        provider=provider,
        key=secrets.token_urlsafe(18)[:24],
        secret_encrypted=encrypt_credentials({"secret": secret}),
    )


def hook_url(hook: InboundHook) -> str:
    """The absolute URL to give the provider."""
    return public_url(reverse("publishing:inbound-webhook", args=[hook.provider, hook.key]))


def _parse(hook: InboundHook, request) -> list:
    view_class, secret_kwarg = _VIEWS[hook.provider]
    try:
        view = view_class(**{secret_kwarg: decrypt_credentials(hook.secret_encrypted)["secret"]})
        view.run_validators(request)
        return view.parse_events(request)
    except AnymailWebhookValidationFailure as err:
        raise WebhookRejected(str(err)) from err
    except (AnymailError, ValueError, KeyError, TypeError) as err:
        raise WebhookRejected(f"Unreadable {hook.get_provider_display()} event payload.") from err


def _kind(provider: str, event) -> str | None:
    kind = _KINDS.get(event.event_type)
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    soft_by_type = provider == InboundProvider.POSTMARK and raw.get("Type") == "SoftBounce"
    return EngagementKind.BOUNCE_SOFT if kind == EngagementKind.BOUNCE_HARD and soft_by_type else kind


def _dedupe_key(provider: str, event) -> str:
    if event.event_id:
        return f"{provider}:{event.event_id}"[:200]
    raw = json.dumps(event.esp_event, sort_keys=True, default=str).encode()
    return f"{provider}:sha256:{hashlib.sha256(raw).hexdigest()}"


def delivery_for_message_id(*, workspace_id: int, message_id: str | None) -> Delivery | None:
    """The workspace's delivery whose stored Message-ID (ours, or the provider's) is ``message_id``,
    compared with and without angle brackets."""
    if not message_id:
        return None
    bare = message_id.strip().strip("<>")
    return (
        Delivery.objects.select_related("campaign")
        .filter(workspace_id=workspace_id, message_id__in=[bare, f"<{bare}>"])
        .first()
    )


def bounce_consequences(*, delivery: Delivery, kind: str, source: str) -> None:
    """Suppress for a hard bounce or complaint; for a soft bounce once the contact has the limit of them."""
    contact = delivery.contact
    if kind == EngagementKind.BOUNCE_HARD:
        reason = SuppressionReason.BOUNCED
    elif kind == EngagementKind.COMPLAINT:
        reason = SuppressionReason.COMPLAINED
    elif kind == EngagementKind.BOUNCE_SOFT:
        soft = EngagementEvent.objects.filter(
            workspace_id=delivery.workspace_id,
            contact_id=delivery.contact_id,
            kind=EngagementKind.BOUNCE_SOFT,
        ).count()
        if soft < settings.PUBLISHING_SOFT_BOUNCE_LIMIT:
            return
        reason = SuppressionReason.BOUNCED
    else:
        return
    crm_services.contact_suppress(contact=contact, channel=CrmChannel.EMAIL, reason=reason, source=source)


def event_record_once(
    *, delivery: Delivery, kind: str, dedupe_key: str, at=None, metadata: dict | None = None
) -> EngagementEvent | None:
    """Record an inbound event and its consequences, or None when ``dedupe_key`` was recorded before."""
    try:
        with transaction.atomic():
            event = event_record(
                delivery=delivery, kind=kind, metadata=metadata, at=at, dedupe_key=dedupe_key
            )
            bounce_consequences(delivery=delivery, kind=kind, source=dedupe_key.split(":", 1)[0][:100])
    except IntegrityError:
        if EngagementEvent.objects.filter(workspace_id=delivery.workspace_id, dedupe_key=dedupe_key).exists():
            return None
        raise
    return event


def webhook_receive(*, hook: InboundHook, request) -> InboundResult:
    """Verify and record one webhook post. Raises ``WebhookRejected`` for a bad signature or payload."""
    events = _parse(hook, request)
    recorded = duplicates = unmatched = ignored = 0
    for event in events:
        kind = _kind(hook.provider, event)
        if kind is None:
            ignored += 1
            continue
        delivery = delivery_for_message_id(workspace_id=hook.workspace_id, message_id=event.message_id)
        if delivery is None:
            unmatched += 1
            continue
        metadata = {
            "provider": hook.provider,
            "event_id": event.event_id or "",
            "type": event.event_type,
            "reason": event.reject_reason or "",
            "description": (event.description or "")[:1000],
            "mta_response": (event.mta_response or "")[:1000],
        }
        created = event_record_once(
            delivery=delivery,
            kind=kind,
            dedupe_key=_dedupe_key(hook.provider, event),
            at=event.timestamp,
            metadata=metadata,
        )
        if created is None:
            duplicates += 1
        else:
            recorded += 1
    return InboundResult(recorded=recorded, duplicates=duplicates, unmatched=unmatched, ignored=ignored)


# ------------------------------------------------------------------------ IMAP replies and DSN bounces


@dataclass(frozen=True)
class RepliesResult:
    replies: int
    bounces: int
    duplicates: int
    unmatched: int


def _norm_id(value: str) -> str:
    return value.strip().strip("<>").strip().lower()


def replies_fetch(*, workspace: Workspace, now=None) -> RepliesResult:
    """Fetch replies and DSN bounces to the workspace's mail sent in the last
    ``PUBLISHING_REPLY_LOOKBACK_DAYS`` (default 7) through the gateway's ``fetch_replies`` chain and record
    them: a reply → ``reply`` event and the contact engaged; a bounce → ``bounce_hard`` with suppression.
    Each inbound message is recorded once (its Message-ID), so overlapping fetches are harmless.
    Raises the gateway's ``ProvidersUnavailable`` when no mailbox answers (the beat tries again)."""
    now = now or timezone.now()
    since = now - timedelta(days=settings.PUBLISHING_REPLY_LOOKBACK_DAYS)
    sent = dict(
        Delivery.objects.filter(workspace=workspace, send_started_at__gte=since)
        .exclude(message_id="")
        .values_list("message_id", "pk")
    )
    if not sent:
        return RepliesResult(0, 0, 0, 0)
    by_norm = {_norm_id(mid): pk for mid, pk in sent.items()}
    messages = gateway_services.fetch_replies(workspace=workspace, since=since, known_message_ids=list(sent))
    deliveries = Delivery.objects.select_related("campaign", "contact").in_bulk(
        [by_norm[m] for m in {_norm_id(x.matched_message_id) for x in messages} if m in by_norm]
    )
    replies = bounces = duplicates = unmatched = 0
    for message in messages:
        if message.kind == InboundKind.UNSUBSCRIBE:
            continue  # List-Unsubscribe mailto requests: tracking.mailto_unsubscribes_process applies them
        delivery = deliveries.get(by_norm.get(_norm_id(message.matched_message_id), 0))
        if delivery is None:
            unmatched += 1
            continue
        reply = message.kind == InboundKind.REPLY
        ident = (
            _norm_id(message.message_id)
            or hashlib.sha256(
                f"{message.from_email}|{message.subject}|{message.received_at}|{message.body_text}".encode()
            ).hexdigest()
        )
        event = event_record_once(
            delivery=delivery,
            kind=EngagementKind.REPLY if reply else EngagementKind.BOUNCE_HARD,
            dedupe_key=f"imap:{ident}"[:200],
            at=message.received_at,
            metadata={
                "source": "imap",
                "from": message.from_email[:254],
                "subject": message.subject[:300],
                "bounced_recipient": message.bounced_recipient[:254],
            },
        )
        if event is None:
            duplicates += 1
            continue
        if reply:
            replies += 1
            crm_services.contact_record_engagement(contact_id=delivery.contact_id, at=event.occurred_at)
        else:
            bounces += 1
    return RepliesResult(replies=replies, bounces=bounces, duplicates=duplicates, unmatched=unmatched)


def workspaces_fetching_replies() -> list[int]:
    """Ids of workspaces with an enabled ``fetch_replies`` provider account (the beat fans out to them)."""
    return list(
        ProviderAccount.objects.filter(capability=Capability.FETCH_REPLIES, enabled=True)
        .values_list("workspace_id", flat=True)
        .distinct()
    )
