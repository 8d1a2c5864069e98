"""Buffered open/click ingestion: the public endpoints append one compact record to a Redis Stream, a
task drains the stream in batches into ``EngagementEvent`` with one bulk insert per batch.

Record (stream field ``r``, JSON): ``{"key": 32 hex chars, "kind": "open"|"click", "token": delivery
token, "link": link key or "", "ua": User-Agent (≤ 300 chars), "at": epoch seconds (float, UTC)}``.

Delivery guarantees (Redis Streams consumer groups, https://redis.io/docs/latest/develop/data-types/streams/):

- at-least-once out of Redis: a flusher reads with ``XREADGROUP`` and acknowledges (``XACK`` + ``XDEL``)
  only after the insert committed. Entries a dead flusher read but never acknowledged stay pending and are
  taken over with ``XAUTOCLAIM`` once idle for ``PUBLISHING_EVENT_CLAIM_IDLE_SECONDS`` (default 60);
- exactly-once into the table: every record carries a random ``key`` stored in the unique
  ``EngagementEvent.key`` column and inserted with ``ON CONFLICT DO NOTHING``, so a re-drained batch is not
  doubled;
- Redis unreachable: the endpoint inserts the same record directly (``events_insert``), so nothing is
  dropped and the pixel/redirect still answers.

Machine flags are computed at insert time from the recorded ``at`` (not the flush time), with the same
rule as direct tracking (``tracking.is_machine``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db import transaction

from aicmo.redis import get_redis
from crm import services as crm_services

from ..models import Delivery, EngagementEvent, EngagementKind, TrackedLink
from . import webhooks

log = logging.getLogger(__name__)

STREAM = "publishing:tracking:events"
GROUP = "flusher"
BATCH_SIZE = 500


def record_make(*, kind: str, delivery_token: str, user_agent: str, link_key: str = "") -> dict:
    """A buffer record (shape in the module docstring) stamped now, with a fresh unique key."""
    return {
        "key": uuid.uuid4().hex,
        "kind": kind,
        "token": delivery_token,
        "link": link_key,
        "ua": (user_agent or "")[:300],
        "at": time.time(),
    }


def record_buffer(record: dict) -> None:
    """Append ``record`` to the stream; if Redis cannot take it, insert it directly (never dropped)."""
    try:
        get_redis().xadd(STREAM, {"r": json.dumps(record, separators=(",", ":"))})
    except redis.RedisError:
        log.warning("tracking buffer unavailable; inserting the %s event directly", record["kind"])
        events_insert([record])


def events_insert(records: list[dict]) -> int:
    """Insert the events of ``records`` in one bulk insert; returns how many records were valid.

    Records whose delivery is gone, or whose link is not the delivery's campaign's, are dropped. A record
    whose ``key`` is already stored is skipped by the database (``ignore_conflicts``), which makes a
    re-drain harmless. Human (non-machine) events move the contact's lifecycle through crm, once per contact
    per batch, at the latest event's time. Queries: 2 reads + 1 insert (+ crm's per engaged contact).
    """
    from .tracking import is_machine

    if not records:
        return 0
    tokens = {r["token"] for r in records}
    link_keys = {r["link"] for r in records if r.get("link")}
    deliveries = {
        d.token: d
        for d in Delivery.objects.filter(token__in=tokens)
        .select_related("campaign")
        .only(
            "id",
            "token",
            "email",
            "workspace_id",
            "contact_id",
            "campaign_id",
            "sent_at",
            "campaign__channel",
        )
    }
    links = (
        {
            link.key: link
            for link in TrackedLink.objects.filter(key__in=link_keys).only("key", "url", "campaign_id")
        }
        if link_keys
        else {}
    )
    events: list[EngagementEvent] = []
    engaged: dict[int, datetime] = {}
    for record in records:
        delivery = deliveries.get(record["token"])
        if delivery is None or record["kind"] not in (EngagementKind.OPEN, EngagementKind.CLICK):
            continue
        metadata = {"ua": record["ua"]}
        if record["kind"] == EngagementKind.CLICK:
            link = links.get(record.get("link", ""))
            if link is None or link.campaign_id != delivery.campaign_id:
                continue
            metadata = {"url": link.url, "ua": record["ua"]}
        at = datetime.fromtimestamp(record["at"], tz=UTC)
        machine = is_machine(delivery, record["ua"], now=at)
        events.append(
            EngagementEvent(
                workspace_id=delivery.workspace_id,
                key=record["key"],
                kind=record["kind"],
                channel=delivery.campaign.channel,
                campaign_id=delivery.campaign_id,
                delivery_id=delivery.pk,
                contact_id=delivery.contact_id,
                occurred_at=at,
                machine=machine,
                metadata=metadata,
            )
        )
        if not machine:
            engaged[delivery.contact_id] = max(at, engaged.get(delivery.contact_id, at))
    with transaction.atomic():
        EngagementEvent.objects.bulk_create(events, ignore_conflicts=True)
        crm_services.contacts_record_engagement(engaged=engaged)
        # A re-drained record has the same key, hence the same webhook-id: not delivered twice.
        webhooks.engagement_events_emit(events, {d.contact_id: d.email for d in deliveries.values()})
    return len(events)


@dataclass
class FlushResult:
    read: int = 0  # stream entries handled (acknowledged), including invalid records
    inserted: int = 0  # valid records handed to the insert (already-stored keys included)
    more: bool = False  # a full batch was read: there may be more waiting


def _consumer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def tracking_events_flush(*, batch_size: int = BATCH_SIZE) -> FlushResult:
    """Drain one batch: first entries a dead flusher left pending (idle past the claim timeout), else new
    ones; insert, then acknowledge and delete them. An exception before the acknowledgement leaves the
    batch pending, to be re-drained (without doubles) by the next flush after the idle timeout."""
    client = get_redis()
    _ensure_group(client)
    consumer = _consumer_name()
    idle_ms = int(getattr(settings, "PUBLISHING_EVENT_CLAIM_IDLE_SECONDS", 60) * 1000)
    _next, entries, *_deleted = client.xautoclaim(
        STREAM, GROUP, consumer, min_idle_time=idle_ms, start_id="0-0", count=batch_size
    )
    if not entries:
        response = client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=batch_size)
        entries = response[0][1] if response else []
    entries = [(entry_id, fields) for entry_id, fields in entries if fields]  # deleted meanwhile: skip
    if not entries:
        return FlushResult()
    records = []
    for _entry_id, fields in entries:
        try:
            records.append(json.loads(fields[b"r"]))
        except (KeyError, ValueError):
            log.error("tracking buffer: unreadable entry %r dropped", fields)
    inserted = events_insert(records)
    ids = [entry_id for entry_id, _ in entries]
    pipe = client.pipeline(transaction=True)
    pipe.xack(STREAM, GROUP, *ids)
    pipe.xdel(STREAM, *ids)
    pipe.execute()
    return FlushResult(read=len(entries), inserted=inserted, more=len(entries) >= batch_size)


def tracking_events_drain(*, max_batches: int = 100, batch_size: int = BATCH_SIZE) -> FlushResult:
    """Flush batches until the stream has nothing more (or ``max_batches``); totals of all batches."""
    total = FlushResult()
    for _ in range(max_batches):
        result = tracking_events_flush(batch_size=batch_size)
        total.read += result.read
        total.inserted += result.inserted
        total.more = result.more
        if not result.more:
            break
    return total


def tracking_buffer_length() -> int:
    """Entries in the stream not yet acknowledged and deleted (waiting or in a flusher's hands)."""
    return int(get_redis().xlen(STREAM))
