"""CRM writes: tags (create, rename, delete), each audited. Segments name tags by name, so a rename
rewrites the segments that use it and a delete marks them broken. Implicit creation by tagging and imports
stays in `contacts.tags_ensure`."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from aicmo.audit import audit_record
from aicmo.conflicts import Conflict
from aicmo.models import Workspace

from ..models import Contact, Tag
from ..segments import rule_conditions, segments_using_tag
from .lists import segments_mark_broken


def _clean_name(workspace, name: str, exclude_pk=None) -> str:
    name = (name or "").strip()
    if not name or len(name) > Tag._meta.get_field("name").max_length or "\x00" in name:
        raise ValidationError({"name": "Give a tag name of at most 80 characters."})
    if Tag.objects.for_workspace(workspace).filter(name=name).exclude(pk=exclude_pk).exists():
        raise Conflict({"name": "This tag already exists."})
    return name


@transaction.atomic
def tag_create(*, workspace: Workspace, name: str, by=None) -> Tag:
    tag = Tag.objects.create(workspace=workspace, name=_clean_name(workspace, name))
    audit_record(workspace=workspace, actor=by, verb="crm.tag.created", target=tag)
    return tag


@transaction.atomic
def tag_rename(*, tag: Tag, name: str, by=None) -> Tag:
    """Rename a tag; saved segments naming it follow the new name."""
    tag = Tag.objects.select_for_update().get(pk=tag.pk)
    new = _clean_name(tag.workspace_id, name, exclude_pk=tag.pk)
    old = tag.name
    if new == old:
        return tag
    for segment in segments_using_tag(tag.workspace_id, old):
        for condition in rule_conditions(segment.rules):
            if condition.get("field") != "tags":
                continue
            value = condition.get("value")
            if isinstance(value, list):
                condition["value"] = [new if str(v) == old else v for v in value]
            elif str(value) == old:
                condition["value"] = new
        segment.save(update_fields=["rules", "updated_at"])
    tag.name = new
    tag.save(update_fields=["name"])
    audit_record(
        workspace=tag.workspace,
        actor=by,
        verb="crm.tag.renamed",
        target=tag,
        changes={"from": old, "to": new},
    )
    return tag


def tag_dependents(tag: Tag) -> dict:
    """What deleting `tag` touches: contacts carrying it, saved segments naming it."""
    tag = Tag.objects.get(pk=tag.pk)
    return {
        "contacts": Contact.tags.through.objects.filter(tag=tag).count(),
        "segments": sorted(s.name for s in segments_using_tag(tag.workspace_id, tag.name)),
    }


@transaction.atomic
def tag_delete(*, tag: Tag, by=None) -> dict:
    """Delete a tag (contacts lose it); segments naming it are marked broken. Returns `tag_dependents`."""
    tag = Tag.objects.select_for_update().get(pk=tag.pk)
    report = tag_dependents(tag)
    segments_mark_broken(
        segments_using_tag(tag.workspace_id, tag.name),
        f"tag {tag.name!r} was deleted on {timezone.now().date().isoformat()}",
    )
    audit_record(
        workspace=tag.workspace,
        actor=by,
        verb="crm.tag.deleted",
        target=tag,
        changes={"name": tag.name, **report},
    )
    tag.delete()
    return report
