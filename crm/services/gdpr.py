"""CRM writes: GDPR access (export everything we hold), erasure, and the erasure blocklist that keeps an
erased address from coming back through any door that creates contacts.

The blocklist holds keyed hashes only: HMAC-SHA256 (Django's `salted_hmac`) of the normalized email, with
a salt naming the workspace so equal addresses in two workspaces give unrelated digests. Key: the
dedicated ``CRM_ERASURE_KEYS`` setting (newest first) if set, else ``SECRET_KEY`` then
``SECRET_KEY_FALLBACKS``. New erasures use the first key; checks match a digest under *any* listed key,
so rotating a key means keeping the old one listed (as a fallback) for as long as its erasures must hold:
the addresses are gone, so old digests cannot be re-keyed. A dedicated key decouples the blocklist from
SECRET_KEY rotation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from aicmo.audit import audit_record
from aicmo.conflicts import MISSING, Conflict
from aicmo.models import Workspace

from ..models import (
    Channel,
    Contact,
    ErasedAddress,
    ListMembership,
    Suppression,
    SuppressionReason,
)
from ..normalize import email_lookup_key

ERASED_DOMAIN = "erased.invalid"


def _erasure_keys() -> list[str]:
    dedicated = getattr(settings, "CRM_ERASURE_KEYS", None)
    if dedicated:
        return list(dedicated)
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def erasure_digests(workspace: Workspace | int, email: str) -> list[str]:
    """Hex digests of `email` (normalized) under every erasure key, current key first (64 chars each);
    none for a value that is not an address (it was never erased)."""
    ws_id = workspace if isinstance(workspace, int) else workspace.pk
    value = email_lookup_key(email)
    if not value:
        return []
    return [
        salted_hmac(f"aicmo.crm.erasure.{ws_id}", value, secret=key, algorithm="sha256").hexdigest()
        for key in _erasure_keys()
    ]


def erasure_check(workspace: Workspace | int, emails: Iterable[str]) -> dict[str, dt.datetime]:
    """Which of `emails` were erased in this workspace: ``{normalized email: erased_at}``, one query per
    call (every door that creates contacts asks this; the import asks once per batch)."""
    by_digest: dict[str, str] = {}
    for email in emails:
        for digest in erasure_digests(workspace, email):
            by_digest[digest] = email_lookup_key(email)
    if not by_digest:
        return {}
    rows = ErasedAddress.objects.for_workspace(workspace).filter(digest__in=list(by_digest))
    found: dict[str, dt.datetime] = {}
    for digest, erased_at in rows.values_list("digest", "erased_at"):
        email = by_digest[digest]
        found[email] = min(erased_at, found.get(email, erased_at))
    return found


def erasure_refusal(erased_at: dt.datetime) -> str:
    """The one wording of "this address was erased" (contact forms, API, import row errors)."""
    return f"erased on {erased_at.date().isoformat()}"


def erasure_ensure_allowed(workspace: Workspace | int, email: str) -> None:
    """Raise a Conflict (a ValidationError; 409 in the API) on ``email`` if the address was erased here (no
    fresh consent recorded)."""
    erased = erasure_check(workspace, [email])
    if erased:
        at = next(iter(erased.values()))
        raise Conflict(
            {
                "email": f"This address was {erasure_refusal(at)}; an admin must record fresh consent "
                "before it can be added again."
            }
        )


@transaction.atomic
def erasure_override(*, workspace: Workspace, email: str, consent_note: str, by=None) -> dt.datetime:
    """Lift the erasure of `email` because the person gave fresh consent (admins only, decided by the
    caller). Removes its digests under every key; the audit event keeps the note, never the address.
    Returns when it had been erased; ValidationError if the note is missing or the address is not listed."""
    consent_note = (consent_note or "").strip()
    if not consent_note or "\x00" in consent_note:
        raise ValidationError({"consent_note": "Describe the fresh consent (when, how, by whom)."})
    rows = ErasedAddress.objects.for_workspace(workspace).filter(digest__in=erasure_digests(workspace, email))
    erased_at = min(rows.values_list("erased_at", flat=True), default=None)
    if erased_at is None:
        raise Conflict({"email": "This address is not on the erasure list."}, code=MISSING)  # a 404
    digest = rows.order_by("pk").values_list("digest", flat=True).first()
    rows.delete()
    audit_record(
        workspace=workspace,
        actor=by,
        verb="crm.erasure.overridden",
        changes={
            "digest": digest[:12],
            "erased_at": erased_at.isoformat(),
            "consent_note": consent_note[:500],
        },
    )
    return erased_at


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
    if not contact.email.endswith(f"@{ERASED_DOMAIN}"):
        now = timezone.now()
        ErasedAddress.objects.update_or_create(
            workspace_id=contact.workspace_id,
            digest=erasure_digests(contact.workspace_id, contact.email)[0],
            defaults={"erased_at": now},
        )
    contact.email = f"erased-{contact.pk}@{ERASED_DOMAIN}"
    for name in ("first_name", "last_name", "title", "phone", "source"):
        setattr(contact, name, "")
    contact.custom, contact.provenance, contact.typed_fields = {}, {}, []
    contact.verification, contact.erased_at = "", timezone.now()
    contact.engagement_score, contact.engagement_tier = 0, ""  # a profile of the person: erased too
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
