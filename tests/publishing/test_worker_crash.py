"""Exactly-once with real processes: a `celery -A aicmo worker` subprocess sending through the gateway's
SMTP adapter to an aiosmtpd sink in another process, SIGKILLed mid-send and restarted; and a pause while a
message is in flight, then resume. The database is the test's committed database (SQLite file or the
PostgreSQL of a pgrun run), opened by the worker process through DATABASE_URL."""

from __future__ import annotations

import collections
import json
import os
import signal
import time
from pathlib import Path

import pytest

from publishing.models import Campaign, CampaignStatus, Delivery, DeliveryStatus, EngagementEvent
from publishing.services import campaigns
from publishing.tasks import campaigns_tick_task
from tests.crm.factories import ContactFactory
from tests.fixtures.services import wait_until

from .conftest import make_audience, make_content, smtp_account


def received(log: Path) -> collections.Counter:
    if not log.exists():
        return collections.Counter()
    return collections.Counter(json.loads(line)["to"][0] for line in log.read_text().splitlines() if line)


def statuses(campaign) -> collections.Counter:
    return collections.Counter(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True))


def setup_campaign(workspace, port: int, n: int):
    smtp_account(workspace, "127.0.0.1", port)
    contact_list, contacts = make_audience(workspace, n)
    content = make_content(workspace)
    campaign = campaigns.campaign_create(
        workspace=workspace, name="Crash test", content=content, audience={"lists": [contact_list.pk]}
    )
    return campaign, sorted(contacts, key=lambda c: c.pk)


@pytest.mark.faults
@pytest.mark.django_db(transaction=True)
def test_sigkill_mid_send_then_restart_sends_everyone_once_and_marks_the_in_flight_one_uncertain(
    workspace, processes, settings
):
    settings.PUBLISHING_SEND_CONCURRENCY = 1
    n = 12
    # Given a sink that holds the 7th recipient's DATA answer (in the second batch of 5)
    ContactFactory.reset_sequence(0)
    slow = "person6@example.com"
    port, log, marker = processes.sink(slow=[slow], delay=4)
    campaign, contacts = setup_campaign(workspace, port, n)
    assert slow in {c.email for c in contacts}
    first = processes.worker("first")
    campaigns.campaign_send_now(campaign=campaign)

    # When the worker is SIGKILLed while that message is in flight
    wait_until(marker.exists, 60, "the slow recipient's DATA at the sink")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    in_flight = Delivery.objects.get(campaign=campaign, email=slow)
    assert in_flight.status == DeliveryStatus.SENDING and in_flight.send_started_at is not None

    # And a new worker starts; beat's tick wakes the campaign once the dead worker's lease lapsed
    processes.worker("second")

    def finished():
        campaigns_tick_task.delay()
        return Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENT

    wait_until(finished, 90, "the campaign to finish")

    # Then everyone got exactly one message except the one in flight, which is uncertain (0 or 1 copies)
    time.sleep(4.5)  # the held-back answer lands at the sink
    counts = received(log)
    by_status = statuses(campaign)
    assert by_status == {DeliveryStatus.SENT: n - 1, DeliveryStatus.UNCERTAIN: 1}
    uncertain = Delivery.objects.get(campaign=campaign, status=DeliveryStatus.UNCERTAIN)
    assert uncertain.email == slow
    for contact in contacts:
        if contact.email == slow:
            assert counts[contact.email] <= 1
        else:
            assert counts[contact.email] == 1, contact.email
    campaign.refresh_from_db()
    assert campaign.job.failed == 1 and campaign.job.done == n - 1
    # person5 was sent by the killed worker just before the slow one; its `sent` event and job count were
    # still waiting for the batch's flush and were written by the recovery rule (`sending._sent_repair`).
    events = collections.Counter(
        EngagementEvent.objects.filter(campaign=campaign, kind="sent").values_list(
            "delivery__email", flat=True
        )
    )
    assert events == {c.email: 1 for c in contacts if c.email != slow}


@pytest.mark.faults
@pytest.mark.django_db(transaction=True)
def test_pause_while_a_message_is_in_flight_then_resume_sends_everyone_exactly_once(
    workspace, processes, settings
):
    settings.PUBLISHING_SEND_CONCURRENCY = 1
    n = 8
    ContactFactory.reset_sequence(0)
    slow = "person2@example.com"
    port, log, marker = processes.sink(slow=[slow], delay=2)
    campaign, contacts = setup_campaign(workspace, port, n)
    processes.worker("pausing")
    campaigns.campaign_send_now(campaign=campaign)

    # When the campaign is paused while the 3rd message is in flight
    wait_until(marker.exists, 60, "the slow recipient's DATA at the sink")
    campaigns.campaign_pause(campaign=Campaign.objects.get(pk=campaign.pk))

    # Then the worker finishes that message, gives its other claims back and sends nothing more
    wait_until(
        lambda: not Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.SENDING).exists(),
        30,
        "the worker to let go of its claims",
    )
    time.sleep(1)
    sent_while_paused = set(
        Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.SENT).values_list("email", flat=True)
    )
    assert slow in sent_while_paused and len(sent_while_paused) == 3
    assert set(received(log)) == sent_while_paused
    assert statuses(campaign)[DeliveryStatus.QUEUED] == n - 3

    # And after resume everyone has exactly one message, nobody skipped
    campaigns.campaign_resume(campaign=Campaign.objects.get(pk=campaign.pk))
    wait_until(
        lambda: Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENT,
        60,
        "the campaign to finish",
    )
    counts = received(log)
    assert {c.email: counts[c.email] for c in contacts} == {c.email: 1 for c in contacts}
    assert statuses(campaign) == {DeliveryStatus.SENT: n}
