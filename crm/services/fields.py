"""CRM writes: custom-field definitions (create, relabel, rename, retype, delete) and what that does to the
values stored in ``Contact.custom`` and to the saved segments that use the field."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from aicmo.audit import audit_record
from aicmo.conflicts import Conflict, taken
from aicmo.models import Workspace

from ..models import Contact, CustomFieldDefinition, FieldType, ImportRun, ImportStatus
from ..normalize import _coerce_custom
from ..segments import rule_conditions, segments_using_field, validate_rules
from .lists import segments_mark_broken

MAX_EXAMPLES = 5
REWRITE_BATCH = 500


@dataclass
class FieldChange:
    """What a change did: values converted to the new type, values cleared (not convertible, only with
    ``convert=True``) with up to five examples, contacts whose key was renamed, segments marked broken."""

    field: CustomFieldDefinition
    converted: int = 0
    cleared: int = 0
    examples: list = field(default_factory=list)
    renamed: int = 0
    broken_segments: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "converted": self.converted,
            "cleared": self.cleared,
            "examples": self.examples,
            "renamed": self.renamed,
            "broken_segments": self.broken_segments,
        }


# The keys `slugify(key) == key` accepts, as a regular expression the API schema can state: lowercase ASCII
# letters and digits, joined by "_" and "-" but never starting or ending with one nor holding "--".
KEY_PATTERN = r"^[a-z0-9]+(?:(?:(?:_|-_)+-?|-)[a-z0-9]+)*$"


def _clean_definition(*, workspace, key: str, label: str, type: str, choices, exclude_pk=None) -> dict:
    errors = {}
    if not key or slugify(key) != key or len(key) > CustomFieldDefinition._meta.get_field("key").max_length:
        errors["key"] = "Use lowercase letters, digits, '-' or '_' (at most 60)."
    elif (
        CustomFieldDefinition.objects.for_workspace(workspace).filter(key=key).exclude(pk=exclude_pk).exists()
    ):
        errors["key"] = taken("This key is already used.")
    label = (label or "").strip()
    if not label or len(label) > 120 or "\x00" in label:
        errors["label"] = "Give a label of at most 120 characters."
    if type not in FieldType.values:
        errors["type"] = f"Use one of {', '.join(FieldType.values)}."
    if not isinstance(choices, list) or not all(
        isinstance(c, str) and c and "\x00" not in c for c in choices
    ):
        errors["choices"] = "Expected a list of non-empty texts."
    elif type == FieldType.CHOICE and not choices:
        errors["choices"] = "A choice field needs choices."
    if errors:
        raise ValidationError(errors)
    return {"key": key, "label": label, "type": type, "choices": choices if type == FieldType.CHOICE else []}


@transaction.atomic
def custom_field_create(
    *, workspace: Workspace, key: str, label: str, type: str = FieldType.TEXT, choices=None, by=None
) -> CustomFieldDefinition:
    """A new custom contact field; errors keyed by key/label/type/choices."""
    data = _clean_definition(workspace=workspace, key=key, label=label, type=type, choices=choices or [])
    definition = CustomFieldDefinition.objects.create(workspace=workspace, **data)
    audit_record(
        workspace=workspace, actor=by, verb="crm.custom_field.created", target=definition, changes=data
    )
    return definition


@transaction.atomic
def custom_field_update(
    *,
    definition: CustomFieldDefinition,
    key: str | None = None,
    label: str | None = None,
    type: str | None = None,
    choices=None,
    convert: bool = False,
    by=None,
) -> FieldChange:
    """Relabel, rename (`key`) and/or retype (`type`, `choices`) a field.

    Retype: every stored value is checked with the import's own coercion (`normalize._coerce_custom`).
    Values that convert are rewritten in the new type; when some do not, the change is refused with their
    count and up to five examples (ValidationError on ``type``), unless ``convert=True``, which clears them
    and reports them. Rename: the stored values move to the new key in one UPDATE. Segments using the field
    are rewritten to the new key; segments whose rules no longer validate under the new type are marked
    broken."""
    definition = CustomFieldDefinition.objects.select_for_update().get(pk=definition.pk)
    workspace = definition.workspace
    old = {
        "key": definition.key,
        "label": definition.label,
        "type": definition.type,
        "choices": definition.choices,
    }
    new_type = type if type is not None else definition.type
    data = _clean_definition(
        workspace=workspace,
        key=key if key is not None else definition.key,
        label=label if label is not None else definition.label,
        type=new_type,
        choices=choices if choices is not None else (definition.choices or []),
        exclude_pk=definition.pk,
    )
    change = FieldChange(field=definition)
    if (data["type"], data["choices"]) != (old["type"], old["choices"] or []):
        probe = CustomFieldDefinition(
            workspace=workspace, key=old["key"], type=data["type"], choices=data["choices"]
        )
        _convert_values(probe, change, convert=convert)
    if data["key"] != old["key"]:
        change.renamed = _move_key(workspace.pk, old["key"], data["key"])
        _rename_in_segments(workspace, f"custom.{old['key']}", f"custom.{data['key']}")
        _rename_in_import_mappings(workspace, f"custom.{old['key']}", f"custom.{data['key']}")
    for name, value in data.items():
        setattr(definition, name, value)
    definition.save()
    if data["type"] != old["type"] or data["choices"] != (old["choices"] or []):
        reason = f"custom field {data['key']!r} changed from {old['type']} to {data['type']}"
        change.broken_segments = _mark_invalid_segments(workspace, f"custom.{data['key']}", reason)
    if data == {**old, "choices": old["choices"] or []}:
        return change  # nothing changed: no audit event
    audit_record(
        workspace=workspace,
        actor=by,
        verb="crm.custom_field.updated",
        target=definition,
        changes={"before": old, "after": data, **change.as_dict()},
    )
    return change


def _convert_values(probe: CustomFieldDefinition, change: FieldChange, *, convert: bool) -> None:
    """Coerce every stored value of ``probe.key`` to ``probe.type``; refuse or clear the ones that fail.

    A bounded batched loop (the coercion is Python's, the same as the import's), rewriting only rows whose
    value changes."""
    key = probe.key
    rows = (
        Contact.objects.for_workspace(probe.workspace_id)
        .filter(custom__has_key=key)
        .values_list("pk", "custom")  # the whole object: a key transform on SQLite decodes "12" as 12
        .order_by("pk")
    )
    rewrites: dict[int, object] = {}
    failures: list = []
    for pk, custom in rows.iterator(chunk_size=2000):
        value = custom.get(key)
        if value is None or value == "":
            continue
        try:
            coerced = _coerce_custom(probe, value)
        except ValueError:
            failures.append(value)
            rewrites[pk] = None
            continue
        if coerced != value or type(coerced) is not type(value):
            rewrites[pk] = coerced
    change.examples = failures[:MAX_EXAMPLES]
    if failures and not convert:  # the stored values decide: a state conflict (409), as aicmo.conflicts says
        raise Conflict(
            {
                "type": (
                    f"{len(failures)} contact(s) hold values that are not a valid {probe.type}, e.g. "
                    f"{', '.join(repr(v) for v in change.examples)}. Fix them, or convert with the values "
                    "that do not fit cleared."
                )
            }
        )
    change.cleared = len(failures)
    change.converted = len(rewrites) - len(failures)
    ids = sorted(rewrites)
    for start in range(0, len(ids), REWRITE_BATCH):
        batch = list(Contact.objects.filter(pk__in=ids[start : start + REWRITE_BATCH]).only("pk", "custom"))
        for contact in batch:
            value = rewrites[contact.pk]
            if value is None:
                contact.custom.pop(key, None)
            else:
                contact.custom[key] = value
        Contact.objects.bulk_update(batch, ["custom"])


def _move_key(workspace_id: int, old: str, new: str) -> int:
    """Move ``custom[old]`` to ``custom[new]`` for the whole workspace in one UPDATE (jsonb operators on
    PostgreSQL; json_set/json_remove with the ``->`` operator, which keeps the JSON type, on SQLite)."""
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                "UPDATE crm_contact SET custom = (custom - %s) || jsonb_build_object(%s::text, custom -> %s) "
                "WHERE workspace_id = %s AND custom ? %s",
                [old, new, old, workspace_id, old],
            )
        else:
            old_path, new_path = f'$."{old}"', f'$."{new}"'
            cur.execute(
                "UPDATE crm_contact SET custom = json_remove(json_set(custom, %s, json(custom -> %s)), %s) "
                "WHERE workspace_id = %s AND json_type(custom, %s) IS NOT NULL",
                [new_path, old_path, old_path, workspace_id, old_path],
            )
        return cur.rowcount


def _drop_key(workspace_id: int, key: str) -> int:
    """Remove ``custom[key]`` from every contact of the workspace in one UPDATE."""
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                "UPDATE crm_contact SET custom = custom - %s WHERE workspace_id = %s AND custom ? %s",
                [key, workspace_id, key],
            )
        else:
            path = f'$."{key}"'
            cur.execute(
                "UPDATE crm_contact SET custom = json_remove(custom, %s) "
                "WHERE workspace_id = %s AND json_type(custom, %s) IS NOT NULL",
                [path, workspace_id, path],
            )
        return cur.rowcount


def _rename_in_segments(workspace, old_name: str, new_name: str) -> None:
    for segment in segments_using_field(workspace, old_name):
        for condition in rule_conditions(segment.rules):
            if condition.get("field") == old_name:
                condition["field"] = new_name
        segment.save(update_fields=["rules", "updated_at"])


def _rename_in_import_mappings(workspace, old_target: str, new_target: str) -> None:
    """Imports not finished yet (staged, or resumable after a crash) keep mapping columns to the field."""
    for run in ImportRun.objects.for_workspace(workspace).exclude(status=ImportStatus.DONE):
        if old_target in (run.mapping or {}).values():
            run.mapping = {h: new_target if t == old_target else t for h, t in run.mapping.items()}
            run.save(update_fields=["mapping"])


def _mark_invalid_segments(workspace, name: str, reason: str) -> list[str]:
    today = timezone.now().date().isoformat()
    broken = []
    for segment in segments_using_field(workspace, name):
        if validate_rules(segment.rules, workspace):
            segments_mark_broken([segment], f"{reason} on {today}")
            broken.append(segment.name)
    return broken


@transaction.atomic
def custom_field_delete(*, definition: CustomFieldDefinition, by=None) -> dict:
    """Delete a field and its stored values; segments using it are listed and marked broken.

    Returns ``{"segments": [names], "values_removed": n}``."""
    definition = CustomFieldDefinition.objects.select_for_update().get(pk=definition.pk)
    workspace = definition.workspace
    name = f"custom.{definition.key}"
    dependents = segments_using_field(workspace, name)
    segments_mark_broken(
        dependents, f"custom field {definition.key!r} was deleted on {timezone.now().date().isoformat()}"
    )
    removed = _drop_key(workspace.pk, definition.key)
    report = {"segments": sorted(s.name for s in dependents), "values_removed": removed}
    audit_record(
        workspace=workspace,
        actor=by,
        verb="crm.custom_field.deleted",
        target=definition,
        changes={"key": definition.key, "type": definition.type, **report},
    )
    definition.delete()
    return report
