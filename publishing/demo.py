"""Demo publishing data (seed_demo hook): a verified sender, an SMTP account pointing at the local demo
mail catcher (``make run`` starts it on 127.0.0.1:1025 and allows that port), a newsletter, one sent
campaign with deliveries and engagement events, and one campaign scheduled for next week. Idempotent:
nothing is added when the demo newsletter exists. Deterministic (seeded random)."""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm.models import ContactList
from gateway.capabilities import Capability
from gateway.models import ProviderAccount
from gateway.services import account_create

from .models import (
    CampaignStatus,
    Content,
    Delivery,
    DeliveryStatus,
    EngagementEvent,
    EngagementKind,
    Sender,
    TrackedLink,
)
from .services import campaigns as campaign_services
from .services import content as content_services
from .services.audience import audience_snapshot

CATCHER_URL = "smtp+plain://127.0.0.1:1025"
CATCHER_ACCOUNT = "Demo mail catcher (localhost:1025)"
NEWSLETTER = "Spring newsletter (demo)"
HTML = (
    "<h1>Spring is here, {{ contact.first_name | default('there') }}</h1>"
    "<p>Our spring collection just landed. {{ company.name | default('Your team') }} gets early access.</p>"
    '<p><a href="https://example.com/spring">See the collection</a> · '
    '<a href="https://example.com/pricing">Pricing</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
LINKS = ("https://example.com/spring", "https://example.com/pricing")


def _catcher_account(workspace, admin) -> None:
    if ProviderAccount.objects.for_workspace(workspace).filter(name=CATCHER_ACCOUNT).exists():
        return
    try:
        account_create(
            workspace=workspace,
            by=admin,
            capability=Capability.SEND_EMAIL,
            adapter="smtp",
            name=CATCHER_ACCOUNT,
            priority=1,
            base_url=CATCHER_URL,
            options={"from_email": "news@demo.aicmo.local"},
        )
    except ValidationError as exc:  # the loopback port is allowed by `make run` only
        print(f"  (demo mail catcher account not added: {'; '.join(exc.messages)})")


def _sent_events(campaign, rnd: random.Random) -> None:
    """Mark the snapshot's queued deliveries sent over the last week and add realistic engagement."""
    started = timezone.now() - timedelta(days=7)
    links = [
        TrackedLink(
            workspace_id=campaign.workspace_id, campaign=campaign, url=u, key=secrets.token_urlsafe(16)
        )
        for u in LINKS
    ]
    TrackedLink.objects.bulk_create(links, ignore_conflicts=True)
    rows = list(Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.QUEUED).order_by("pk"))
    events: list[EngagementEvent] = []

    def add(d: Delivery, kind: str, at: datetime, **extra) -> None:
        events.append(
            EngagementEvent(
                workspace_id=d.workspace_id,
                kind=kind,
                campaign=campaign,
                delivery=d,
                contact_id=d.contact_id,
                occurred_at=at,
                **extra,
            )
        )

    for i, d in enumerate(rows):
        d.status, d.sent_at = DeliveryStatus.SENT, started + timedelta(seconds=i)
        d.provider, d.message_id = "demo", f"<demo-{d.token}@demo.aicmo.local>"
        add(d, EngagementKind.SENT, d.sent_at)
        if rnd.random() < 0.02:
            add(d, EngagementKind.BOUNCE_HARD, d.sent_at + timedelta(minutes=1))
            continue
        add(d, EngagementKind.DELIVERED, d.sent_at + timedelta(seconds=5))
        if rnd.random() < 0.25:
            add(
                d,
                EngagementKind.OPEN,
                d.sent_at + timedelta(seconds=3),
                machine=True,
                metadata={"ua": "Mozilla/5.0"},
            )
        if rnd.random() < 0.35:
            opened = d.sent_at + timedelta(hours=rnd.randint(1, 48))
            add(d, EngagementKind.OPEN, opened)
            if rnd.random() < 0.3:
                add(
                    d,
                    EngagementKind.CLICK,
                    opened + timedelta(minutes=1),
                    metadata={"url": rnd.choice(LINKS)},
                )
                if rnd.random() < 0.15:
                    add(
                        d,
                        EngagementKind.CONVERSION,
                        opened + timedelta(hours=2),
                        value=Decimal(rnd.choice(["49.00", "99.00", "249.00"])),
                    )
            if rnd.random() < 0.02:
                add(d, EngagementKind.UNSUBSCRIBE, opened + timedelta(minutes=2))
            if rnd.random() < 0.03:
                add(d, EngagementKind.REPLY, opened + timedelta(hours=1))
    Delivery.objects.bulk_update(rows, ["status", "sent_at", "provider", "message_id"], batch_size=1000)
    EngagementEvent.objects.bulk_create(events, batch_size=2000)
    campaign.status = CampaignStatus.SENT
    campaign.started_at, campaign.finished_at = started, started + timedelta(seconds=len(rows))
    campaign.save(update_fields=["status", "started_at", "finished_at", "updated_at"])


def seed(workspace, *, users: dict) -> None:
    admin = users.get("admin")
    _catcher_account(workspace, admin)
    if Content.objects.for_workspace(workspace).filter(name=NEWSLETTER).exists():
        return
    audience = ContactList.objects.for_workspace(workspace).order_by("pk").first()
    if audience is None:
        return
    rnd = random.Random(20260301)
    with transaction.atomic():
        sender, _ = Sender.objects.get_or_create(
            workspace=workspace,
            email="news@demo.aicmo.local",
            defaults={"name": "Demo News", "verified_at": timezone.now()},
        )
        content = content_services.content_create(workspace=workspace, name=NEWSLETTER, by=admin)
        content_services.email_version_save(
            content=content,
            by=admin,
            subject="Spring is here, {{ contact.first_name | default('friend') }}",
            preheader="Early access to the spring collection",
            sender=sender,
            html=HTML,
        )
        sent, later = (
            campaign_services.campaign_update(
                campaign=campaign_services.campaign_create(
                    workspace=workspace,
                    name=name,
                    content=content,
                    audience={"lists": [audience.pk]},
                    by=admin,
                ),
                **fields,
            )
            for name, fields in (
                (
                    "Spring launch (sent)",
                    {"utm": {"utm_source": "aicmo", "utm_medium": "email", "utm_campaign": "spring"}},
                ),
                ("Spring follow-up (scheduled)", {"max_per_second": 5}),
            )
        )
        audience_snapshot(sent)
        _sent_events(sent, rnd)
        when = (timezone.now() + timedelta(days=7)).replace(
            hour=9, minute=0, second=0, microsecond=0, tzinfo=None
        )
        campaign_services.campaign_schedule(campaign=later, when=when, by=admin)
