"""Retention of raw engagement events and of outbound webhook deliveries (``AICMO_RETENTION`` entries, see
aicmo/retention.py).

Raw events are the input of analytics' daily rollups, which keep their figures for good. An event is
deleted only when all of these hold:

- it is older than ``AICMO_RETENTION_EVENTS_DAYS`` (0 keeps every event, the setting's default is 730);
- it belongs to a campaign (events without one are not rolled up: kept);
- analytics has rolled it up: its id is at or below the workspace's rollup watermark, as reported by the
  function named in ``PUBLISHING_EVENTS_ROLLED_UP`` (``{workspace id: highest rolled-up event id}``;
  unset or failing: nothing is deleted, an event is never lost before it was counted);
- its campaign is *cold*: no event of that campaign is younger than the cut-off, so a campaign's lifetime
  unique counts (recomputed from raw events when any of its days is re-rolled) never lose half their input.

Before deleting, the function named in ``PUBLISHING_EVENTS_PRUNED`` is told the cut-off per workspace;
analytics records it and from then on refuses to rebuild older days (``analytics.rollups.rollup_days``),
so a backfill can never turn pruned days into zeros.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from aicmo.retention import delete_in_batches

from .models import EngagementEvent, WebhookDelivery, WebhookDeliveryStatus

log = logging.getLogger(__name__)


def events_cutoff(now=None):
    """The instant before which raw events may be pruned, or ``None`` when retention keeps them all."""
    days = settings.AICMO_RETENTION_EVENTS_DAYS
    if days <= 0:
        return None
    return (now or timezone.now()) - timedelta(days=days)


def prune_events(now=None) -> int:
    """Delete rolled-up raw events of cold campaigns older than the cut-off; returns rows deleted."""
    cutoff = events_cutoff(now)
    if cutoff is None or not settings.PUBLISHING_EVENTS_ROLLED_UP:
        return 0
    rolled_up: dict[int, int] = import_string(settings.PUBLISHING_EVENTS_ROLLED_UP)()
    pruned = import_string(settings.PUBLISHING_EVENTS_PRUNED)
    total = 0
    for workspace_id, last_event_id in sorted(rolled_up.items()):
        pruned(workspace_id, cutoff)
        events = EngagementEvent.objects.filter(workspace_id=workspace_id)
        hot = events.filter(occurred_at__gte=cutoff, campaign_id__isnull=False).values("campaign_id")
        prunable = events.filter(
            id__lte=last_event_id, occurred_at__lt=cutoff, campaign_id__isnull=False
        ).exclude(campaign_id__in=hot)
        total += delete_in_batches(prunable)
    log.info("pruned %s raw engagement events older than %s", total, cutoff.isoformat())
    return total


def webhook_deliveries_prunable(now=None):
    """Finished webhook deliveries past their age: ``succeeded`` ones whose ``finished_at`` is older than
    ``AICMO_RETENTION_WEBHOOKS_SUCCEEDED_DAYS`` (30), ``failed`` and ``discarded`` ones older than
    ``AICMO_RETENTION_WEBHOOKS_FAILED_DAYS`` (90; kept longer: they are what an integrator asks about).
    A delivery still waiting (``pending``/``retrying``) is never prunable, however old. 0 days keeps that
    kind. One queryset over every workspace: retention is the operator's rule, not a tenant's."""
    now = now or timezone.now()
    S = WebhookDeliveryStatus
    rules = (
        ((S.SUCCEEDED,), settings.AICMO_RETENTION_WEBHOOKS_SUCCEEDED_DAYS),
        ((S.FAILED, S.DISCARDED), settings.AICMO_RETENTION_WEBHOOKS_FAILED_DAYS),
    )
    query = Q(pk__in=[])
    for statuses, days in rules:
        if days > 0:
            query |= Q(status__in=statuses, finished_at__lt=now - timedelta(days=days))
    return WebhookDelivery.objects.filter(query)


def prune_webhook_deliveries(now=None) -> int:
    """Delete :func:`webhook_deliveries_prunable` in batches of ``aicmo.retention.BATCH`` rows, one short
    transaction each; returns rows deleted."""
    total = delete_in_batches(webhook_deliveries_prunable(now))
    log.info("pruned %s finished webhook deliveries", total)
    return total
