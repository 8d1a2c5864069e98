"""CRM writes: suppression per channel and the consent log.

This is the one place an opt-out is decided: a contact's channel that turns from sendable to blocked with
an opt-out reason (``OPT_OUT_REASONS``) sends ``crm.signals.contacts_opted_out`` once, in the transaction
that writes it, whichever door it came through (one-click link, ``mailto:``, API, dashboard, import,
complaint).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import IntegrityError, transaction

from ..models import (
    Channel,
    ConsentEvent,
    Contact,
    Suppression,
    SuppressionReason,
)
from ..signals import OptOut, contacts_opted_out

# The person's own opt-outs: a bounce is the mailbox's answer and a manual block an operator's, not a choice.
OPT_OUT_REASONS = frozenset({SuppressionReason.UNSUBSCRIBED, SuppressionReason.COMPLAINED})


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
    context: Mapping[str, Any] | None = None,
) -> Suppression:
    """Block a channel for a contact (idempotent; a stronger reason replaces a weaker one). A new block
    with an opt-out reason sends ``contacts_opted_out`` (``context`` is handed to its receivers as is)."""
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
        event = consent_record(
            contact=contact, kind=f"{channel}:{reason}", granted=False, source=source, ip=ip
        )
        if reason in OPT_OUT_REASONS:
            _opted_out([_opt_out(event, contact.email, channel, reason, context)])
    return suppression


def contact_unsubscribe(
    *,
    contact: Contact,
    channel: str = Channel.EMAIL,
    source: str = "",
    ip=None,
    context: Mapping[str, Any] | None = None,
) -> Suppression:
    return contact_suppress(
        contact=contact,
        channel=channel,
        reason=SuppressionReason.UNSUBSCRIBED,
        source=source,
        ip=ip,
        context=context,
    )


@transaction.atomic
def contacts_unsubscribe(
    *, workspace_id: int, contact_ids: Iterable[int], channel: str = Channel.EMAIL, source: str = ""
) -> int:
    """``contact_unsubscribe`` for many contacts of one workspace at once (imports): one query for who is
    blocked already, one insert each for the blocks and the consent log, one signal. Contacts already
    blocked on ``channel`` (any reason) are left as they are. Returns how many were newly unsubscribed."""
    if channel not in Channel.values:
        raise SuppressionError(f"Unknown channel {channel!r}.")
    ids = set(contact_ids)
    blocked = set(
        Suppression.objects.for_workspace(workspace_id)
        .filter(channel=channel, contact_id__in=ids)
        .values_list("contact_id", flat=True)
    )
    emails = dict(
        Contact.objects.for_workspace(workspace_id).filter(pk__in=ids - blocked).values_list("pk", "email")
    )
    if not emails:
        return 0
    reason = SuppressionReason.UNSUBSCRIBED
    try:
        with transaction.atomic():
            Suppression.objects.bulk_create(
                [
                    Suppression(
                        workspace_id=workspace_id,
                        contact_id=pk,
                        channel=channel,
                        reason=reason,
                        source=source[:100],
                    )
                    for pk in emails
                ]
            )
    except IntegrityError:  # blocked meanwhile by another writer: one at a time, each idempotent
        for contact in Contact.objects.filter(pk__in=emails):
            contact_unsubscribe(contact=contact, channel=channel, source=source)
        return len(emails)
    events = ConsentEvent.objects.bulk_create(
        [
            ConsentEvent(
                workspace_id=workspace_id,
                contact_id=pk,
                kind=f"{channel}:{reason}",
                granted=False,
                source=source[:100],
            )
            for pk in emails
        ]
    )
    _opted_out([_opt_out(event, emails[event.contact_id], channel, reason, None) for event in events])
    return len(emails)


def _opt_out(event: ConsentEvent, email: str, channel: str, reason: str, context) -> OptOut:
    return OptOut(
        workspace_id=event.workspace_id,
        contact_id=event.contact_id,
        email=email,
        channel=channel,
        reason=reason,
        source=event.source,
        at=event.at,
        consent_event_id=event.pk,
        context=dict(context or {}),
    )


def _opted_out(opt_outs: list[OptOut]) -> None:
    contacts_opted_out.send(sender=Contact, opt_outs=opt_outs)


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
