"""Speed limits per campaign and per sender: Redis token buckets taken before each provider call."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from publishing.models import Delivery
from publishing.services import campaigns, sending

from .conftest import make_audience, make_campaign, make_content, smtp_account

pytestmark = pytest.mark.django_db


def _campaign(workspace, content, n, **limits):
    contact_list, _ = make_audience(workspace, n)
    campaign = campaigns.campaign_create(
        workspace=workspace, name="L", content=content, audience={"lists": [contact_list.pk]}
    )
    return campaigns.campaign_update(campaign=campaign, **limits) if limits else campaign


def _statuses(campaign):
    return sorted(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True))


def test_hourly_campaign_limit_hands_the_rest_back_with_retry_at(workspace, smtp_sink, fast_gateway):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    campaign = _campaign(workspace, make_content(workspace), 3, max_per_hour=2)
    campaigns.campaign_send_now(campaign=campaign)
    outcome = sending.campaign_send_batch(campaign_id=campaign.pk)
    assert outcome.sent == 1 and not outcome.more
    # 2 per hour, evenly spaced: the next token is due in about half an hour.
    assert timedelta(minutes=29) < outcome.retry_at - timezone.now() <= timedelta(minutes=30)
    assert _statuses(campaign) == ["queued", "queued", "sent"]
    waiting = Delivery.objects.filter(campaign=campaign, status="queued")
    assert all(d.retry_at == outcome.retry_at and d.send_started_at is None for d in waiting)
    campaign.refresh_from_db()
    assert "campaign limit 2/h" in campaign.waiting_reason
    # A worker coming back early claims nothing: the rows are not due yet.
    assert sending.campaign_send_batch(campaign_id=campaign.pk).sent == 0
    assert len(smtp_sink.messages) == 1


def test_sender_limit_is_shared_by_its_campaigns(workspace, smtp_sink, fast_gateway):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    content = make_content(workspace)
    sender = content.versions.get().sender
    sender.max_per_hour = 1
    sender.save()
    first, second = _campaign(workspace, content, 1), _campaign(workspace, content, 1)
    for c in (first, second):
        campaigns.campaign_send_now(campaign=c)
    assert sending.campaign_send_batch(campaign_id=first.pk).sent == 1
    outcome = sending.campaign_send_batch(campaign_id=second.pk)
    assert outcome.sent == 0 and outcome.retry_at is not None
    assert _statuses(second) == ["queued"]


def test_per_second_limit_waits_in_the_worker_and_sends_everyone(workspace, smtp_sink, fast_gateway):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    campaign = _campaign(workspace, make_content(workspace), 3, max_per_second=20)
    campaigns.campaign_send_now(campaign=campaign)
    assert sending.campaign_send_batch(campaign_id=campaign.pk).sent == 3
    assert _statuses(campaign) == ["sent"] * 3


@pytest.mark.parametrize("value", [0, -1, "x", "1.5", 2.5])
def test_limits_are_validated(workspace, value):
    campaign = make_campaign(workspace, 1)
    with pytest.raises(ValidationError, match="at least 1"):
        campaigns.campaign_update(campaign=campaign, max_per_second=value)
    assert campaigns.campaign_update(campaign=campaign, max_per_hour="").max_per_hour is None
    assert campaigns.campaign_update(campaign=campaign, max_per_hour=" 60 ").max_per_hour == 60
