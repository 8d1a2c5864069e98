"""CRM writes: companies (create, rename/re-domain, merge duplicates, delete), each audited. Implicit creation
by contact writes and imports stays in `contacts.company_get_or_create`."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from aicmo.audit import audit_record
from aicmo.conflicts import taken
from aicmo.models import Workspace

from ..models import Company, Contact
from ..normalize import domain_clean


def _clean(*, workspace, name: str, domain: str | None, stored: str = "", exclude_pk=None) -> dict:
    """The domain as `domain_clean` reduces it (an IDNA host name: scheme, ``www.``, port and path dropped);
    ``domain=None`` keeps the ``stored`` one unchecked (a rename never fails on an older, looser domain)."""
    name = (name or "").strip()
    errors = {}
    try:
        domain = stored if domain is None else domain_clean(domain)
    except ValueError as exc:
        errors["domain"] = str(exc)
    else:
        if Company.objects.for_workspace(workspace).filter(domain=domain).exclude(pk=exclude_pk).exists():
            errors["domain"] = taken("A company with this domain already exists.")
    if len(name) > 200 or "\x00" in name:
        errors["name"] = "At most 200 characters, no NUL characters."
    if errors:
        raise ValidationError(errors)
    return {"name": name, "domain": domain}


@transaction.atomic
def company_create(*, workspace: Workspace, domain: str, name: str = "", by=None) -> Company:
    """A company by its (normalized, per-workspace unique) domain; errors keyed by name/domain."""
    data = _clean(workspace=workspace, name=name, domain=domain)
    company = Company.objects.create(workspace=workspace, **data)
    audit_record(workspace=workspace, actor=by, verb="crm.company.created", target=company, changes=data)
    return company


@transaction.atomic
def company_update(
    *, company: Company, name: str | None = None, domain: str | None = None, by=None
) -> Company:
    """Rename a company and/or change its domain."""
    company = Company.objects.select_for_update().get(pk=company.pk)
    before = {"name": company.name, "domain": company.domain}
    data = _clean(
        workspace=company.workspace_id,
        name=before["name"] if name is None else name,
        domain=domain,
        stored=before["domain"],
        exclude_pk=company.pk,
    )
    if data != before:
        company.name, company.domain = data["name"], data["domain"]
        company.save(update_fields=["name", "domain", "updated_at"])
        audit_record(
            workspace=company.workspace,
            actor=by,
            verb="crm.company.updated",
            target=company,
            changes={"before": before, "after": data},
        )
    return company


@transaction.atomic
def company_merge(*, primary: Company, duplicate: Company, by=None) -> dict:
    """Fold `duplicate` into `primary`: its contacts move over, a blank name is filled, it is deleted.

    Returns ``{"moved_contacts": n}``."""
    if primary.pk == duplicate.pk or primary.workspace_id != duplicate.workspace_id:
        raise ValidationError("Pick two different companies of the same workspace.")
    primary = Company.objects.select_for_update().get(pk=primary.pk)
    duplicate = Company.objects.select_for_update().get(pk=duplicate.pk)
    moved = Contact.objects.filter(company=duplicate).update(company=primary)
    if not primary.name and duplicate.name:
        primary.name = duplicate.name
        primary.save(update_fields=["name", "updated_at"])
    report = {"moved_contacts": moved, "merged": duplicate.domain, "merged_id": duplicate.pk}
    audit_record(
        workspace=primary.workspace, actor=by, verb="crm.company.merged", target=primary, changes=report
    )
    duplicate.delete()
    return {"moved_contacts": moved}


def company_dependents(company: Company) -> dict:
    """What deleting `company` touches: its contacts (they keep existing, without a company)."""
    return {"contacts": Contact.objects.filter(company=company).count()}


@transaction.atomic
def company_delete(*, company: Company, by=None) -> dict:
    """Delete a company; its contacts stay, unlinked. Returns `company_dependents` as it was."""
    company = Company.objects.select_for_update().get(pk=company.pk)
    report = company_dependents(company)
    audit_record(
        workspace=company.workspace,
        actor=by,
        verb="crm.company.deleted",
        target=company,
        changes={"domain": company.domain, **report},
    )
    company.delete()
    return report
