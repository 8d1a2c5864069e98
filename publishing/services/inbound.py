"""Inbound provider events: per-workspace tracking webhooks verified and parsed by django-anymail.

anymail's webhook secrets are global settings, so its views are not routed directly. Each workspace has
``InboundHook`` rows; the URL carries the hook's random key and the request is verified with that hook's
secret by instantiating anymail's view class for the provider with the secret as its init kwarg (anymail
reads every setting from view kwargs first) and calling its ``run_validators`` and ``parse_events``. Its
normalized ``AnymailTrackingEvent`` objects (event_type, message_id, event_id, timestamp, esp_event) are
then recorded here, so the signature checks and payload parsing stay anymail's.

Recording: ``delivered`` → delivered; ``bounced`` → bounce_hard unless the provider's own bounce type says
soft (Postmark ``Type: SoftBounce``, Brevo ``event: soft_bounce``, Amazon SES ``bounceType`` other than
``Permanent``: ``Transient`` or ``Undetermined``); ``deferred`` → bounce_soft; ``complained`` → complaint;
``unsubscribed`` (the provider's own unsubscribe link or List-Unsubscribe handling: Mailgun ``unsubscribed``,
SendGrid ``unsubscribe``/``group_unsubscribe``, Brevo ``unsubscribe``, Postmark ``SubscriptionChange`` that
suppresses sending) → unsubscribe, an opt-out crm records like our own link's (consent log,
``contact.unsubscribed``), counted once per delivery. A provider's re-subscription is not applied: a person
opts back in through our confirm page.
Other types (opens, clicks — our own tracking records those) are acknowledged and ignored. The same
provider event twice is recorded once (``EngagementEvent.dedupe_key``: provider and event id — plus the
recipient where the id names a whole notification, as Amazon SNS's does — or a hash of the raw event when
the provider gives no id, as Brevo and Postmark deliveries). Hard bounces and complaints suppress the
contact's email; soft bounces suppress once the contact has ``PUBLISHING_SOFT_BOUNCE_LIMIT`` of them
(default 3).

Basic-auth providers (Postmark, Amazon SES, Brevo): a request without an ``Authorization`` header gets a
401 challenge (``WebhookAuthRequired``) — Amazon SNS only sends the credentials of an
``https://user:password@…`` endpoint after one. Amazon SES arrives through SNS: anymail checks the basic
auth and that the ``x-amz-sns-message-type``/``-id`` headers match the body; it does not verify SNS message
signatures (its source marks that as future work), so the per-hook basic-auth secret over HTTPS is the
protection. Its automatic subscription confirmation (boto3 ``ConfirmSubscription``) is switched off: see
``sns_confirm_url``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure
from anymail.signals import EventType
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.brevo import BrevoTrackingWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from aicmo.audit import audit_record
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

BASIC_AUTH = "webhook_secret"  # anymail's kwarg for the accepted ``user:password`` of basic auth
_VIEWS = {
    InboundProvider.MAILGUN: (MailgunTrackingWebhookView, "webhook_signing_key", {}),
    InboundProvider.POSTMARK: (PostmarkTrackingWebhookView, BASIC_AUTH, {}),
    InboundProvider.SENDGRID: (SendGridTrackingWebhookView, "tracking_webhook_verification_key", {}),
    # never let anymail fetch anything: subscriptions are confirmed by a person (sns_confirm_url)
    InboundProvider.AMAZON_SES: (
        AmazonSESTrackingWebhookView,
        BASIC_AUTH,
        {"auto_confirm_sns_subscriptions": False},
    ),
    InboundProvider.BREVO: (BrevoTrackingWebhookView, BASIC_AUTH, {}),
}

# The provider's own bounce type, from the raw event, when anymail normalizes every bounce to "bounced".
_SOFT_BOUNCE = {
    InboundProvider.POSTMARK: lambda raw: raw.get("Type") == "SoftBounce",
    InboundProvider.BREVO: lambda raw: raw.get("event") == "soft_bounce",
    InboundProvider.AMAZON_SES: lambda raw: (raw.get("bounce") or {}).get("bounceType") != "Permanent",
}
# Providers whose event id names a notification that anymail splits into one event per recipient.
_ID_PER_NOTIFICATION = {InboundProvider.AMAZON_SES}

# arn:aws:sns:<region>:<account>:<topic> — the commercial partition, whose endpoint is sns.<region>.amazonaws.com
_SNS_TOPIC_ARN = re.compile(
    r"^arn:aws:sns:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d{1,2}):\d{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?$"
)
_SNS_TOKEN = re.compile(r"^[A-Za-z0-9]{16,2048}$")

_KINDS = {
    EventType.DELIVERED: EngagementKind.DELIVERED,
    EventType.BOUNCED: EngagementKind.BOUNCE_HARD,
    EventType.DEFERRED: EngagementKind.BOUNCE_SOFT,
    EventType.COMPLAINED: EngagementKind.COMPLAINT,
    EventType.UNSUBSCRIBED: EngagementKind.UNSUBSCRIBE,
}


class WebhookRejected(Exception):
    """The request is not a validly signed event post of this hook's provider (answered 400)."""


