"""Tracking: signed tokens for the open pixel, click redirects and unsubscribe, and the events they write.

Tokens sign a delivery's random ``token`` (and a link's random ``key``) with a salt per purpose, so a
pixel token cannot be replayed as an unsubscribe token and no sequential id is exposed or guessable.
Machine opens/clicks are flagged, never dropped: Apple Mail Privacy Protection fetches through Apple's
proxies (User-Agent ``Mozilla/5.0`` with no browser token, documented by Apple in 2021), security scanners
and link prefetchers announce themselves or act within seconds of delivery.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone

from crm import services as crm_services
from crm.models import Channel as CrmChannel

from ..models import Campaign, Delivery, EngagementEvent, EngagementKind, TrackedLink
from . import event_buffer, webhooks

SALT_OPEN = "publishing.tracking.open"
SALT_CLICK = "publishing.tracking.click"
SALT_UNSUBSCRIBE = "publishing.tracking.unsubscribe"

# Opens/clicks this soon after the send are taken as prefetch/scanners.
MACHINE_WINDOW = timedelta(seconds=10)
_MACHINE_AGENTS = re.compile(
    r"bot|crawl|spider|scan|preview|proofpoint|mimecast|barracuda|safelinks|googleimageproxy|yahoomailproxy",
    re.IGNORECASE,
)


def _sign(salt: str, value: str) -> str:
    return signing.Signer(salt=salt).sign(value)


def _unsign(salt: str, token: str) -> str | None:
    try:
        return signing.Signer(salt=salt).unsign(token)
    except signing.BadSignature:
        return None


def public_url(path: str) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


_ARG_SLOT = "0slot0"


@lru_cache(maxsize=64)
def _route(name: str, prefix: str, urlconf) -> tuple[str, str]:
    head, _, tail = reverse(name, args=[_ARG_SLOT], urlconf=urlconf).partition(_ARG_SLOT)
    return head, tail


def _token_url(name: str, token: str) -> str:
    """``public_url(reverse(name, args=[token]))`` for a signed token (URL-safe characters only, which
    reverse() would leave as they are), resolving the route once per URL name instead of per message."""
    head, tail = _route(name, get_script_prefix(), get_urlconf())
    return public_url(head + token + tail)


def open_url(delivery: Delivery) -> str:
    return _token_url("publishing:track-open", _sign(SALT_OPEN, delivery.token))


def click_url(delivery: Delivery, link: TrackedLink) -> str:
    return _token_url("publishing:track-click", _sign(SALT_CLICK, f"{delivery.token}.{link.key}"))


def unsubscribe_token(delivery: Delivery) -> str:
    return _sign(SALT_UNSUBSCRIBE, delivery.token)


def unsubscribe_url(delivery: Delivery) -> str:
    return _token_url("publishing:unsubscribe", unsubscribe_token(delivery))


def delivery_for_token(salt: str, token: str) -> Delivery | None:
    value = _unsign(salt, token)
    if value is None:
        return None
    return Delivery.objects.select_related("campaign").filter(token=value.split(".", 1)[0]).first()


def is_machine(delivery: Delivery, user_agent: str, *, now=None) -> bool:
    """Apple MPP proxy, a scanner/preview agent, or a hit within MACHINE_WINDOW of the send."""
    now = now or timezone.now()
    ua = (user_agent or "").strip()
    if not ua or _MACHINE_AGENTS.search(ua):
        return True
    if ua == "Mozilla/5.0":  # Apple Mail Privacy Protection's proxy fetch
        return True
    return delivery.sent_at is not None and now - delivery.sent_at < MACHINE_WINDOW


@transaction.atomic
def event_record(
    *,
    delivery: Delivery,
    kind: str,
    machine: bool = False,
    metadata: dict | None = None,
    at=None,
    dedupe_key: str = "",
) -> EngagementEvent:
    """One event of a delivery; a non-blank ``dedupe_key`` is unique per workspace (IntegrityError twice).
    Fans the event out to the workspace's webhook endpoints in the same transaction."""
    event = EngagementEvent.objects.create(
        workspace_id=delivery.workspace_id,
        kind=kind,
        channel=delivery.campaign.channel,
        campaign_id=delivery.campaign_id,
        delivery=delivery,
        contact_id=delivery.contact_id,
        occurred_at=at or timezone.now(),
        machine=machine,
        metadata=metadata or {},
        dedupe_key=dedupe_key,
    )
    webhooks.engagement_events_emit([event], {delivery.contact_id: delivery.email})
    return event


def track_open(*, token: str, user_agent: str = "") -> bool:
    """Buffer an open for a validly signed pixel token (no database access; ``event_buffer``). False for a
    bad token (nothing recorded)."""
    value = _unsign(SALT_OPEN, token)
    if value is None:
        return False
    event_buffer.record_buffer(
        event_buffer.record_make(kind=EngagementKind.OPEN, delivery_token=value, user_agent=user_agent)
    )
    return True


UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def utm_clean(value) -> dict[str, str]:
    """A campaign's UTM defaults: a dict of the five ``utm_*`` keys to non-empty strings (≤ 200 chars,
    blanks dropped). ValidationError ``{"utm": [...]}`` for anything else."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ValidationError({"utm": ["Give the UTM parameters as an object of utm_* keys."]})
    unknown = sorted(str(k) for k in value if k not in UTM_KEYS)
    if unknown:
        raise ValidationError({"utm": [f"Unknown UTM parameter(s): {', '.join(unknown)}."]})
    clean = {}
    for key in UTM_KEYS:
        raw = value.get(key)
        if raw is None:
            continue
        if not isinstance(raw, str) or len(raw.strip()) > 200:
            raise ValidationError({"utm": [f"{key} must be text of at most 200 characters."]})
        if raw.strip():
            clean[key] = raw.strip()
    return clean


def utm_apply(url: str, utm: dict[str, str]) -> str:
    """``url`` with the campaign's UTM parameters appended, except those the link already carries (a link
    overrides a campaign default by naming its own ``utm_*``). The rest of the URL is kept byte for byte."""
    if not utm:
        return url
    parts = urlsplit(url)
    present = {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = [(k, utm[k]) for k in UTM_KEYS if utm.get(k) and k not in present]
    if not extra:
        return url
    query = f"{parts.query}&{urlencode(extra)}" if parts.query else urlencode(extra)
    return urlunsplit(parts._replace(query=query))


def track_click(*, token: str, user_agent: str = "") -> str | None:
    """The stored target URL of a validly signed click token, with the campaign's UTM parameters (see
    `utm_apply`), else None; the click is buffered (``event_buffer``), so the redirect waits on one indexed
    read, never on the event write. The signature vouches that the delivery and link belong together; the
    insert re-checks it."""
    value = _unsign(SALT_CLICK, token)
    if value is None or "." not in value:
        return None
    delivery_token, link_key = value.split(".", 1)
    found = TrackedLink.objects.filter(key=link_key).values_list("url", "campaign__utm").first()
    if found is None:
        return None
    url, utm = found
    event_buffer.record_buffer(
        event_buffer.record_make(
            kind=EngagementKind.CLICK, delivery_token=delivery_token, user_agent=user_agent, link_key=link_key
        )
    )
    return utm_apply(url, utm)


@transaction.atomic
def unsubscribe(*, token: str, source: str, ip: str | None = None) -> Delivery | None:
    """Suppress the delivery's contact on the campaign's channel (crm writes the consent log). Idempotent:
    a repeat records no second event. None for a bad token."""
    delivery = delivery_for_token(SALT_UNSUBSCRIBE, token)
    if delivery is None:
        return None
    contact = delivery.contact
    already = contact.suppressions.filter(channel=CrmChannel.EMAIL).exists()
    crm_services.contact_unsubscribe(
        contact=contact,
        channel=CrmChannel.EMAIL,
        source=f"campaign:{delivery.campaign_id}:{source}",
        ip=ip,
        context={"campaign_id": delivery.campaign_id, "delivery_id": delivery.pk, "source": source},
    )
    if not already:
        event_record(delivery=delivery, kind=EngagementKind.UNSUBSCRIBE, metadata={"source": source})
    return delivery


def mailbox_workspaces():
    """Workspaces with an enabled ``fetch_replies`` gateway account (whose mailbox may hold requests)."""
    from aicmo.models import Workspace
    from gateway.capabilities import Capability
    from gateway.models import ProviderAccount

    accounts = ProviderAccount.objects.filter(capability=Capability.FETCH_REPLIES, enabled=True)
    return Workspace.objects.filter(pk__in=accounts.values("workspace_id")).order_by("pk")


def mailto_unsubscribes_process(*, workspace, since=None) -> int:
    """Read the workspace's reply mailbox through the gateway (``fetch_replies``, e.g. IMAP) and apply every
    List-Unsubscribe ``mailto:`` request in it — subject ``unsubscribe <signed token>``, as our header
    sets — through the same idempotent ``unsubscribe`` as the one-click URL (source ``mailto``). Messages
    from the last 7 days (or since ``since``) are read each time; repeats change nothing. Returns how many
    requests carried a valid token. Raises the gateway's ``ProviderError``/``ProvidersUnavailable``."""
    from gateway import services as gateway_services
    from gateway.capabilities import InboundKind

    since = since or timezone.now() - timedelta(days=7)
    applied = 0
    for message in gateway_services.fetch_replies(workspace=workspace, since=since, known_message_ids=[]):
        if message.kind != InboundKind.UNSUBSCRIBE:
            continue
        words = message.subject.split(None, 1)  # "unsubscribe <token>" (a long subject may arrive folded)
        token = re.sub(r"\s+", "", words[1]) if len(words) == 2 else ""
        delivery = delivery_for_token(SALT_UNSUBSCRIBE, token)
        if delivery is None or delivery.workspace_id != workspace.pk:
            continue
        unsubscribe(token=token, source="mailto")
        applied += 1
    return applied


@transaction.atomic
def resubscribe(*, token: str, ip: str | None = None) -> Delivery | None:
    delivery = delivery_for_token(SALT_UNSUBSCRIBE, token)
    if delivery is None:
        return None
    crm_services.contact_resubscribe(
        contact=delivery.contact,
        channel=CrmChannel.EMAIL,
        source=f"campaign:{delivery.campaign_id}:confirm-page",
        ip=ip,
    )
    return delivery


def links_ensure(campaign: Campaign, urls: list[str]) -> dict[str, TrackedLink]:
    """TrackedLink rows for ``urls`` (created once per campaign and URL, random keys)."""
    existing = {link.url: link for link in TrackedLink.objects.filter(campaign=campaign, url__in=urls)}
    missing = [u for u in dict.fromkeys(urls) if u not in existing]
    if missing:
        TrackedLink.objects.bulk_create(
            [
                TrackedLink(
                    workspace_id=campaign.workspace_id,
                    campaign=campaign,
                    url=u,
                    key=secrets.token_urlsafe(16),
                )
                for u in missing
            ],
            ignore_conflicts=True,
        )
        existing = {link.url: link for link in TrackedLink.objects.filter(campaign=campaign, url__in=urls)}
    return existing
