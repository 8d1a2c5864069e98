"""CRM writes: applying enrichment results with field provenance and the merge policy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import (
    Contact,
    EnrichmentConflict,
    EnrichmentRecord,
    Lifecycle,
)
from ..normalize import json_finite, placeholder_domain
from .contacts import company_get_or_create
from .lifecycle import contact_transition

ENRICHABLE_FIELDS = ("first_name", "last_name", "title", "phone", "company")


def enrichment_ttl() -> dt.timedelta:
    return dt.timedelta(days=int(getattr(settings, "CRM_ENRICHMENT_TTL_DAYS", 30)))


def _is_verified_record(fields: dict) -> bool:
    return str(fields.get("email_status", "")).lower() in {"verified", "valid"}


def _current_value(contact: Contact, name: str) -> str:
    if name == "company":
        return contact.company.name if contact.company_id and contact.company else ""
    return getattr(contact, name) or ""


@transaction.atomic
def enrichment_apply(
    *,
    contact: Contact,
    provider: str,
    fields: dict,
    matched: bool = True,
    credits_used=0,
    demo: bool = False,
    raw_id: str = "",
    fetched_at: dt.datetime | None = None,
) -> EnrichmentRecord:
    """Store one provider answer and merge it: typed values never change, newer verified data wins over older,
    every value not applied is kept as an `EnrichmentConflict`."""
    contact = Contact.objects.select_for_update(of=("self",)).select_related("company").get(pk=contact.pk)
    fetched_at = fetched_at or timezone.now()
    clean = {k: v for k, v in json_finite(fields or {}).items() if v not in (None, "", [], {})}
    record = EnrichmentRecord.objects.create(
        workspace_id=contact.workspace_id,
        contact=contact,
        provider=provider,
        raw_id=str(raw_id or "")[:200],
        matched=bool(matched and clean),
        fetched_at=fetched_at,
        fields=clean,
        credits_used=credits_used or 0,
        demo=demo,
    )
    if not record.matched:
        return record
    verified = _is_verified_record(clean)
    typed = set(contact.typed_fields or [])
    conflicts = []
    for name in ENRICHABLE_FIELDS:
        offered = str(clean.get(name, "")).strip()
        if not offered:
            continue
        current = _current_value(contact, name)
        if current.strip().lower() == offered.lower():
            continue
        prov = contact.provenance.get(name) or {}
        if current and (name in typed or prov.get("source") in {"typed", "import"} or not prov):
            conflicts.append((name, current, offered, "kept_typed"))
            continue
        if current:
            old_rank = (bool(prov.get("verified")), prov.get("at", ""))
            new_rank = (verified, fetched_at.isoformat())
            if new_rank < old_rank:
                conflicts.append((name, current, offered, "kept_existing"))
                continue
            conflicts.append((name, current, offered, "replaced_older"))
        if name == "company":
            domain = clean.get("domain") or placeholder_domain(offered)
            contact.company = company_get_or_create(workspace=contact.workspace, domain=domain, name=offered)
        else:
            setattr(contact, name, offered[: Contact._meta.get_field(name).max_length])
        contact.provenance[name] = {
            "source": "enrichment",
            "provider": provider,
            "record_id": record.pk,
            "at": fetched_at.isoformat(),
            "verified": verified,
            "demo": demo,
        }
    EnrichmentConflict.objects.bulk_create(
        [
            EnrichmentConflict(
                workspace_id=contact.workspace_id,
                contact=contact,
                record=record,
                field=f,
                current_value=str(c)[:1000],
                offered_value=str(o)[:1000],
                resolution=r,
            )
            for f, c, o, r in conflicts
        ]
    )
    contact.enriched_at = fetched_at
    contact.save()
    if contact.lifecycle == Lifecycle.NEW:
        contact_transition(contact=contact, to=Lifecycle.ENRICHED, reason=f"enriched by {provider}")
    return record


def contacts_needing_enrichment(contact_ids: Sequence[int], *, now: dt.datetime | None = None) -> list[int]:
    """Ids without a provider answer inside the TTL (fresh records are not re-fetched)."""
    cutoff = (now or timezone.now()) - enrichment_ttl()
    fresh = set(
        EnrichmentRecord.objects.filter(contact_id__in=contact_ids, fetched_at__gte=cutoff).values_list(
            "contact_id", flat=True
        )
    )
    return [i for i in contact_ids if i not in fresh]