class WebhookAuthRequired(WebhookRejected):
    """A basic-auth provider's request came without credentials (answered 401 with a challenge)."""


@dataclass(frozen=True)
class InboundResult:
    recorded: int
    duplicates: int
    unmatched: int
    ignored: int
    # Amazon SNS SubscriptionConfirmation: the link a person opens to confirm (stored on the hook)
    confirm_url: str = ""


# A basic-auth secret once stripped: a user without ":" or white space, ":", a password without white space.
BASIC_AUTH_SHAPE = r"[^\s:]+:\S+"


def uses_basic_auth(provider: str) -> bool:
    """Whether the provider's hook secret is a basic-auth ``user:password`` (Postmark, Amazon SES, Brevo)."""
    return _VIEWS[provider][1] == BASIC_AUTH


def hook_secret_check(*, provider: str, secret: str) -> str:
    """The secret as stored; ValidationError keyed ``provider``/``secret`` for an unknown provider or, for a
    basic-auth provider, anything but ``user:password`` (no whitespace, a non-empty user and password)."""
    if provider not in InboundProvider.values:
        raise ValidationError({"provider": [f"Unknown provider {provider!r}."]})
    secret = (secret or "").strip()
    if not secret:
        raise ValidationError({"secret": ["Give the provider's webhook secret."]})
    if uses_basic_auth(provider) and not re.fullmatch(BASIC_AUTH_SHAPE, secret):
        raise ValidationError({"secret": ["Give basic auth credentials as user:password (no spaces)."]})
    return secret


@transaction.atomic
def hook_create(*, workspace: Workspace, provider: str, secret: str, by=None) -> InboundHook:
    """A webhook URL for one provider of a workspace; ``secret`` as described on ``InboundHook`` (checked by
    ``hook_secret_check``: ValidationError keyed by field). Audited ``publishing.inbound_hook.created``."""
    secret = hook_secret_check(provider=provider, secret=secret)
    hook = InboundHook.objects.create(
        workspace=workspace,
        provider=provider,
        key=secrets.token_urlsafe(18)[:24],
        secret_encrypted=encrypt_credentials({"secret": secret}),
    )
    audit_record(
        workspace=workspace,
        actor=by,
        verb="publishing.inbound_hook.created",
        target=hook,
        changes={"provider": provider},
    )
    return hook


@transaction.atomic
def hook_delete(*, hook: InboundHook, by=None) -> None:
    """Remove a hook: its URL answers 404 from now on. Audited ``publishing.inbound_hook.deleted``."""
    audit_record(
        workspace=hook.workspace,
        actor=by,
        verb="publishing.inbound_hook.deleted",
        target=hook,
        changes={"provider": hook.provider},
    )
    hook.delete()


def hook_url(hook: InboundHook) -> str:
    """The absolute URL of the hook."""
    return public_url(reverse("publishing:inbound-webhook", args=[hook.provider, hook.key]))


def hook_setup_url(hook: InboundHook) -> str:
    """The URL to paste into the provider: for basic-auth providers with ``USER:PASSWORD@`` in place of the
    hook's credentials (never shown again), e.g. ``https://USER:PASSWORD@aicmo.example/publishing/hooks/
    brevo/<key>/`` — Brevo and Amazon SNS send the credentials of the URL they are given."""
    url = hook_url(hook)
    if not uses_basic_auth(hook.provider):
        return url
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}USER:PASSWORD@{rest}"


