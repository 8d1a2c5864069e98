"""Sending through the real gateway chain and SMTP adapter into an aiosmtpd sink (services called
directly: the claim protocol is what is under test; live workers are in test_worker_crash.py)."""

from __future__ import annotations

import pytest

from aicmo.models import Job
from publishing.models import CampaignStatus, Delivery, DeliveryStatus, EngagementEvent
from publishing.services import campaigns, sending

from .conftest import make_audience, make_content, smtp_account

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def campaign(workspace, smtp_sink, fast_gateway, django_capture_on_commit_callbacks):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    contact_list, _contacts = make_audience(workspace, 5)
    content = make_content(workspace)
    return campaigns.campaign_create(
        workspace=workspace, name="Launch", content=content, audience={"lists": [contact_list.pk]}
    )


def drain(campaign_id: int) -> None:
    for _ in range(50):
        outcome = sending.campaign_send_batch(campaign_id=campaign_id)
        if not outcome.more:
            return


def test_every_recipient_gets_one_multipart_message_with_list_unsubscribe(campaign, smtp_sink, settings):
    settings.PUBLISHING_SEND_BATCH_SIZE = 2
    campaigns.campaign_send_now(campaign=campaign)
    drain(campaign.pk)
    received = smtp_sink.wait_for(5)
    assert sorted(m["To"] for m in received) == sorted(
        Delivery.objects.filter(campaign=campaign).values_list("email", flat=True)
    )
    msg = received[0]
    assert msg.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_content() for p in msg.iter_parts()}
    assert "color: #123456" in parts["text/html"]  # CSS inlined
    assert "Hello First" in parts["text/plain"]  # text part generated from the HTML
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = [x.strip(" <>") for x in msg["List-Unsubscribe"].split(",")]
    assert https.startswith(settings.PUBLIC_BASE_URL + "/publishing/u/") and mailto.startswith("mailto:")
    assert msg["Feedback-ID"] == f"{campaign.pk}:{campaign.workspace_id}:email:aicmo"
    delivery = Delivery.objects.get(campaign=campaign, email=msg["To"])
    assert delivery.status == DeliveryStatus.SENT and delivery.message_id == msg["Message-ID"]
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    job = Job.objects.get(pk=campaign.job_id)
    assert (job.status, job.done, job.total) == ("succeeded", 5, 5)
    assert EngagementEvent.objects.filter(campaign=campaign, kind="sent").count() == 5
