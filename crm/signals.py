"""What crm tells the apps above it (docs/ARCHITECTURE.md §1: crm imports none of them).

``contacts_opted_out`` is sent by ``crm.services.consent`` — the one place an opt-out is decided — inside
the writing transaction, once per (contact, channel) that turned from sendable to opted out, whatever the
way in (one-click link, ``mailto:``, API, dashboard, import, a spam complaint). Publishing turns it into
``contact.unsubscribed`` webhooks. Receivers write in the same transaction (a rollback takes their rows
with it) and must not do I/O: queue it on commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.dispatch import Signal


@dataclass(frozen=True)
class OptOut:
    """One contact's opt-out of one channel.

    ``reason``: ``unsubscribed`` (the person asked) or ``complained`` (a spam complaint, which opts out
    too); ``source``: as written to the consent log (``api``, ``dashboard``, ``import:<run id>``,
    ``campaign:<id>:one-click`` …); ``consent_event_id``: the consent log row recording it (stable: a
    subscriber's id for the fact); ``context``: what the caller passed along (publishing: its campaign and
    delivery ids), opaque to crm."""

    workspace_id: int
    contact_id: int
    email: str
    channel: str
    reason: str
    source: str
    at: datetime
    consent_event_id: int
    context: dict[str, Any] = field(default_factory=dict)


# sender=crm.models.Contact, opt_outs=list[OptOut]
contacts_opted_out = Signal()