_SETUP = {
    InboundProvider.MAILGUN: "Mailgun → Sending → Webhooks: add {url} for Delivered, Permanent failure, "
    "Temporary failure and Spam complaints; the secret is the domain's HTTP webhook signing key.",
    InboundProvider.POSTMARK: "Postmark → the server's message stream → Webhooks: add {url} with your "
    "user:password in place of USER:PASSWORD, for Delivery, Bounce and Spam complaint.",
    InboundProvider.SENDGRID: "SendGrid → Settings → Mail Settings → Event Webhook: HTTP POST URL {url}, "
    "events Delivered, Bounced, Dropped, Deferred, Spam reports; switch on the Signed Event Webhook and use "
    "its verification key as the secret.",
    InboundProvider.AMAZON_SES: "Amazon SNS: subscribe {url} (HTTPS, your user:password in place of "
    "USER:PASSWORD) to the topic SES publishes Bounce, Complaint and Delivery notifications (or an event "
    "destination's events) to. SNS then posts a SubscriptionConfirmation: open the confirmation link shown "
    "on this hook to confirm it.",
    InboundProvider.BREVO: "Brevo → Transactional → Settings → Webhooks: add {url} with your user:password "
    "in place of USER:PASSWORD, for Delivered, Soft bounce, Hard bounce, Invalid email, Deferred and "
    "Complaint.",
}


def hook_setup_text(hook: InboundHook) -> str:
    """One sentence on where ``hook_setup_url`` goes in the provider's console and which events to send."""
    return _SETUP[hook.provider].format(url=hook_setup_url(hook))


def sns_confirm_url(sns_message: dict) -> str:
    """The SNS ``ConfirmSubscription`` link for a SubscriptionConfirmation body, built from its ``TopicArn``
    and ``Token`` (the same query AWS puts in ``SubscribeURL``, AWS SNS developer guide "Confirm the
    subscription"), for ``https://sns.<region>.amazonaws.com/`` only; the request's own ``SubscribeURL`` is
    never used or fetched. ValueError for a topic outside the ``aws`` partition or a malformed token."""
    arn = str(sns_message.get("TopicArn") or "")
    token = str(sns_message.get("Token") or "")
    match = _SNS_TOPIC_ARN.match(arn)
    if match is None or not _SNS_TOKEN.match(token):
        raise ValueError("Not an Amazon SNS subscription confirmation for an aws-partition topic.")
    query = urlencode({"Action": "ConfirmSubscription", "TopicArn": arn, "Token": token})
    return f"https://sns.{match['region']}.amazonaws.com/?{query}"


def _view(hook: InboundHook):
    view_class, secret_kwarg, options = _VIEWS[hook.provider]
    return view_class(**{secret_kwarg: decrypt_credentials(hook.secret_encrypted)["secret"]}, **options)


