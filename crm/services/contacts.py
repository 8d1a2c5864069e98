"""CRM writes: contacts, companies and tags: create, update, tag, delete, merge duplicates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from aicmo.audit import audit_record
from aicmo.conflicts import Conflict
from aicmo.models import Workspace
from aicmo.workspaces import named_rows_ensure

from ..models import (
    Company,
    ConsentEvent,
    Contact,
    EnrichmentConflict,
    EnrichmentRecord,
    LifecycleTransition,
    ListMembership,
    Tag,
)
from ..normalize import (
    InvalidEmail,
    custom_fields_clean,
    domain_clean,
    normalize_domain,
    normalize_email,
    placeholder_domain,
)
from .gdpr import erasure_ensure_allowed
from .lifecycle import STAGE_ORDER, tier_for_score

EDITABLE_FIELDS = ("first_name", "last_name", "title", "phone", "source")


def company_get_or_create(*, workspace: Workspace, domain: str, name: str = "") -> Company | None:
    domain = normalize_domain(domain)
    if not domain:
        return None
    name = name.strip()[: Company._meta.get_field("name").max_length]
    company, created = Company.objects.get_or_create(
        workspace=workspace, domain=domain, defaults={"name": name}
    )
    if not created and name and not company.name:
        company.name = name
        company.save(update_fields=["name", "updated_at"])
    return company


def tags_ensure(*, workspace: Workspace, names: Iterable[str]) -> list[Tag]:
    return named_rows_ensure(Tag, workspace=workspace, names=names)


def contacts_tag(
    *, workspace: Workspace, contact_ids: Sequence[int], names: Iterable[str], remove=False
) -> int:
    tags = (
        tags_ensure(workspace=workspace, names=names)
        if not remove
        else list(Tag.objects.for_workspace(workspace).filter(name__in=list(names)))
    )
    ids = list(
        Contact.objects.for_workspace(workspace).filter(pk__in=contact_ids).values_list("pk", flat=True)
    )
    through = Contact.tags.through
    if remove:
        through.objects.filter(contact_id__in=ids, tag__in=tags).delete()
        return len(ids)
    through.objects.bulk_create(
        [through(contact_id=cid, tag_id=t.pk) for cid in ids for t in tags], ignore_conflicts=True
    )
    return len(ids)


def _company_from(workspace: Workspace, data: dict) -> tuple[bool, Company | None]:
    """The company a contact write names: a Company, a ``company_domain`` (an IDNA host name or a URL,
    `domain_clean`; else a ValidationError on it) or a name alone (an ``<name>.unknown`` placeholder)."""
    if "company" in data and isinstance(data["company"], Company):
        return True, data["company"]
    domain = data.get("company_domain") or ""
    if domain:
        try:
            domain = domain_clean(domain)
        except ValueError as exc:
            raise ValidationError({"company_domain": str(exc)}) from None
    name = (
        (data.get("company") or data.get("company_name") or "").strip()
        if not isinstance(data.get("company"), Company)
        else ""
    )
    if not domain and not name:
        return ("company_domain" in data or "company" in data), None
    if not domain:
        domain = placeholder_domain(name)
    return True, company_get_or_create(workspace=workspace, domain=domain, name=name)


def _email_or_error(value) -> str:
    try:
        return normalize_email(value)
    except InvalidEmail as exc:
        raise ValidationError({"email": str(exc)}) from None


@transaction.atomic
def contact_create(
    *, workspace: Workspace, data: dict, by=None, source: str = "manual", typed: bool = True
) -> Contact:
    """Create a contact from person-entered data (`typed`): those fields are protected from enrichment."""
    email = _email_or_error(data.get("email", ""))
    if Contact.objects.for_workspace(workspace).filter(email=email).exists():
        raise Conflict({"email": "A contact with this email already exists."})
    erasure_ensure_allowed(workspace, email)
    contact = Contact(workspace=workspace, email=email, source=data.get("source") or source)
    _apply_person_data(contact, data, typed=typed, workspace=workspace)
    contact.save()
    if data.get("tags"):
        contacts_tag(workspace=workspace, contact_ids=[contact.pk], names=data["tags"])
    return contact


@transaction.atomic
def contact_update(
    *, contact: Contact, data: dict, by=None, typed: bool = True, fill_blanks=False
) -> Contact:
    if "email" in data and (email := _email_or_error(data["email"])) != contact.email:
        if (
            Contact.objects.for_workspace(contact.workspace_id)
            .filter(email=email)
            .exclude(pk=contact.pk)
            .exists()
        ):
            raise Conflict({"email": "A contact with this email already exists."})
        erasure_ensure_allowed(contact.workspace_id, email)
        contact.email = email
    _apply_person_data(contact, data, typed=typed, workspace=contact.workspace, fill_blanks=fill_blanks)
    contact.save()
    if data.get("tags") is not None:  # the given tags become the contact's tags
        tags = tags_ensure(workspace=contact.workspace, names=data["tags"])
        contact.tags.set(tags)
    return contact


def _apply_person_data(contact: Contact, data: dict, *, typed: bool, workspace, fill_blanks=False) -> None:
    typed_set = set(contact.typed_fields or [])
    now = timezone.now().isoformat()
    for name in EDITABLE_FIELDS:
        if name not in data or data[name] is None:
            continue
        value = str(data[name]).strip()[: Contact._meta.get_field(name).max_length]
        if fill_blanks and getattr(contact, name):
            continue
        if value != getattr(contact, name):
            setattr(contact, name, value)
            if name != "source" and value:
                contact.provenance[name] = {"source": "typed" if typed else "import", "at": now}
                if typed:
                    typed_set.add(name)
    has_company, company = _company_from(workspace, data)
    set_company = has_company and not (fill_blanks and contact.company_id)
    if set_company and (company.pk if company else None) != contact.company_id:
        contact.company = company
        if company is not None:
            contact.provenance["company"] = {"source": "typed" if typed else "import", "at": now}
            if typed:
                typed_set.add("company")
    if "custom" in data and data["custom"] is not None:
        cleaned = custom_fields_clean(workspace, data["custom"])
        merged = dict(contact.custom or {})
        for key, value in cleaned.items():
            if fill_blanks and merged.get(key) not in (None, ""):
                continue
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        contact.custom = merged
    contact.typed_fields = sorted(typed_set)


@transaction.atomic
def contact_delete(*, contact: Contact, by=None) -> None:
    audit_record(workspace=contact.workspace, actor=by, verb="crm.contact.deleted", target=contact)
    contact.delete()


@transaction.atomic
def contact_merge(*, primary: Contact, duplicate: Contact, by=None) -> Contact:
    """Fold `duplicate` into `primary`: blanks filled, tags, lists, enrichment, consent, history moved."""
    if primary.pk == duplicate.pk or primary.workspace_id != duplicate.workspace_id:
        raise ValidationError("Pick two different contacts of the same workspace.")
    primary = Contact.objects.select_for_update().get(pk=primary.pk)
    duplicate = Contact.objects.select_for_update().get(pk=duplicate.pk)
    for name in (*EDITABLE_FIELDS, "company"):
        if not getattr(primary, name) and getattr(duplicate, name):
            setattr(primary, name, getattr(duplicate, name))
            if name in duplicate.provenance:
                primary.provenance[name] = duplicate.provenance[name]
    primary.custom = {**(duplicate.custom or {}), **(primary.custom or {})}
    primary.typed_fields = sorted(set(primary.typed_fields) | set(duplicate.typed_fields))
    primary.engagement_score = max(primary.engagement_score, duplicate.engagement_score)
    if duplicate.last_engaged_at and (
        not primary.last_engaged_at or duplicate.last_engaged_at > primary.last_engaged_at
    ):
        primary.last_engaged_at = duplicate.last_engaged_at
    through = Contact.tags.through
    through.objects.bulk_create(
        [through(contact_id=primary.pk, tag_id=t) for t in duplicate.tags.values_list("pk", flat=True)],
        ignore_conflicts=True,
    )
    ListMembership.objects.bulk_create(
        [
            ListMembership(workspace_id=primary.workspace_id, contact_list_id=m, contact_id=primary.pk)
            for m in duplicate.list_memberships.values_list("contact_list_id", flat=True)
        ],
        ignore_conflicts=True,
    )
    for s in duplicate.suppressions.all():
        if not primary.suppressions.filter(channel=s.channel).exists():
            s.contact = primary
            s.save(update_fields=["contact"])
    for model in (EnrichmentRecord, EnrichmentConflict, ConsentEvent, LifecycleTransition):
        model.objects.filter(contact=duplicate).update(contact=primary)
    target = max(STAGE_ORDER.index(primary.lifecycle), STAGE_ORDER.index(duplicate.lifecycle))
    if STAGE_ORDER[target] != primary.lifecycle:
        LifecycleTransition.objects.create(
            workspace_id=primary.workspace_id,
            contact=primary,
            from_stage=primary.lifecycle,
            to_stage=STAGE_ORDER[target],
            reason=f"merged {duplicate.email}",
        )
        primary.lifecycle = STAGE_ORDER[target]
    primary.engagement_tier = (
        tier_for_score(primary.engagement_score) if primary.engagement_score else primary.engagement_tier
    )
    primary.save()
    audit_record(
        workspace=primary.workspace,
        actor=by,
        verb="crm.contact.merged",
        target=primary,
        changes={"merged": duplicate.email, "merged_id": duplicate.pk},
    )
    duplicate.delete()
    return primary
