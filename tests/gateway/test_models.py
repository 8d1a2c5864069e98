"""Credentials at rest: encrypted, rotatable to a new key, unreadable without it; model constraints."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import IntegrityError
from django.utils import timezone

from gateway.crypto import CredentialsUnreadable, decrypt_credentials, encrypt_credentials, mask_secret
from gateway.models import HealthMinute
from tests.gateway.factories import ProviderAccountFactory, fixture_test_adapters  # noqa: F401


def test_roundtrip_and_ciphertext_hides_the_secret(settings):
    token = encrypt_credentials({"api_key": "very-secret"})
    assert "very-secret" not in token
    assert decrypt_credentials(token) == {"api_key": "very-secret"}
    assert encrypt_credentials({}) == "" and decrypt_credentials("") == {}


def test_rotation_to_a_new_key(settings, workspace):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    account = ProviderAccountFactory(workspace=workspace, credentials={"api_key": "rotate-me"})
    old_token = account.credentials_encrypted
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    assert account.get_credentials() == {"api_key": "rotate-me"}  # old tokens still readable meanwhile
    out = StringIO()
    call_command("gateway_rotate_credentials", stdout=out)
    assert "gateway.ProviderAccount.credentials_encrypted: 1 re-encrypted" in out.getvalue()
    account.refresh_from_db()
    assert account.credentials_encrypted != old_token
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key can now be dropped
    assert account.get_credentials() == {"api_key": "rotate-me"}
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    with pytest.raises(CredentialsUnreadable):
        account.get_credentials()


def test_mask_reveals_only_the_tail():
    assert mask_secret("sk-live-abcdef987654") == "••••7654"
    assert mask_secret("short") == "••••"


def test_health_minute_is_unique_per_account_and_minute(workspace):
    account = ProviderAccountFactory(workspace=workspace)
    minute = timezone.now().replace(second=0, microsecond=0)
    HealthMinute.objects.create(workspace=workspace, account=account, minute=minute, calls=1)
    with pytest.raises(IntegrityError):
        HealthMinute.objects.create(workspace=workspace, account=account, minute=minute, calls=1)


def test_demo_seed_one_account_per_capability_idempotent_and_every_facade_works(
    workspace, member_factory, redis_client
):
    from datetime import date, timedelta
    from decimal import Decimal

    from gateway import services
    from gateway.capabilities import (
        AdCampaignSpec,
        Capability,
        CrmRecord,
        OutgoingEmail,
        PersonQuery,
        SocialPost,
        WebhookEvent,
    )
    from gateway.demo import seed
    from gateway.models import ProviderAccount

    users = {"admin": member_factory(workspace, "admin")}
    seed(workspace, users=users)
    seed(workspace, users=users)
    accounts = ProviderAccount.objects.for_workspace(workspace)
    assert sorted(accounts.values_list("capability", flat=True)) == sorted(Capability.values)
    assert all(a.is_demo for a in accounts)

    ws = workspace
    [person] = services.enrich_people(workspace=ws, queries=[PersonQuery(email="ada@example.com")])
    assert person.demo
    assert services.verify_email(workspace=ws, email="ada@example.com").demo
    sent = services.send_email(
        workspace=ws,
        message=OutgoingEmail(to="ada@example.com", subject="Hi", text="x", from_email="me@acme.test"),
    )
    assert sent.demo and sent.message_id.endswith("@acme.test>")
    services.fetch_replies(
        workspace=ws, since=date.today() - timedelta(days=1), known_message_ids=[sent.message_id]
    )
    assert services.sync_crm(workspace=ws, records=[CrmRecord(email="ada@example.com")]).demo
    posted = services.post_social(
        workspace=ws, network="linkedin", post=SocialPost(network="linkedin", text="Hello")
    )
    assert posted.demo and posted.network == "linkedin"
    assert services.social_metrics(workspace=ws, network="linkedin", external_id=posted.external_id).demo
    campaign = services.run_ads(workspace=ws, spec=AdCampaignSpec(name="Q4", daily_budget=Decimal("25.00")))
    assert campaign.demo
    services.fetch_ad_insights(
        workspace=ws,
        external_id=campaign.external_id,
        since=date.today() - timedelta(days=3),
        until=date.today(),
    )
    hook = services.dispatch_webhook(
        workspace=ws,
        url="https://hooks.example.com/x",
        secret="whsec_abc",
        event=WebhookEvent("contact.created", {"id": 1}),
    )
    assert hook.demo and hook.event_id.startswith("msg_")

    from gateway.health import selfcheck_workspace

    checks = selfcheck_workspace(workspace=ws)
    assert len(checks) == len(Capability.values) and all(c.ok for c in checks)