def _parse(hook: InboundHook, request) -> tuple[list, str]:
    """(anymail's events, the SNS confirmation link of a SubscriptionConfirmation or "")."""
    if uses_basic_auth(hook.provider) and not request.META.get("HTTP_AUTHORIZATION"):
        raise WebhookAuthRequired(f"{hook.get_provider_display()} webhooks need basic auth credentials.")
    try:
        view = _view(hook)
        view.run_validators(request)
        events = view.parse_events(request)
        confirm = ""
        if hook.provider == InboundProvider.AMAZON_SES:
            sns_message = view._parse_sns_message(request)  # cached by anymail's validator
            if sns_message.get("Type") == "SubscriptionConfirmation":
                confirm = sns_confirm_url(sns_message)
        return events, confirm
    except AnymailWebhookValidationFailure as err:
        raise WebhookRejected(str(err)) from err
    except (AnymailError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise WebhookRejected(f"Unreadable {hook.get_provider_display()} event payload.") from err


def _kind(provider: str, event) -> str | None:
    kind = _KINDS.get(event.event_type)
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    soft = _SOFT_BOUNCE.get(provider)
    if kind == EngagementKind.BOUNCE_HARD and soft is not None and soft(raw):
        return EngagementKind.BOUNCE_SOFT
    return kind


def _dedupe_key(provider: str, event) -> str:
    if event.event_id:
        per_recipient = f":{(event.recipient or '').lower()}" if provider in _ID_PER_NOTIFICATION else ""
        return f"{provider}:{event.event_id}{per_recipient}"[:200]
    raw = json.dumps(event.esp_event, sort_keys=True, default=str).encode()
    return f"{provider}:sha256:{hashlib.sha256(raw).hexdigest()}"


def _message_ids(provider: str, event) -> list[str]:
    """The ids a provider event may carry for our message: anymail's ``message_id`` and, for Amazon SES
    (whose ``mail.messageId`` is SES's own id), the original ``Message-ID`` header in
    ``mail.commonHeaders.messageId``."""
    ids = [event.message_id] if event.message_id else []
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    if provider == InboundProvider.AMAZON_SES:
        header = ((raw.get("mail") or {}).get("commonHeaders") or {}).get("messageId")
        if isinstance(header, str) and header:
            ids.append(header)
    return ids


def delivery_for_message_id(*, workspace_id: int, message_id: str | list[str] | None) -> Delivery | None:
    """The workspace's delivery whose stored Message-ID (ours, or the provider's) is ``message_id`` (or one of
    a list of candidates), compared with and without angle brackets."""
    candidates = message_id if isinstance(message_id, list) else [message_id] if message_id else []
    bare = {str(value).strip().strip("<>") for value in candidates} - {""}
    if not bare:
        return None
    return (
        Delivery.objects.select_related("campaign")
        .filter(workspace_id=workspace_id, message_id__in=[*bare, *(f"<{b}>" for b in bare)])
        .first()
    )


def event_consequences(*, delivery: Delivery, kind: str, source: str) -> None:
    """Suppress for a hard bounce or complaint; for a soft bounce once the contact has the limit of them;
    unsubscribe (crm's opt-out) for a provider-reported unsubscribe."""
    contact = delivery.contact
    context = {"campaign_id": delivery.campaign_id, "delivery_id": delivery.pk, "source": source}
    if kind == EngagementKind.UNSUBSCRIBE:
        crm_services.contact_unsubscribe(
            contact=contact, channel=CrmChannel.EMAIL, source=f"campaign:{delivery.campaign_id}:{source}",
            context=context,
        )  # fmt: skip
        return
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
    crm_services.contact_suppress(
        contact=contact,
        channel=CrmChannel.EMAIL,
        reason=reason,
        source=source,
        context=context,
    )


def event_record_once(
    *, delivery: Delivery, kind: str, dedupe_key: str, at=None, metadata: dict | None = None
) -> EngagementEvent | None:
    """Record an inbound event and its consequences, or None when ``dedupe_key`` was recorded before (or,
    for an unsubscribe, when the delivery already has one: our own link and the provider may both report
    it)."""
    if (
        kind == EngagementKind.UNSUBSCRIBE
        and EngagementEvent.objects.filter(
            workspace_id=delivery.workspace_id, delivery=delivery, kind=kind
        ).exists()
    ):
        return None
    try:
        with transaction.atomic():
            event = event_record(
                delivery=delivery, kind=kind, metadata=metadata, at=at, dedupe_key=dedupe_key
            )
            event_consequences(delivery=delivery, kind=kind, source=dedupe_key.split(":", 1)[0][:100])
    except IntegrityError:
        if EngagementEvent.objects.filter(workspace_id=delivery.workspace_id, dedupe_key=dedupe_key).exists():
            return None
        raise
    return event


def webhook_receive(*, hook: InboundHook, request) -> InboundResult:
    """Verify and record one webhook post. Raises ``WebhookAuthRequired`` (basic-auth provider, no
    credentials) or ``WebhookRejected`` for a bad signature or payload. An Amazon SNS
    SubscriptionConfirmation stores its confirmation link on the hook (``confirm_url``); the hook's first
    notification clears it."""
    events, confirm_url = _parse(hook, request)
    if confirm_url:
        hook.confirm_url, hook.confirm_requested_at = confirm_url, timezone.now()
        hook.save(update_fields=["confirm_url", "confirm_requested_at"])
    elif hook.confirm_url:
        hook.confirm_url, hook.confirm_requested_at = "", None
        hook.save(update_fields=["confirm_url", "confirm_requested_at"])
    recorded = duplicates = unmatched = ignored = 0
    for event in events:
        kind = _kind(hook.provider, event)
        if kind is None:
            ignored += 1
            continue
        delivery = delivery_for_message_id(
            workspace_id=hook.workspace_id, message_id=_message_ids(hook.provider, event)
        )
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
    return InboundResult(
        recorded=recorded,
        duplicates=duplicates,
        unmatched=unmatched,
        ignored=ignored,
        confirm_url=confirm_url,
    )


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
