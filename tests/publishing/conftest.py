"""Publishing fixtures: a verified sender, an email content, a list audience and an SMTP account on the
test SMTP sink (the real gateway SMTP adapter and chain)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from crm.models import ListMembership
from gateway.capabilities import Capability
from gateway.crypto import encrypt_credentials
from gateway.models import ProviderAccount
from publishing.models import Content, Sender
from publishing.services import content as content_services
from tests.crm.factories import ContactFactory, ContactListFactory
from tests.gateway.test_adapters_mail import dovecot  # noqa: F401 - the gateway tests' real IMAP server fixture

HTML = (
    "<html><head><style>p { color: #123456 }</style></head><body>"
    '<p>Hello {{ contact.first_name | default("there") }}</p>'
    '<a href="https://acme.example/offer">Offer</a>'
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>'
)


def make_sender(workspace, email="news@acme.example", verified=True) -> Sender:
    return Sender.objects.create(
        workspace=workspace, email=email, name="Acme News", verified_at=timezone.now() if verified else None
    )


def make_content(
    workspace, *, sender=None, html=HTML, subject="Hi {{ contact.first_name }}", **extra
) -> Content:
    content = content_services.content_create(workspace=workspace, name="Newsletter")
    content_services.email_version_save(
        content=content, subject=subject, sender=sender or make_sender(workspace), html=html, **extra
    )
    return content


def make_audience(workspace, n: int, **contact_kwargs):
    contact_list = ContactListFactory(workspace=workspace)
    contacts = ContactFactory.create_batch(n, workspace=workspace, **contact_kwargs)
    ListMembership.objects.bulk_create(
        [ListMembership(workspace=workspace, contact_list=contact_list, contact=c) for c in contacts]
    )
    return contact_list, contacts


def make_campaign(workspace, n: int = 3, *, name: str = "C", **kwargs):
    """A draft email campaign to a new list of ``n`` contacts."""
    from publishing.services import campaigns

    contact_list, _ = make_audience(workspace, n)
    return campaigns.campaign_create(
        workspace=workspace,
        name=name,
        content=make_content(workspace),
        audience={"lists": [contact_list.pk]},
        **kwargs,
    )


def send_to_one(workspace, smtp_sink):
    """One message really sent through the SMTP sink: (delivery, the received message)."""
    from publishing.models import Delivery
    from publishing.services import campaigns, sending

    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    contact_list, _ = make_audience(workspace, 1)
    campaign = campaigns.campaign_create(
        workspace=workspace, name="T", content=make_content(workspace), audience={"lists": [contact_list.pk]}
    )
    campaigns.campaign_send_now(campaign=campaign)
    sending.campaign_send_batch(campaign_id=campaign.pk)
    message = smtp_sink.wait_for(1)[0]
    return Delivery.objects.get(campaign=campaign), message


def smtp_account(workspace, host: str, port: int, *, name="SMTP", priority=1) -> ProviderAccount:
    account = ProviderAccount.objects.create(
        workspace=workspace,
        capability=Capability.SEND_EMAIL,
        adapter="smtp",
        name=name,
        priority=priority,
        base_url=f"smtp+plain://{host}:{port}",
        options={"from_email": "news@acme.example"},
        timeout_seconds=5,
        credentials_encrypted=encrypt_credentials({"username": "mailer", "password": "pw"}),
    )
    return account


def imap_account(workspace, port: int) -> ProviderAccount:
    """The workspace's fetch_replies account on the real dovecot mailbox at ``port`` (the ``dovecot`` fixture)."""
    return ProviderAccount.objects.create(
        workspace=workspace,
        capability=Capability.FETCH_REPLIES,
        adapter="imap",
        name="Replies",
        priority=1,
        base_url=f"imap+plain://127.0.0.1:{port}",
        timeout_seconds=5,
        credentials_encrypted=encrypt_credentials({"username": "inbox", "password": "pw123"}),
    )


@pytest.fixture
def fast_gateway(settings, redis_client):
    """Real Redis for the breaker, and a short retry budget so "every provider down" is decided quickly."""
    settings.GATEWAY_RETRY = {"max_attempts": 2, "max_seconds": 3, "base_delay": 0.01, "max_delay": 0.02}
    return redis_client


def drain_tracking():
    """Flush buffered opens and clicks into EngagementEvent, as the beat task does every few seconds."""
    from publishing.services.event_buffer import tracking_events_drain

    return tracking_events_drain()
