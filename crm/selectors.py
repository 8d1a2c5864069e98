"""CRM reads: workspace-scoped querysets for API, dashboards, admin, export and other apps."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet

from aicmo.models import Workspace

from .models import (
    Channel,
    Company,
    Contact,
    ContactList,
    EnrichmentRecord,
    ListMembership,
    Segment,
    Suppression,
    Tag,
    Verdict,
)
from .normalize import email_lookup_key
from .segments import saved_segment_q


def contacts_for(workspace: Workspace | int, *, with_tags: bool = True) -> QuerySet[Contact]:
    """The list shape: company joined, tags prefetched, so a page costs the same queries at any size."""
    qs = Contact.objects.for_workspace(workspace).select_related("company")
    if with_tags:
        qs = qs.prefetch_related(Prefetch("tags", queryset=Tag.objects.only("pk", "name").order_by("name")))
    return qs


def attach_tag_names(contacts: Sequence[Contact]) -> Sequence[Contact]:
    """One query for a page's tag names, set as `tag_names` (cheaper than prefetch machinery per row)."""
    names: dict[int, list[str]] = {c.pk: [] for c in contacts}
    rows = Contact.tags.through.objects.filter(contact_id__in=list(names)).order_by("tag__name")
    for contact_id, name in rows.values_list("contact_id", "tag__name"):
        names[contact_id].append(name)
    for c in contacts:
        c.tag_names = names[c.pk]
    return contacts


def contact_detail(workspace: Workspace | int, pk: int) -> Contact | None:
    return (
        contacts_for(workspace)
        .prefetch_related(
            "suppressions",
            "consent_events",
            "transitions",
            "lists",
            Prefetch("enrichment_records", queryset=EnrichmentRecord.objects.order_by("-fetched_at")),
            "enrichment_conflicts",
        )
        .filter(pk=pk)
        .first()
    )


def contacts_for_selection(
    *,
    workspace: Workspace | int,
    contact_ids: Sequence[int] | None = None,
    list_id: int | None = None,
    segment_id: int | None = None,
) -> QuerySet[Contact]:
    qs = Contact.objects.for_workspace(workspace)
    if list_id is not None:
        contact_list = ContactList.objects.for_workspace(workspace).filter(pk=list_id).first()
        if contact_list is None:
            return qs.none()
        qs = qs.filter(list_memberships__contact_list=contact_list)
    if segment_id is not None:
        segment = Segment.objects.for_workspace(workspace).filter(pk=segment_id).first()
        if segment is None:
            return qs.none()
        qs = qs.filter(saved_segment_q(segment))
    if contact_ids is not None:
        qs = qs.filter(pk__in=list(contact_ids))
    return qs


def in_lists_q(workspace: Workspace | int, list_ids: Sequence[int]) -> Q:
    """A `Contact` filter: member of any of `list_ids` (lists of other workspaces match nobody).

    A correlated `EXISTS` probing the (list, contact) unique index, rather than `pk IN (contacts joined to
    memberships)`: with statistics that still say "empty" right after a bulk load (PostgreSQL analyzes a
    table up to a minute later), the `IN` form was planned as nested loops over both tables inside a third
    and ran for minutes on 2,000 members; this form stays one index probe per contact whatever the plan.
    """
    memberships = ListMembership.objects.for_workspace(workspace).filter(
        contact_id=OuterRef("pk"), contact_list_id__in=list(list_ids)
    )
    return Q(Exists(memberships))


def contact_can_receive(contact: Contact, channel: str = Channel.EMAIL) -> bool:
    """Whether any sending path may reach this contact on `channel` (suppression, erasure, invalid email)."""
    if contact.erased_at is not None:
        return False
    if channel == Channel.EMAIL and contact.verification == Verdict.INVALID:
        return False
    return not Suppression.objects.filter(contact_id=contact.pk, channel=channel).exists()


def contacts_receivable(queryset: QuerySet[Contact], channel: str = Channel.EMAIL) -> QuerySet[Contact]:
    """The bulk form of `contact_can_receive` for audiences (one query, no per-contact Python)."""
    qs = queryset.filter(erased_at__isnull=True).exclude(
        pk__in=Suppression.objects.filter(channel=channel).values("contact_id")
    )
    if channel == Channel.EMAIL:
        qs = qs.exclude(verification=Verdict.INVALID)
    return qs


def lists_for(workspace: Workspace | int) -> QuerySet[ContactList]:
    return ContactList.objects.for_workspace(workspace).annotate(size=Count("memberships")).order_by("name")


def contact_by_email(workspace: Workspace | int, email: str) -> Contact | None:
    """The workspace's contact with that mailbox (any spelling the normalizer folds together), with its
    company; None for no contact or a value that is not an address."""
    key = email_lookup_key(email or "")
    if not key:
        return None
    return Contact.objects.for_workspace(workspace).select_related("company").filter(email=key).first()


def companies_for(workspace: Workspace | int, *, search: str = "") -> QuerySet[Company]:
    """Companies with ``contact_count``, by domain; `search` matches name or domain (case-insensitive)."""
    qs = Company.objects.for_workspace(workspace).annotate(contact_count=Count("contacts"))
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(domain__icontains=search.lower()))
    return qs.order_by("domain")


def tags_with_counts(workspace: Workspace | int) -> QuerySet[Tag]:
    """Tags with ``contact_count`` (contacts carrying each), by name."""
    return Tag.objects.for_workspace(workspace).annotate(contact_count=Count("contacts")).order_by("name")
