"""A campaign sent while the task queue (broker) is unreachable: the request answers as usual, nothing is
lost, and beat's tick sends it once the queue is back."""

from __future__ import annotations

import pytest
from django.utils import timezone

from publishing.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from publishing.selectors import campaigns_to_wake
from publishing.services.sending import claim_lease
from tests.core.test_job_enqueue import UNREACHABLE, broker  # noqa: F401 - the fixture

from .conftest import make_audience, make_content

pytestmark = pytest.mark.django_db
API = "/api/v1/publishing"


def test_send_with_the_broker_down_answers_202_and_the_tick_wakes_it(
    api_client_for,
    broker,  # noqa: F811 - the fixture imported above
    django_capture_on_commit_callbacks,
):
    marketer = api_client_for(role="marketer")
    ws = marketer.workspace
    contact_list, _ = make_audience(ws, 3)
    campaign = marketer.post(
        f"{API}/campaigns/",
        {"name": "Launch", "content": make_content(ws).pk, "audience": {"lists": [contact_list.pk]}},
        format="json",
    ).json()

    # When it is sent while nothing listens where the broker should be
    broker(UNREACHABLE)
    with django_capture_on_commit_callbacks(execute=True):
        resp = marketer.post(f"{API}/campaigns/{campaign['id']}/send/", HTTP_IDEMPOTENCY_KEY="k-1")

    # Then the request answers as usual, the audience is frozen and the campaign waits as sending
    assert resp.status_code == 202, resp.content
    assert resp.json()["status"] == CampaignStatus.SENDING
    assert Delivery.objects.filter(campaign_id=campaign["id"], status=DeliveryStatus.QUEUED).count() == 3
    # and beat's tick will wake it (no worker holds a claim on it)
    assert Campaign.objects.get(pk=campaign["id"]).status == CampaignStatus.SENDING
    assert campaign["id"] in campaigns_to_wake(now=timezone.now(), lease=claim_lease())
