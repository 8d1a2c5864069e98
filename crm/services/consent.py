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


# Which reason replaces which on an existing block: the person's opt-out outranks an operator's block, and
# the mailbox's verdict (a hard bounce: never resubscribed) or a complaint outranks an unsubscribe.
STRONGER = {
    SuppressionReason.MANUAL: {
        SuppressionReason.UNSUBSCRIBED,
        SuppressionReason.BOUNCED,
        SuppressionReason.COMPLAINED,
    },
    SuppressionReason.UNSUBSCRIBED: {SuppressionReason.BOUNCED, SuppressionReason.COMPLAINED},
}


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
    """Block a channel for a contact (idempotent; a stronger reason replaces a weaker one: ``STRONGER``).

    The consent log gets an event for a new block, a replaced reason, and a person's opt-out (an
    ``OPT_OUT_REASONS`` reason) on a channel blocked only by a bounce or an operator — the opt-out is news
    even then (lifting that block later must not mail a person who opted out). Such an opt-out sends
    ``contacts_opted_out`` once (``context`` is handed to its receivers as is); a repeat, or a complaint
    after an unsubscribe, sends none."""
    suppression, _ = _suppress(
        contact=contact, channel=channel, reason=reason, source=source, ip=ip, context=context
    )
    return suppression


def _suppress(*, contact, channel, reason, source, ip, context) -> tuple[Suppression, bool]:
    """``contact_suppress``'s work; also whether this call was the person's opt-out."""
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
    previous = None if created else suppression.reason
    replaced = previous is not None and reason in STRONGER.get(previous, ())
    if replaced:
        suppression.reason, suppression.source = reason, source[:100]
        suppression.save(update_fields=["reason", "source"])
    opted_out = (
        reason in OPT_OUT_REASONS
        and previous not in OPT_OUT_REASONS
        and (created or not _opted_out_already(contact.workspace_id, channel, [contact.pk]))
    )
    if created or replaced or opted_out:
        event = consent_record(
            contact=contact, kind=f"{channel}:{reason}", granted=False, source=source, ip=ip
        )
        if opted_out:
            _opted_out([_opt_out(event, contact.email, channel, reason, context)])
    return suppression, opted_out


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
    """``contact_unsubscribe`` for many contacts of one workspace at once (imports), with the same rules:
    one query for who is blocked already, one insert each for the new blocks and the consent log, one
    update for operator blocks the opt-out replaces, one signal. Contacts who opted out already are left
    as they are. Returns how many opted out now."""
    if channel not in Channel.values:
        raise SuppressionError(f"Unknown channel {channel!r}.")
    ids = set(contact_ids)
    blocked = dict(
        Suppression.objects.for_workspace(workspace_id)
        .filter(channel=channel, contact_id__in=ids)
        .values_list("contact_id", "reason")
    )
    news = {pk for pk in ids if blocked.get(pk) not in OPT_OUT_REASONS}
    news -= _opted_out_already(workspace_id, channel, [pk for pk in news if pk in blocked])
    emails = dict(Contact.objects.for_workspace(workspace_id).filter(pk__in=news).values_list("pk", "email"))
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
                    if pk not in blocked
                ]
            )
    except IntegrityError:  # blocked meanwhile by another writer: one at a time, each idempotent
        return sum(
            _suppress(contact=c, channel=channel, reason=reason, source=source, ip=None, context=None)[1]
            for c in Contact.objects.filter(pk__in=emails)
        )
    replaced = [pk for pk in emails if reason in STRONGER.get(blocked.get(pk), ())]
    Suppression.objects.for_workspace(workspace_id).filter(channel=channel, contact_id__in=replaced).update(
        reason=reason, source=source[:100]
    )
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


def _opted_out_already(workspace_id: int, channel: str, contact_ids: list[int]) -> set[int]:
    """Those of ``contact_ids`` whose consent log's latest word on ``channel`` is an opt-out (a block whose
    reason a bounce replaced still holds it); one query, none for an empty list."""
    if not contact_ids:
        return set()
    opt_out_kinds = {f"{channel}:{reason}" for reason in OPT_OUT_REASONS}
    latest: dict[int, str] = {}
    for contact_id, kind in (
        ConsentEvent.objects.filter(
            workspace_id=workspace_id,
            contact_id__in=contact_ids,
            kind__in=[*opt_out_kinds, f"{channel}:resubscribed"],
        )
        .order_by("pk")
        .values_list("contact_id", "kind")
    ):
        latest[contact_id] = kind
    return {contact_id for contact_id, kind in latest.items() if kind in opt_out_kinds}


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
