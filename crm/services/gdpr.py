"""CRM writes: gDPR access (export everything we hold) and erasure."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from aicmo.audit import audit_record

from ..models import (
    Channel,
    Contact,
    ListMembership,
    Suppression,
    SuppressionReason,
)


def contact_export_data(*, contact: Contact) -> dict:
    """Everything we hold about one person (GDPR access request), JSON-serialisable."""

    def iso(value):
        return value.isoformat() if value else None

    return {
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "title": contact.title,
        "phone": contact.phone,
        "company": {"name": contact.company.name, "domain": contact.company.domain}
        if contact.company
        else None,
        "source": contact.source,
        "custom": contact.custom,
        "tags": sorted(contact.tags.values_list("name", flat=True)),
        "lists": sorted(contact.lists.values_list("name", flat=True)),
        "lifecycle": contact.lifecycle,
        "verification": contact.verification,
        "engagement": {
            "score": contact.engagement_score,
            "tier": contact.engagement_tier,
            "last_engaged_at": iso(contact.last_engaged_at),
        },
        "provenance": contact.provenance,
        "created_at": iso(contact.created_at),
        "lifecycle_history": [
            {"from": t.from_stage, "to": t.to_stage, "reason": t.reason, "at": iso(t.at)}
            for t in contact.transitions.all()
        ],
        "suppressions": [
            {"channel": s.channel, "reason": s.reason, "source": s.source, "at": iso(s.created_at)}
            for s in contact.suppressions.all()
        ],
        "consent": [
            {"kind": e.kind, "granted": e.granted, "source": e.source, "ip": e.ip, "at": iso(e.at)}
            for e in contact.consent_events.all()
        ],
        "enrichment": [
            {"provider": r.provider, "fetched_at": iso(r.fetched_at), "fields": r.fields, "demo": r.demo}
            for r in contact.enrichment_records.all()
        ],
    }


@transaction.atomic
def contact_erase(*, contact: Contact, by=None) -> Contact:
    """Anonymise a person (GDPR erasure): personal data gone, row kept so aggregate statistics still add up."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    contact.email = f"erased-{contact.pk}@erased.invalid"
    for name in ("first_name", "last_name", "title", "phone", "source"):
        setattr(contact, name, "")
    contact.custom, contact.provenance, contact.typed_fields = {}, {}, []
    contact.verification, contact.erased_at = "", timezone.now()
    contact.save()
    contact.tags.clear()
    contact.enrichment_records.all().delete()
    contact.consent_events.all().delete()
    ListMembership.objects.filter(contact=contact).delete()
    Suppression.objects.filter(contact=contact).delete()
    for channel in Channel.values:
        Suppression.objects.create(
            workspace_id=contact.workspace_id,
            contact=contact,
            channel=channel,
            reason=SuppressionReason.MANUAL,
            source="gdpr-erasure",
        )
    audit_record(workspace=contact.workspace, actor=by, verb="crm.contact.erased", target=contact)
    return contact
