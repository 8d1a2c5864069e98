"""CRM writes: static lists and saved segments."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from aicmo.audit import audit_record
from aicmo.conflicts import Conflict, taken
from aicmo.models import Workspace

from ..models import (
    Contact,
    ContactList,
    ListMembership,
    Segment,
)
from ..segments import validate_rules
from ..usage import list_dependents, segment_dependents


@transaction.atomic
def list_create(*, workspace: Workspace, name: str, description: str = "", by=None) -> ContactList:
    """A static list; the name is unique per workspace (errors keyed by field)."""
    name, limit = (name or "").strip(), ContactList._meta.get_field("name").max_length
    if not name:
        raise ValidationError({"name": "Give the list a name."})
    if len(name) > limit or "\x00" in name or "\x00" in (description or ""):
        raise ValidationError({"name": f"At most {limit} characters, no NUL characters."})
    if ContactList.objects.for_workspace(workspace).filter(name=name).exists():
        raise Conflict({"name": "A list with this name already exists."})
    contact_list = ContactList.objects.create(workspace=workspace, name=name, description=description or "")
    audit_record(workspace=workspace, actor=by, verb="crm.list.created", target=contact_list)
    return contact_list


def list_add_contacts(*, contact_list: ContactList, contact_ids: Sequence[int]) -> int:
    ids = (
        Contact.objects.for_workspace(contact_list.workspace_id)
        .filter(pk__in=contact_ids)
        .values_list("pk", flat=True)
    )
    created = ListMembership.objects.bulk_create(
        [
            ListMembership(workspace_id=contact_list.workspace_id, contact_list=contact_list, contact_id=i)
            for i in ids
        ],
        ignore_conflicts=True,
    )
    return len(created)


def list_remove_contacts(*, contact_list: ContactList, contact_ids: Sequence[int]) -> int:
    deleted, _ = ListMembership.objects.filter(contact_list=contact_list, contact_id__in=contact_ids).delete()
    return deleted


def segment_save(
    *, workspace: Workspace, name: str, rules: dict, description: str = "", segment: Segment | None = None
) -> Segment:
    errors = {f"rules.{k}" if k else "rules": v for k, v in validate_rules(rules, workspace).items()}
    name, limit = (name or "").strip(), Segment._meta.get_field("name").max_length
    others = Segment.objects.for_workspace(workspace).filter(name=name)
    if segment is not None:
        others = others.exclude(pk=segment.pk)
    if not name:
        errors["name"] = "Give the segment a name."
    elif len(name) > limit:
        errors["name"] = f"At most {limit} characters."
    elif "\x00" in name or "\x00" in (description or ""):
        errors["name"] = "Name and description must not contain NUL characters."
    elif others.exists():
        errors["name"] = taken("A segment with this name already exists.")
    if errors:
        raise ValidationError(errors)
    segment = segment or Segment(workspace=workspace)
    segment.name, segment.rules, segment.description = name, rules, description
    segment.broken_reason = ""  # the rules were just validated against today's fields and tags
    segment.save()
    return segment


def segments_mark_broken(segments: list[Segment], reason: str) -> None:
    """Mark saved segments as no longer usable until edited (every surface then answers `reason`)."""
    Segment.objects.filter(pk__in=[s.pk for s in segments]).update(
        broken_reason=reason[: Segment._meta.get_field("broken_reason").max_length], updated_at=timezone.now()
    )


def _collection_name(model, workspace, name: str, noun: str, exclude_pk=None) -> str:
    """A list or segment name: trimmed, non-blank, within the column, no NUL, unique in the workspace."""
    name, limit = (name or "").strip(), model._meta.get_field("name").max_length
    if not name:
        raise ValidationError({"name": f"Give the {noun} a name."})
    if len(name) > limit or "\x00" in name:
        raise ValidationError({"name": f"At most {limit} characters, no NUL characters."})
    if model.objects.for_workspace(workspace).filter(name=name).exclude(pk=exclude_pk).exists():
        raise Conflict({"name": f"A {noun} with this name already exists."})
    return name


@transaction.atomic
def _collection_rename(obj, name: str, noun: str, by, update_fields: list[str]):
    new = _collection_name(type(obj), obj.workspace_id, name, noun, exclude_pk=obj.pk)
    old = obj.name
    if new != old:
        obj.name = new
        obj.save(update_fields=update_fields)
        audit_record(
            workspace=obj.workspace,
            actor=by,
            verb=f"crm.{noun}.renamed",
            target=obj,
            changes={"from": old, "to": new},
        )
    return obj


@transaction.atomic
def list_rename(*, contact_list: ContactList, name: str, by=None) -> ContactList:
    """Rename a static list (errors keyed ``name``)."""
    return _collection_rename(contact_list, name, "list", by, ["name"])


@transaction.atomic
def list_duplicate(*, contact_list: ContactList, name: str, by=None) -> ContactList:
    """A new list named `name` with the same description and members (one INSERT ... SELECT-sized batch)."""
    name = _collection_name(ContactList, contact_list.workspace_id, name, "list")
    copy = ContactList.objects.create(
        workspace_id=contact_list.workspace_id, name=name, description=contact_list.description
    )
    member_ids = contact_list.memberships.values_list("contact_id", flat=True)
    ListMembership.objects.bulk_create(
        [ListMembership(workspace_id=copy.workspace_id, contact_list=copy, contact_id=i) for i in member_ids],
        batch_size=1000,
    )
    audit_record(
        workspace=copy.workspace,
        actor=by,
        verb="crm.list.duplicated",
        target=copy,
        changes={"from": contact_list.name},
    )
    return copy


@transaction.atomic
def list_delete(*, contact_list: ContactList, by=None) -> dict:
    """Delete a static list (its contacts stay). Refused with a ValidationError naming the users when
    anything outside crm uses it (`crm.usage.list_dependents`). Returns ``{"contacts": members removed}``."""
    users = list_dependents(contact_list)
    if users:
        raise ValidationError(
            f"List {contact_list.name} is used by {', '.join(users)}; it cannot be deleted."
        )
    report = {"contacts": contact_list.memberships.count()}
    audit_record(
        workspace=contact_list.workspace,
        actor=by,
        verb="crm.list.deleted",
        target=contact_list,
        changes={"name": contact_list.name, **report},
    )
    contact_list.delete()
    return report


@transaction.atomic
def segment_rename(*, segment: Segment, name: str, by=None) -> Segment:
    """Rename a saved segment without touching its rules (a broken segment can be renamed too)."""
    return _collection_rename(segment, name, "segment", by, ["name", "updated_at"])


@transaction.atomic
def segment_duplicate(*, segment: Segment, name: str, by=None) -> Segment:
    """A new segment named `name` with the same description, rules and broken state."""
    name = _collection_name(Segment, segment.workspace_id, name, "segment")
    copy = Segment.objects.create(
        workspace_id=segment.workspace_id,
        name=name,
        description=segment.description,
        rules=segment.rules,
        broken_reason=segment.broken_reason,
    )
    audit_record(
        workspace=copy.workspace,
        actor=by,
        verb="crm.segment.duplicated",
        target=copy,
        changes={"from": segment.name},
    )
    return copy


@transaction.atomic
def segment_delete(*, segment: Segment, by=None) -> None:
    """Delete a saved segment. Refused with a ValidationError naming the users when anything outside crm uses
    it (`crm.usage.segment_dependents`, e.g. a campaign audience)."""
    users = segment_dependents(segment)
    if users:
        raise ValidationError(f"Segment {segment.name} is used by {', '.join(users)}; it cannot be deleted.")
    audit_record(
        workspace=segment.workspace,
        actor=by,
        verb="crm.segment.deleted",
        target=segment,
        changes={"name": segment.name},
    )
    segment.delete()
