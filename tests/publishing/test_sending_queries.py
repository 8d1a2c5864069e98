"""Queries per sent message: a batch's cost grows by a fixed, small number of queries per recipient —
the start mark (which also re-checks that the campaign is still sending) and the sent mark; the sent
events, job counters, skips and the gateway's account lookup are per batch."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from publishing.models import Delivery
from publishing.services import campaigns, sending

from .conftest import make_audience, make_content, smtp_account

pytestmark = pytest.mark.django_db


def batch_queries(workspace, content, n: int, name: str) -> int:
    contact_list, _ = make_audience(workspace, n)
    campaign = campaigns.campaign_create(
        workspace=workspace, name=name, content=content, audience={"lists": [contact_list.pk]}
    )
    campaigns.campaign_send_now(campaign=campaign)
    with CaptureQueriesContext(connection) as ctx:
        outcome = sending.campaign_send_batch(campaign_id=campaign.pk)
    assert outcome.sent == n and Delivery.objects.filter(campaign=campaign, status="sent").count() == n
    return len(ctx.captured_queries)


def test_queries_per_message_are_bounded(workspace, smtp_sink, fast_gateway, settings):
    settings.PUBLISHING_SEND_BATCH_SIZE = 50
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    content = make_content(workspace)
    batch_queries(workspace, content, 2, "warm-up")  # first-use caches (content types, gateway account)
    small = batch_queries(workspace, content, 10, "A")
    large = batch_queries(workspace, content, 30, "B")
    per_message = (large - small) / 20
    print(f"queries: 10 → {small}, 30 → {large}, per message {per_message}")
    assert per_message <= PER_MESSAGE
    assert small - 10 * per_message <= PER_BATCH
    assert smtp_sink.wait_for(42)


PER_MESSAGE = 2
PER_BATCH = 25
