"""One row per API resource in a workspace, keyed by the resource's path under /api/v1/ (e.g. "crm/contacts").

Used by the API fuzzer (real ids for detail operations) and the tenant sweep (another workspace's rows).
"""

from __future__ import annotations

import functools
import secrets
import uuid

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from aicmo.apikeys import api_key_create
from aicmo.invitations import invitation_create
from aicmo.models import Membership, Role
from crm.models import ImportRun
from media.models import Suggestion, SuggestionCode
from tests.crm.factories import (
    CompanyFactory,
    ContactFactory,
    ContactListFactory,
    CustomFieldFactory,
    SegmentFactory,
    TagFactory,
)
from tests.factories import AuditEventFactory, JobFactory
from tests.gateway.factories import ProviderAccountFactory
from tests.media.factories import MediaAssetFactory, MediaLibraryFactory


@functools.cache
def _pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def publishing_rows(workspace, contact) -> dict[str, int]:
    from publishing.models import (
        ABTest,
        ABVariant,
        Campaign,
        Content,
        Delivery,
        EngagementEvent,
        Layout,
        Sender,
        WebhookDelivery,
        WebhookEndpoint,
    )

    sender, _ = Sender.objects.get_or_create(
        workspace=workspace, email="row@example.com", defaults={"verified_at": timezone.now()}
    )
    content = Content.objects.create(workspace=workspace, name="row")
    campaign = Campaign.objects.create(workspace=workspace, name="row", content=content)
    delivery = Delivery.objects.create(
        workspace=workspace,
        campaign=campaign,
        contact=contact,
        email=contact.email,
        token=secrets.token_urlsafe(16),
    )
    event = EngagementEvent.objects.create(
        workspace=workspace, kind="open", campaign=campaign, delivery=delivery, occurred_at=timezone.now()
    )
    tested = Campaign.objects.create(workspace=workspace, name="row A/B", content=content)
    abtest = ABTest.objects.create(workspace=workspace, campaign=tested, seed=1)
    for label in ("A", "B"):
        ABVariant.objects.create(workspace=workspace, abtest=abtest, label=label, subject=f"Subject {label}")
    endpoint = WebhookEndpoint.objects.create(
        workspace=workspace, url="https://hooks.example.com/row", event_types=["email.opened"]
    )
    hook_delivery = WebhookDelivery.objects.create(
        workspace=workspace,
        endpoint=endpoint,
        event_id="evt_row",
        event_type="email.opened",
        occurred_at=timezone.now(),
        status="failed",
    )
    from publishing.services import dkim as dkim_services
    from publishing.services import inbound as inbound_services

    # a waiting key beside the active one, so a call that could delete or activate it would show; a fresh
    # domain per call (the fuzzer asks for rows once per operation), one uploaded key (no RSA generation)
    domain = f"row-{secrets.token_hex(4)}.example"
    dkim_services.dkim_key_create(
        workspace=workspace, domain=domain, selector="active", private_key_pem=_pem()
    )
    dkim_key = dkim_services.dkim_key_create(
        workspace=workspace, domain=domain, selector="waiting", private_key_pem=_pem()
    )
    hook = inbound_services.hook_create(workspace=workspace, provider="brevo", secret="row:secret")
    return {
        "publishing/webhooks": endpoint.pk,
        "publishing/webhook-deliveries": hook_delivery.pk,
        "publishing/dkim-keys": dkim_key.pk,
        "publishing/inbound-hooks": hook.pk,
        "publishing/abtests": abtest.pk,
        "publishing/senders": sender.pk,
        "publishing/layouts": Layout.objects.get_or_create(
            workspace=workspace, name="row", defaults={"html": "{{ body }}"}
        )[0].pk,
        "publishing/contents": content.pk,
        "publishing/campaigns": campaign.pk,
        "publishing/events": event.pk,
    }


def analytics_rows(workspace, contact, campaign_id: int) -> dict[str, int]:
    from analytics.models import CustomerValue, LifetimeFit, Order

    order = Order.objects.create(
        workspace=workspace,
        contact=contact,
        external_id=f"row-{uuid.uuid4().hex[:8]}",
        ordered_at=timezone.now(),
        amount=10,
        currency="EUR",
        source="api",
    )
    fit = LifetimeFit.objects.create(
        workspace=workspace,
        observation_date=timezone.now().date(),
        currency="EUR",
        months=12,
        monthly_discount=0.01,
    )
    value = CustomerValue.objects.create(
        workspace=workspace, contact=contact, fit=fit, orders=1, revenue=10, aov=10,
        first_order=fit.observation_date, last_order=fit.observation_date, frequency=0, recency_days=0,
        age_days=0, r_score=1, f_score=1, m_score=1, segment="Hibernating",
    )  # fmt: skip
    return {
        "analytics/orders": order.pk,
        "analytics/campaigns": campaign_id,
        "analytics/lifetime-fits": fit.pk,
        "analytics/customer-values": value.pk,
        "analytics/scores": contact.pk,  # a contact's score history (scores/contacts/{id}/history/)
        "analytics/contacts": contact.pk,  # contact 360 figures and timeline (contacts/{id}/, timeline/)
    }


def one_row_per_resource(workspace, member_factory) -> dict[str, int]:
    """Fresh rows in `workspace` (needs settings.MEDIA_ROOT pointed at a temporary directory)."""
    contact = ContactFactory(workspace=workspace, company=CompanyFactory(workspace=workspace))
    asset = MediaAssetFactory(workspace=workspace)
    admin = member_factory(workspace, Role.ADMIN)
    viewer = member_factory(workspace, Role.VIEWER)
    suggestion = Suggestion.objects.create(
        workspace=workspace,
        asset=asset,
        code=SuggestionCode.values[0],
        message="m",
        computed_at=timezone.now(),
    )
    run = ImportRun.objects.create(
        workspace=workspace, file=SimpleUploadedFile("a.csv", b"email\nx@example.com\n")
    )
    publishing = publishing_rows(workspace, contact)
    return {
        **publishing,
        **analytics_rows(workspace, contact, publishing["publishing/campaigns"]),
        "api-keys": api_key_create(workspace=workspace, name="row", role=Role.VIEWER, by=admin).api_key.pk,
        "audit-events": AuditEventFactory(workspace=workspace).pk,
        "crm/companies": contact.company_id,
        "crm/contacts": contact.pk,
        "crm/custom-fields": CustomFieldFactory(workspace=workspace).pk,
        "crm/imports": run.pk,
        "crm/lists": ContactListFactory(workspace=workspace).pk,
        "crm/segments": SegmentFactory(workspace=workspace).pk,
        "crm/tags": TagFactory(workspace=workspace).pk,
        "gateway/accounts": ProviderAccountFactory(workspace=workspace, adapter="demo_verification").pk,
        "invitations": invitation_create(
            workspace=workspace, email=f"row-{uuid.uuid4().hex[:8]}@example.com", role=Role.VIEWER, by=admin
        ).pk,
        "jobs": JobFactory(workspace=workspace).pk,
        "media/assets": asset.pk,
        "media/libraries": MediaLibraryFactory(workspace=workspace).pk,
        "media/renditions": asset.pk,
        "media/suggestions": suggestion.pk,
        "members": Membership.objects.get(workspace=workspace, user=viewer).pk,
    }
