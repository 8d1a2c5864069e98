"""CRM writes: static lists and saved segments."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError

from aicmo.audit import audit_record
from aicmo.models import Workspace

from ..models import (
    Contact,
    ContactList,
    ListMembership,
    Segment,
)
from ..segments import validate_rules


def list_create(*, workspace: Workspace, name: str, description: str = "", by=None) -> ContactList:
    """A static list; the name is unique per workspace (errors keyed by field)."""
    name, limit = (name or "").strip(), ContactList._meta.get_field("name").max_length
    if not name:
        raise ValidationError({"name": "Give the list a name."})
    if len(name) > limit or "\x00" in name or "\x00" in (description or ""):
        raise ValidationError({"name": f"At most {limit} characters, no NUL characters."})
    if ContactList.objects.for_workspace(workspace).filter(name=name).exists():
        raise ValidationError({"name": "A list with this name already exists."})
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
        errors["name"] = "A segment with this name already exists."
    if errors:
        raise ValidationError(errors)
    segment = segment or Segment(workspace=workspace)
    segment.name, segment.rules, segment.description = name, rules, description
    segment.save()
    return segment
