"""CRM writes: lifecycle stages, engagement, scores and tiers, verification verdicts."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.utils import timezone

from aicmo.models import Workspace

from ..models import (
    Contact,
    Lifecycle,
    LifecycleTransition,
    Tier,
    Verdict,
)

STAGE_ORDER = [Lifecycle.NEW, Lifecycle.ENRICHED, Lifecycle.VERIFIED, Lifecycle.ENGAGED, Lifecycle.CONVERTED]
ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    Lifecycle.NEW: {Lifecycle.ENRICHED, Lifecycle.VERIFIED, Lifecycle.ENGAGED},
    Lifecycle.ENRICHED: {Lifecycle.VERIFIED, Lifecycle.ENGAGED},
    Lifecycle.VERIFIED: {Lifecycle.ENGAGED},
    Lifecycle.ENGAGED: {Lifecycle.CONVERTED},
    Lifecycle.CONVERTED: set(),
}


class LifecycleError(ValueError):
    pass


@transaction.atomic
def contact_transition(*, contact: Contact, to: str, reason: str = "", by=None) -> Contact:
    """The one place a lifecycle stage changes; every change leaves a `LifecycleTransition`."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if to not in Lifecycle.values:
        raise LifecycleError(f"Unknown stage {to!r}.")
    if to == contact.lifecycle:
        return contact
    if to not in ALLOWED_TRANSITIONS[contact.lifecycle]:
        raise LifecycleError(f"A contact cannot move from {contact.lifecycle} to {to}.")
    if (
        to == Lifecycle.ENRICHED
        and not contact.enrichment_records.filter(matched=True).exclude(fields={}).exists()
    ):
        raise LifecycleError("A contact is enriched only once a provider returned data for it.")
    if to == Lifecycle.VERIFIED and contact.verification != Verdict.VALID:
        raise LifecycleError("Only an email verified as valid makes a contact verified.")
    LifecycleTransition.objects.create(
        workspace_id=contact.workspace_id,
        contact=contact,
        from_stage=contact.lifecycle,
        to_stage=to,
        reason=reason,
    )
    contact.lifecycle = to
    contact.save(update_fields=["lifecycle", "updated_at"])
    return contact


def _advance_to(contact: Contact, to: str, reason: str) -> Contact:
    """Move forward to `to` if the contact is before it (never backwards)."""
    if (
        STAGE_ORDER.index(contact.lifecycle) < STAGE_ORDER.index(to)
        and to in ALLOWED_TRANSITIONS[contact.lifecycle]
    ):
        return contact_transition(contact=contact, to=to, reason=reason)
    return contact


def tier_for_score(score: int) -> str:
    if score >= 70:
        return Tier.HIGH
    if score >= 40:
        return Tier.MEDIUM
    if score > 0:
        return Tier.LOW
    return Tier.INACTIVE


@transaction.atomic
def contact_record_engagement(
    *,
    contact_id: int,
    at: dt.datetime | None = None,
    score: int | None = None,
    tier: str | None = None,
    converted: bool = False,
) -> Contact | None:
    """Written by publishing/analytics: last engaged time, score/tier; moves the stage to engaged/converted."""
    contact = Contact.objects.select_for_update().filter(pk=contact_id, erased_at__isnull=True).first()
    if contact is None:
        return None
    at = at or timezone.now()
    if contact.last_engaged_at is None or at > contact.last_engaged_at:
        contact.last_engaged_at = at
    if score is not None:
        contact.engagement_score = max(0, min(100, int(score)))
        contact.engagement_tier = tier or tier_for_score(contact.engagement_score)
    contact.save(update_fields=["last_engaged_at", "engagement_score", "engagement_tier", "updated_at"])
    contact = _advance_to(contact, Lifecycle.ENGAGED, "engagement")
    if converted:
        contact = _advance_to(contact, Lifecycle.CONVERTED, "conversion")
    return contact


