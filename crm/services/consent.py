"""CRM writes: suppression per channel and the consent log."""

from __future__ import annotations

from django.db import transaction

from ..models import (
    Channel,
    ConsentEvent,
    Contact,
    Suppression,
    SuppressionReason,
)


class SuppressionError(ValueError):
    pass


def consent_record(
    *, contact: Contact, kind: str, granted: bool, source: str = "", ip: str | None = None
) -> ConsentEvent:
    return ConsentEvent.objects.create(
        workspace_id=contact.workspace_id,
        contact=contact,
        kind=kind,
        granted=granted,
        source=source[:100],
        ip=ip or None,
    )


@transaction.atomic
def contact_suppress(
    *,
    contact: Contact,
    channel: str = Channel.EMAIL,
    reason: str = SuppressionReason.MANUAL,
    source: str = "",
    ip: str | None = None,
    by=None,
) -> Suppression:
    """Block a channel for a contact (idempotent; a stronger reason replaces a weaker one)."""
    if channel not in Channel.values:
        raise SuppressionError(f"Unknown channel {channel!r}.")
    if reason not in SuppressionReason.values:
        raise SuppressionError(f"Unknown reason {reason!r}.")
    suppression, created = Suppression.objects.get_or_create(
        workspace_id=contact.workspace_id,
        contact=contact,
        channel=channel,
        defaults={"reason": reason, "source": source[:100]},
    )
    if (
        not created
        and suppression.reason in {SuppressionReason.UNSUBSCRIBED, SuppressionReason.MANUAL}
        and reason in {SuppressionReason.BOUNCED, SuppressionReason.COMPLAINED}
    ):
        suppression.reason, suppression.source = reason, source[:100]
        suppression.save(update_fields=["reason", "source"])
    if created:
        consent_record(contact=contact, kind=f"{channel}:{reason}", granted=False, source=source, ip=ip)
    return suppression


def contact_unsubscribe(
    *, contact: Contact, channel: str = Channel.EMAIL, source: str = "", ip=None
) -> Suppression:
    return contact_suppress(
        contact=contact, channel=channel, reason=SuppressionReason.UNSUBSCRIBED, source=source, ip=ip
    )


@transaction.atomic
def contact_resubscribe(
    *, contact: Contact, channel: str = Channel.EMAIL, source: str = "", ip=None, by=None
) -> bool:
    """Lift an unsubscribe/manual/complaint block after fresh consent. Hard bounces stay blocked."""
    suppression = Suppression.objects.filter(contact=contact, channel=channel).first()
    if suppression is None:
        return False
    if suppression.reason == SuppressionReason.BOUNCED:
        raise SuppressionError("A bounced address cannot be resubscribed; verify it and suppress manually.")
    suppression.delete()
    consent_record(contact=contact, kind=f"{channel}:resubscribed", granted=True, source=source, ip=ip)
    return True
