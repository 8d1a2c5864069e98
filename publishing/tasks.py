"""Celery tasks: ids in, one service call, safe to re-run (claims decide who sends what)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from .services import campaigns, event_buffer, sending

MAX_WAIT_SECONDS = 300  # longer waits are picked up by the beat tick from the database


@shared_task(acks_late=True, ignore_result=True)
def campaign_send_task(campaign_id: int) -> None:
    """Send batches until none is left, then hand over: to itself for the next batch, or to a short
    countdown when every provider is down (beat wakes the campaign too, so a lost task loses nothing)."""
    outcome = sending.campaign_send_batch(campaign_id=campaign_id)
    if outcome.more:
        campaign_send_task.delay(campaign_id)
    elif outcome.retry_at is not None:
        wait = (outcome.retry_at - timezone.now()).total_seconds()
        if wait <= MAX_WAIT_SECONDS:
            campaign_send_task.apply_async((campaign_id,), countdown=max(1, int(wait) + 1))


@shared_task(acks_late=True, ignore_result=True)
def campaigns_tick_task() -> dict:
    return campaigns.campaigns_tick()


@shared_task(acks_late=True, ignore_result=True)
def tracking_events_flush_task() -> int:
    """Beat (every 5 s): drain buffered opens/clicks into the event table; returns entries handled."""
    return event_buffer.tracking_events_drain().read
