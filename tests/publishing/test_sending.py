"""Sending through the real gateway chain and SMTP adapter into an aiosmtpd sink (services called
directly: the claim protocol is what is under test; live workers are in test_worker_crash.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from aicmo.models import Job
from crm.models import Suppression
from publishing.models import CampaignStatus, Delivery, DeliveryStatus, EngagementEvent
from publishing.services import campaigns, sending

from .conftest import make_campaign, smtp_account

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def campaign(workspace, smtp_sink, fast_gateway, django_capture_on_commit_callbacks):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    return make_campaign(workspace, 5, name="Launch")


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
    assert len(smtp_sink.logins) == 1  # one SMTP connection reused for the whole batch


def test_every_provider_down_deliveries_wait_for_retry_at_and_campaign_says_why(
    workspace, smtp_sink, fast_gateway, django_capture_on_commit_callbacks, loopback_allow
):
    from aicmo.localredis import free_port

    port = free_port()
    loopback_allow("127.0.0.1", port)
    account = smtp_account(workspace, "127.0.0.1", port)  # allowed, but nothing listens there
    campaign = make_campaign(workspace, 3, name="Down")
    campaigns.campaign_send_now(campaign=campaign)
    outcome = sending.campaign_send_batch(campaign_id=campaign.pk)
    assert outcome.retry_at is not None and outcome.retry_at > timezone.now()
    rows = Delivery.objects.filter(campaign=campaign)
    assert set(rows.values_list("status", flat=True)) == {DeliveryStatus.QUEUED}
    assert all(r.retry_at is not None and r.send_started_at is None for r in rows)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING and campaign.waiting_reason.startswith("Waiting until")
    assert "send_email" in campaign.waiting_reason
    # Before retry_at nothing is claimed; the campaign is not finished either.
    assert sending.campaign_send_batch(campaign_id=campaign.pk).retry_at is not None
    assert smtp_sink.messages == []
    # The provider comes back and retry_at passes: everyone is sent once, the reason is cleared.
    account.base_url = f"smtp+plain://{smtp_sink.host}:{smtp_sink.port}"
    account.save()
    rows.update(retry_at=timezone.now() - timedelta(seconds=1))
    drain(campaign.pk)
    assert sorted(m["To"] for m in smtp_sink.wait_for(3)) == sorted(rows.values_list("email", flat=True))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT and campaign.waiting_reason == ""


def test_dead_claims_unstarted_requeued_started_uncertain_then_operator_resends(
    campaign, smtp_sink, settings, django_capture_on_commit_callbacks
):
    """Rows left by a crashed worker (claim older than the lease): the never-started ones are sent, the
    one it had handed to the provider is uncertain and not resent until an operator asks."""
    campaigns.campaign_send_now(campaign=campaign)
    rows = list(Delivery.objects.filter(campaign=campaign).order_by("pk"))
    old = timezone.now() - timedelta(seconds=settings.PUBLISHING_CLAIM_LEASE_SECONDS + 5)
    Delivery.objects.filter(pk__in=[r.pk for r in rows[:2]]).update(
        status=DeliveryStatus.SENDING, claimed_by="dead-worker", claimed_at=old
    )
    Delivery.objects.filter(pk=rows[0].pk).update(send_started_at=old, message_id="<x@acme.example>")
    drain(campaign.pk)
    got = sorted(m["To"] for m in smtp_sink.wait_for(4))
    assert got == sorted(r.email for r in rows[1:])
    assert Delivery.objects.get(pk=rows[0].pk).status == DeliveryStatus.UNCERTAIN
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT  # every delivery is terminal
    assert Job.objects.get(pk=campaign.job_id).failed == 1
    assert campaigns.campaign_resend_uncertain(campaign=campaign) == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING
    drain(campaign.pk)
    assert [m["To"] for m in smtp_sink.wait_for(5)].count(rows[0].email) == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    job = Job.objects.get(pk=campaign.job_id)
    assert (job.done, job.failed, job.status) == (5, 0, "succeeded")


def test_paused_campaign_sends_nothing_and_resume_sends_each_once(
    campaign, smtp_sink, settings, django_capture_on_commit_callbacks
):
    settings.PUBLISHING_SEND_BATCH_SIZE = 2
    campaigns.campaign_send_now(campaign=campaign)
    assert sending.campaign_send_batch(campaign_id=campaign.pk).sent == 2
    campaigns.campaign_pause(campaign=campaign)
    outcome = sending.campaign_send_batch(campaign_id=campaign.pk)
    assert outcome.stopped and len(smtp_sink.wait_for(2)) == 2
    campaigns.campaign_resume(campaign=campaign)
    drain(campaign.pk)
    got = [m["To"] for m in smtp_sink.wait_for(5)]
    assert sorted(got) == sorted(Delivery.objects.filter(campaign=campaign).values_list("email", flat=True))


def test_contact_suppressed_after_snapshot_is_skipped(
    campaign, smtp_sink, django_capture_on_commit_callbacks
):
    campaigns.campaign_send_now(campaign=campaign)
    first = Delivery.objects.filter(campaign=campaign).order_by("pk").first()
    Suppression.objects.create(
        workspace=campaign.workspace, contact_id=first.contact_id, channel="email", reason="complained"
    )
    drain(campaign.pk)
    assert first.email not in [m["To"] for m in smtp_sink.wait_for(4)]
    first.refresh_from_db()
    assert (first.status, first.skip_reason) == (DeliveryStatus.SKIPPED, "suppressed_since_snapshot")


def test_cancel_skips_queued_and_stops_workers(campaign, smtp_sink, django_capture_on_commit_callbacks):
    campaign = campaigns.campaign_send_now(campaign=campaign)
    campaigns.campaign_cancel(campaign=campaign)
    assert sending.campaign_send_batch(campaign_id=campaign.pk).stopped
    assert set(Delivery.objects.filter(campaign=campaign).values_list("skip_reason", flat=True)) == {
        "cancelled"
    }
    assert smtp_sink.messages == []
    assert Job.objects.get(pk=campaign.job_id).status == "cancelled"


def test_two_claimers_never_share_a_row(campaign, settings, django_capture_on_commit_callbacks):
    campaigns.campaign_send_now(campaign=campaign)
    a = sending.batch_claim(campaign_id=campaign.pk, me="a", size=3)
    b = sending.batch_claim(campaign_id=campaign.pk, me="b", size=3)
    assert len(a) == 3 and len(b) == 2 and not set(a) & set(b)
    assert sending.batch_claim(campaign_id=campaign.pk, me="c", size=3) == []


def test_send_batch_query_count_is_flat_per_message(
    campaign, smtp_sink, settings, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    settings.PUBLISHING_SEND_BATCH_SIZE = 5
    campaigns.campaign_send_now(campaign=campaign)
    with django_assert_max_num_queries(20 + 5 * 14):
        outcome = sending.campaign_send_batch(campaign_id=campaign.pk)
    assert outcome.sent == 5


def test_cancelling_the_job_from_the_jobs_page_cancels_the_campaign(
    campaign, smtp_sink, django_capture_on_commit_callbacks
):
    from aicmo.jobs import job_cancel

    campaign = campaigns.campaign_send_now(campaign=campaign)
    job_cancel(job=campaign.job, by=None)
    assert sending.campaign_send_batch(campaign_id=campaign.pk).stopped
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED and smtp_sink.messages == []
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"skipped"}


def test_campaign_whose_every_delivery_failed_is_failed(
    workspace, smtp_sink, fast_gateway, django_capture_on_commit_callbacks
):
    """The SMTP adapter refuses a recipient it cannot address (bad input: never retried)."""
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    campaign = make_campaign(workspace, 2, name="Bad")
    campaign = campaigns.campaign_send_now(campaign=campaign)
    Delivery.objects.filter(campaign=campaign).update(email="not-an-address")
    drain(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FAILED and smtp_sink.messages == []
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"failed"}
    job = Job.objects.get(pk=campaign.job_id)
    assert (job.status, job.failed) == ("failed", 2)


@pytest.mark.django_db(transaction=True)
def test_a_slow_worker_whose_claim_was_taken_for_dead_settles_the_row_as_sent(
    campaign, smtp_sink, settings, django_capture_on_commit_callbacks
):
    """The SMTP sink answers only after the lease has lapsed and another worker's recovery marked the row
    uncertain; the provider's answer then settles it as sent, and the job counts it once."""
    import asyncio

    settings.PUBLISHING_SEND_BATCH_SIZE = 1
    settings.PUBLISHING_CLAIM_LEASE_SECONDS = 1
    campaign = campaigns.campaign_send_now(campaign=campaign)
    original = type(smtp_sink).handle_DATA

    def recover_elsewhere() -> None:  # another worker's recovery, on its own connection
        from django.db import connection

        try:
            sending.claims_recover(campaign_id=campaign.pk)
        finally:
            connection.close()

    async def slow_then_recover(self, server, session, envelope):
        if not getattr(self, "recovered", False):
            self.recovered = True
            await asyncio.sleep(1.5)
            await asyncio.to_thread(recover_elsewhere)
        return await original(self, server, session, envelope)

    type(smtp_sink).handle_DATA = slow_then_recover
    try:
        outcome = sending.campaign_send_batch(campaign_id=campaign.pk)
    finally:
        type(smtp_sink).handle_DATA = original
    assert outcome.sent == 1
    first = Delivery.objects.filter(campaign=campaign).exclude(status=DeliveryStatus.QUEUED).get()
    assert first.status == DeliveryStatus.SENT
    job = Job.objects.get(pk=campaign.job_id)
    assert (job.done, job.failed) == (1, 0)