def contacts_record_engagement(*, engaged: dict[int, dt.datetime]) -> int:
    """Bulk `contact_record_engagement` for event ingestion: ``{contact_id: latest engagement time}``.

    One UPDATE moves ``last_engaged_at`` forward (never back), then only contacts still before *engaged*
    go through `contact_transition` (each leaves its `LifecycleTransition`); erased contacts are left
    alone. Returns how many contacts changed stage. Queries: 2 plus the stage changes."""
    if not engaged:
        return 0
    ids = list(engaged)
    later = [
        When(Q(pk=pk) & (Q(last_engaged_at__isnull=True) | Q(last_engaged_at__lt=at)), then=Value(at))
        for pk, at in engaged.items()
    ]
    live = Contact.objects.filter(pk__in=ids, erased_at__isnull=True)
    live.update(
        last_engaged_at=Case(*later, default=F("last_engaged_at"), output_field=DateTimeField()),
        updated_at=timezone.now(),
    )
    before = [
        stage for stage in STAGE_ORDER if STAGE_ORDER.index(stage) < STAGE_ORDER.index(Lifecycle.ENGAGED)
    ]
    moved = 0
    for contact in live.filter(lifecycle__in=before).order_by("pk"):
        if _advance_to(contact, Lifecycle.ENGAGED, "engagement").lifecycle == Lifecycle.ENGAGED:
            moved += 1
    return moved


def contacts_set_scores(
    *, workspace: Workspace, scores: dict[int, int], tiers: dict[int, str] | None = None
) -> int:
    """Bulk score write for analytics (no lifecycle change, no per-row save): ``{contact_id: 0–100}`` and,
    optionally, the tier analytics decided for each (else `tier_for_score`). Erased contacts and ids of
    other workspaces are skipped. Returns how many contacts were written. Queries: 1 read + 1 UPDATE per
    500 contacts."""
    tiers = tiers or {}
    unknown = set(tiers.values()) - set(Tier.values)
    if unknown:
        raise ValueError(f"Unknown tier(s): {sorted(unknown)}")
    contacts = list(
        Contact.objects.for_workspace(workspace)
        .filter(pk__in=list(scores), erased_at__isnull=True)
        .only("pk")
    )
    for c in contacts:
        c.engagement_score = max(0, min(100, int(scores[c.pk])))
        c.engagement_tier = tiers.get(c.pk) or tier_for_score(c.engagement_score)
    Contact.objects.bulk_update(contacts, ["engagement_score", "engagement_tier"], batch_size=500)
    return len(contacts)


# ---------------------------------------------------------------- verification


def normalize_verdict(raw: str) -> str:
    """Provider statuses → our verdicts. Accept-all / catch-all is never `valid`."""
    value = (raw or "").strip().lower().replace("-", "_")
    if value in {"valid", "deliverable", "verified", "ok"}:
        return Verdict.VALID
    if value in {"invalid", "undeliverable", "bounced", "bad"}:
        return Verdict.INVALID
    if value in {"accept_all", "catch_all", "catchall", "acceptall"}:
        return Verdict.CATCH_ALL
    if value in {"risky", "disposable", "webmail", "role"}:
        return Verdict.RISKY
    return Verdict.UNKNOWN


@transaction.atomic
def contact_set_verification(*, contact: Contact, verdict: str, provider: str = "") -> Contact:
    verdict = verdict if verdict in Verdict.values else normalize_verdict(verdict)
    contact.verification = verdict
    contact.verified_at = timezone.now()
    contact.provenance["verification"] = {
        "source": "verification",
        "provider": provider,
        "at": contact.verified_at.isoformat(),
    }
    contact.save(update_fields=["verification", "verified_at", "provenance", "updated_at"])
    if verdict == Verdict.VALID:
        contact = _advance_to(contact, Lifecycle.VERIFIED, f"verified by {provider}".strip())
    return contact
