"""Celery tasks: ids in, one service call, safe to re-run (claims decide who sends what)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from aicmo.models import Workspace
from gateway.errors import ProviderError, ProvidersUnavailable

from .services import abtests, campaigns, event_buffer, inbound, sending, tracking, webhooks

log = logging.getLogger(__name__)

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
def replies_fetch_task(workspace_id: int) -> None:
    """One workspace's replies and bounces; a mailbox that is down is tried again at the next beat."""
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return
    try:
        inbound.replies_fetch(workspace=workspace)
    except ProvidersUnavailable:
        return


@shared_task(acks_late=True, ignore_result=True)
def replies_fetch_all_task() -> int:
    """Beat: one fetch task per workspace that has a reply mailbox."""
    ids = inbound.workspaces_fetching_replies()
    for workspace_id in ids:
        replies_fetch_task.delay(workspace_id)
    return len(ids)


@shared_task(acks_late=True, ignore_result=True)
def abtests_tick_task() -> int:
    """Beat: decide A/B tests whose wait is over (sends the winner to the rest when automatic)."""
    return abtests.abtests_tick()


@shared_task(acks_late=True, ignore_result=True)
def tracking_events_flush_task() -> int:
    """Beat (every 5 s): drain buffered opens/clicks into the event table; returns entries handled."""
    return event_buffer.tracking_events_drain().read


@shared_task(acks_late=True, ignore_result=True)
def mailto_unsubscribes_task() -> int:
    """Beat (every 5 min): apply List-Unsubscribe mailto: requests from each workspace's reply mailbox
    (workspaces with an enabled ``fetch_replies`` account). A workspace whose providers fail is logged and
    retried on the next run; the others go on. Returns requests applied."""
    applied = 0
    for workspace in tracking.mailbox_workspaces():
        try:
            applied += tracking.mailto_unsubscribes_process(workspace=workspace)
        except ProviderError as exc:
            log.warning("mailto unsubscribes of workspace %s not read: %s", workspace.pk, exc)
    return applied


@shared_task(acks_late=True, ignore_result=True)
def webhook_dispatch_due_task() -> int:
    """Beat (every 15 s) and every fan-out: queue one delivery task per due webhook delivery."""
    return webhooks.deliveries_dispatch_due()


@shared_task(acks_late=True, ignore_result=True)
def webhook_deliver_task(delivery_id: int) -> str:
    """One attempt of one webhook delivery (queue ``webhooks``); a duplicate or late task is a no-op."""
    return webhooks.delivery_attempt(delivery_id=delivery_id)