def test_sent_rows_a_dead_worker_never_counted_are_repaired_when_the_campaign_finishes(
    campaign, smtp_sink, settings
):
    """Recovery rule of the deferred counting: `sent` events and job counts are flushed per batch, so a
    worker killed between a sent mark and its flush leaves sent rows without events. A live worker
    flushes at every lease renewal; rows older than the lease are a dead worker's and are counted when
    the campaign finishes (younger ones make it wait)."""
    settings.PUBLISHING_SEND_BATCH_SIZE = 5
    campaigns.campaign_send_now(campaign=campaign)
    sending.campaign_send_batch(campaign_id=campaign.pk)
    smtp_sink.wait_for(5)
    campaign.refresh_from_db()
    assert campaign.job.done == 5
    # What the killed worker would have left: sent marks, but neither events nor job counts.
    EngagementEvent.objects.filter(campaign=campaign, kind="sent").delete()
    Job.objects.filter(pk=campaign.job_id).update(done=0)
    # Claims younger than the lease: maybe a live worker about to flush; the campaign waits for it.
    retry_at = sending.campaign_finish_if_complete(campaign_id=campaign.pk)
    assert retry_at is not None and retry_at > timezone.now()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING
    assert not EngagementEvent.objects.filter(campaign=campaign, kind="sent").exists()
    # Once the lease has passed, the rows are counted once, at their own send time.
    Delivery.objects.filter(campaign=campaign).update(claimed_at=timezone.now() - timedelta(minutes=5))
    assert sending.campaign_finish_if_complete(campaign_id=campaign.pk) is None
    assert sending.campaign_finish_if_complete(campaign_id=campaign.pk) is None
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    events = EngagementEvent.objects.filter(campaign=campaign, kind="sent")
    assert sorted(events.values_list("delivery_id", flat=True)) == sorted(
        Delivery.objects.filter(campaign=campaign).values_list("pk", flat=True)
    )
    assert all(e.occurred_at == e.delivery.sent_at for e in events.select_related("delivery"))
    job = Job.objects.get(pk=campaign.job_id)
    assert (job.status, job.done, job.total) == ("succeeded", 5, 5)


def test_one_sent_event_per_delivery_is_a_database_guarantee(campaign, smtp_sink):
    campaigns.campaign_send_now(campaign=campaign)
    drain(campaign.pk)
    delivery = Delivery.objects.filter(campaign=campaign).select_related("campaign").first()
    again = sending._Settled(job_id=None)
    again.events.append(sending._sent_event(delivery, "smtp", timezone.now()))
    again.flush()  # a late flush after a repair inserts nothing
    assert EngagementEvent.objects.filter(delivery=delivery, kind="sent").count() == 1
