"""CRM writes: contacts, tags, lists, lifecycle, suppression and consent, merge, GDPR, enrichment, segments.

Admin actions, API views, dashboard views, Celery tasks and the import command all call these functions.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date

from aicmo.audit import audit_record
from aicmo.jobs import ItemError, job_advance, job_finish, job_mark_running, job_start
from aicmo.models import Job, JobStatus, Workspace
from aicmo.workspaces import named_rows_ensure

from .models import (
    Channel,
    Company,
    ConsentEvent,
    Contact,
    ContactList,
    CustomFieldDefinition,
    EnrichmentConflict,
    EnrichmentRecord,
    FieldType,
    Lifecycle,
    LifecycleTransition,
    ListMembership,
    Segment,
    Suppression,
    SuppressionReason,
    Tag,
    Tier,
    Verdict,
)
from .segments import validate_rules
from .selectors import contacts_for_selection

EDITABLE_FIELDS = ("first_name", "last_name", "title", "phone", "source")
PERSON_FIELDS = ("first_name", "last_name", "title", "phone", "company")
ENRICHABLE_FIELDS = ("first_name", "last_name", "title", "phone", "company")
STAGE_ORDER = [Lifecycle.NEW, Lifecycle.ENRICHED, Lifecycle.VERIFIED, Lifecycle.ENGAGED, Lifecycle.CONVERTED]
ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    Lifecycle.NEW: {Lifecycle.ENRICHED, Lifecycle.VERIFIED, Lifecycle.ENGAGED},
    Lifecycle.ENRICHED: {Lifecycle.VERIFIED, Lifecycle.ENGAGED},
    Lifecycle.VERIFIED: {Lifecycle.ENGAGED},
    Lifecycle.ENGAGED: {Lifecycle.CONVERTED},
    Lifecycle.CONVERTED: set(),
}
ENRICH_CHUNK = 50
ENRICH_LANES = 4


class LifecycleError(ValueError):
    pass


class SuppressionError(ValueError):
    pass


# ---------------------------------------------------------------- normalisation and validation


def normalize_email(value: str) -> str:
    return (value or "").strip().lower()


# Django's own dot-atom local part and domain patterns in one compiled regex: a match is exactly what
# `validate_email` accepts for an ordinary address; anything else (quoted local part, IP literal,
# localhost, too long) falls through to the validator itself, so the verdict never differs.
_FAST_EMAIL = re.compile(
    r"[-!#$%&'*+/=?^_`{}|~0-9A-Z]+(?:\.[-!#$%&'*+/=?^_`{}|~0-9A-Z]+)*@"
    + EmailValidator.hostname_re
    + EmailValidator.domain_re
    + EmailValidator.tld_no_fqdn_re
    + r"\Z",
    re.IGNORECASE,
)


def email_is_valid(value: str) -> bool:
    if len(value) <= 320 and _FAST_EMAIL.match(value):
        return True
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


def normalize_domain(value: str) -> str:
    value = (value or "").strip().lower()
    for prefix in ("https://", "http://"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
    value = value.split("/", 1)[0]
    return value.removeprefix("www.")


def custom_fields_clean(workspace: Workspace | int, custom: dict | None) -> dict:
    """Validate `custom` against the workspace's definitions; errors are keyed ``custom.<key>``."""
    if not custom:
        return {}
    if not isinstance(custom, dict):
        raise ValidationError({"custom": "Expected an object."})
    defs = {d.key: d for d in CustomFieldDefinition.objects.for_workspace(workspace)}
    cleaned, errors = {}, {}
    for key, value in custom.items():
        d = defs.get(key)
        if d is None:
            errors[f"custom.{key}"] = "Unknown custom field."
            continue
        if value is None or value == "":
            cleaned[key] = None
            continue
        try:
            cleaned[key] = _coerce_custom(d, value)
        except ValueError as exc:
            errors[f"custom.{key}"] = str(exc)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _coerce_custom(d: CustomFieldDefinition, value):
    if d.type == FieldType.NUMBER:
        if isinstance(value, bool):
            raise ValueError("Expected a number.")
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError("Expected a number.") from None
        return int(number) if number.is_integer() else number
    if d.type == FieldType.DATE:
        parsed = value if isinstance(value, dt.date) else parse_date(str(value).strip())
        if parsed is None:
            raise ValueError("Expected a date (YYYY-MM-DD).")
        return parsed.isoformat()
    if d.type == FieldType.BOOL:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "yes", "1", "y"}:
            return True
        if text in {"false", "no", "0", "n"}:
            return False
        raise ValueError("Expected yes or no.")
    if d.type == FieldType.CHOICE:
        if str(value) not in (d.choices or []):
            raise ValueError(f"Expected one of: {', '.join(map(str, d.choices or []))}.")
        return str(value)
    return str(value)[:1000]


# ---------------------------------------------------------------- companies, tags, contacts


def company_get_or_create(*, workspace: Workspace, domain: str, name: str = "") -> Company | None:
    domain = normalize_domain(domain)
    if not domain:
        return None
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
    if "company" in data and isinstance(data["company"], Company):
        return True, data["company"]
    domain = data.get("company_domain") or ""
    name = (
        (data.get("company") or data.get("company_name") or "").strip()
        if not isinstance(data.get("company"), Company)
        else ""
    )
    if not domain and not name:
        return ("company_domain" in data or "company" in data), None
    if not domain:
        domain = name.lower().replace(" ", "") + ".unknown"
    return True, company_get_or_create(workspace=workspace, domain=domain, name=name)


@transaction.atomic
def contact_create(
    *, workspace: Workspace, data: dict, by=None, source: str = "manual", typed: bool = True
) -> Contact:
    """Create a contact from person-entered data (`typed`): those fields are protected from enrichment."""
    email = normalize_email(data.get("email", ""))
    if not email_is_valid(email):
        raise ValidationError({"email": "Enter a valid email address."})
    if Contact.objects.for_workspace(workspace).filter(email=email).exists():
        raise ValidationError({"email": "A contact with this email already exists."})
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
    if "email" in data and normalize_email(data["email"]) != contact.email:
        email = normalize_email(data["email"])
        if not email_is_valid(email):
            raise ValidationError({"email": "Enter a valid email address."})
        if (
            Contact.objects.for_workspace(contact.workspace_id)
            .filter(email=email)
            .exclude(pk=contact.pk)
            .exists()
        ):
            raise ValidationError({"email": "A contact with this email already exists."})
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


# ---------------------------------------------------------------- lists and segments


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


# ---------------------------------------------------------------- lifecycle and engagement


@transaction.atomic
def contact_transition(*, contact: Contact, to: str, reason: str = "", by=None) -> Contact:
    """The one place a lifecycle stage changes; every change leaves a `LifecycleTransition`."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if to not in Lifecycle.values:
        raise LifecycleError(f"Unknown stage {to!r}.")
    if to == contact.lifecycle:
        return contact
    if to not in ALLOWED_TRANSITIONS[contact.lifecycle]:
        raise LifecycleError(f"A contact cannot move from {contact.lifecycle} to {to}.")
    if (
        to == Lifecycle.ENRICHED
        and not contact.enrichment_records.filter(matched=True).exclude(fields={}).exists()
    ):
        raise LifecycleError("A contact is enriched only once a provider returned data for it.")
    if to == Lifecycle.VERIFIED and contact.verification != Verdict.VALID:
        raise LifecycleError("Only an email verified as valid makes a contact verified.")
    LifecycleTransition.objects.create(
        workspace_id=contact.workspace_id,
        contact=contact,
        from_stage=contact.lifecycle,
        to_stage=to,
        reason=reason,
    )
    contact.lifecycle = to
    contact.save(update_fields=["lifecycle", "updated_at"])
    return contact


def _advance_to(contact: Contact, to: str, reason: str) -> Contact:
    """Move forward to `to` if the contact is before it (never backwards)."""
    if (
        STAGE_ORDER.index(contact.lifecycle) < STAGE_ORDER.index(to)
        and to in ALLOWED_TRANSITIONS[contact.lifecycle]
    ):
        return contact_transition(contact=contact, to=to, reason=reason)
    return contact


def tier_for_score(score: int) -> str:
    if score >= 70:
        return Tier.HIGH
    if score >= 40:
        return Tier.MEDIUM
    if score > 0:
        return Tier.LOW
    return Tier.INACTIVE


@transaction.atomic
def contact_record_engagement(
    *,
    contact_id: int,
    at: dt.datetime | None = None,
    score: int | None = None,
    tier: str | None = None,
    converted: bool = False,
) -> Contact | None:
    """Written by publishing/analytics: last engaged time, score/tier; moves the stage to engaged/converted."""
    contact = Contact.objects.select_for_update().filter(pk=contact_id, erased_at__isnull=True).first()
    if contact is None:
        return None
    at = at or timezone.now()
    if contact.last_engaged_at is None or at > contact.last_engaged_at:
        contact.last_engaged_at = at
    if score is not None:
        contact.engagement_score = max(0, min(100, int(score)))
        contact.engagement_tier = tier or tier_for_score(contact.engagement_score)
    contact.save(update_fields=["last_engaged_at", "engagement_score", "engagement_tier", "updated_at"])
    contact = _advance_to(contact, Lifecycle.ENGAGED, "engagement")
    if converted:
        contact = _advance_to(contact, Lifecycle.CONVERTED, "conversion")
    return contact


def contacts_set_scores(*, workspace: Workspace, scores: dict[int, int]) -> int:
    """Bulk score write for analytics rollups (no lifecycle change, no per-row save)."""
    contacts = list(Contact.objects.for_workspace(workspace).filter(pk__in=list(scores)).only("pk"))
    for c in contacts:
        c.engagement_score = max(0, min(100, int(scores[c.pk])))
        c.engagement_tier = tier_for_score(c.engagement_score)
    Contact.objects.bulk_update(contacts, ["engagement_score", "engagement_tier"], batch_size=500)
    return len(contacts)


# ---------------------------------------------------------------- verification


def normalize_verdict(raw: str) -> str:
    """Provider statuses → our verdicts. Accept-all / catch-all is never `valid`."""
    value = (raw or "").strip().lower().replace("-", "_")
    if value in {"valid", "deliverable", "verified", "ok"}:
        return Verdict.VALID
    if value in {"invalid", "undeliverable", "bounced", "bad"}:
        return Verdict.INVALID
    if value in {"accept_all", "catch_all", "catchall", "acceptall"}:
        return Verdict.CATCH_ALL
    if value in {"risky", "disposable", "webmail", "role"}:
        return Verdict.RISKY
    return Verdict.UNKNOWN


@transaction.atomic
def contact_set_verification(*, contact: Contact, verdict: str, provider: str = "") -> Contact:
    verdict = verdict if verdict in Verdict.values else normalize_verdict(verdict)
    contact.verification = verdict
    contact.verified_at = timezone.now()
    contact.provenance["verification"] = {
        "source": "verification",
        "provider": provider,
        "at": contact.verified_at.isoformat(),
    }
    contact.save(update_fields=["verification", "verified_at", "provenance", "updated_at"])
    if verdict == Verdict.VALID:
        contact = _advance_to(contact, Lifecycle.VERIFIED, f"verified by {provider}".strip())
    return contact


# ---------------------------------------------------------------- suppression and consent


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


# ---------------------------------------------------------------- merge and GDPR


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


def contact_export_data(*, contact: Contact) -> dict:
    """Everything we hold about one person (GDPR access request), JSON-serialisable."""

    def iso(value):
        return value.isoformat() if value else None

    return {
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "title": contact.title,
        "phone": contact.phone,
        "company": {"name": contact.company.name, "domain": contact.company.domain}
        if contact.company
        else None,
        "source": contact.source,
        "custom": contact.custom,
        "tags": sorted(contact.tags.values_list("name", flat=True)),
        "lists": sorted(contact.lists.values_list("name", flat=True)),
        "lifecycle": contact.lifecycle,
        "verification": contact.verification,
        "engagement": {
            "score": contact.engagement_score,
            "tier": contact.engagement_tier,
            "last_engaged_at": iso(contact.last_engaged_at),
        },
        "provenance": contact.provenance,
        "created_at": iso(contact.created_at),
        "lifecycle_history": [
            {"from": t.from_stage, "to": t.to_stage, "reason": t.reason, "at": iso(t.at)}
            for t in contact.transitions.all()
        ],
        "suppressions": [
            {"channel": s.channel, "reason": s.reason, "source": s.source, "at": iso(s.created_at)}
            for s in contact.suppressions.all()
        ],
        "consent": [
            {"kind": e.kind, "granted": e.granted, "source": e.source, "ip": e.ip, "at": iso(e.at)}
            for e in contact.consent_events.all()
        ],
        "enrichment": [
            {"provider": r.provider, "fetched_at": iso(r.fetched_at), "fields": r.fields, "demo": r.demo}
            for r in contact.enrichment_records.all()
        ],
    }


@transaction.atomic
def contact_erase(*, contact: Contact, by=None) -> Contact:
    """Anonymise a person (GDPR erasure): personal data gone, row kept so aggregate statistics still add up."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    contact.email = f"erased-{contact.pk}@erased.invalid"
    for name in ("first_name", "last_name", "title", "phone", "source"):
        setattr(contact, name, "")
    contact.custom, contact.provenance, contact.typed_fields = {}, {}, []
    contact.verification, contact.erased_at = "", timezone.now()
    contact.save()
    contact.tags.clear()
    contact.enrichment_records.all().delete()
    contact.consent_events.all().delete()
    ListMembership.objects.filter(contact=contact).delete()
    Suppression.objects.filter(contact=contact).delete()
    for channel in Channel.values:
        Suppression.objects.create(
            workspace_id=contact.workspace_id,
            contact=contact,
            channel=channel,
            reason=SuppressionReason.MANUAL,
            source="gdpr-erasure",
        )
    audit_record(workspace=contact.workspace, actor=by, verb="crm.contact.erased", target=contact)
    return contact


# ---------------------------------------------------------------- enrichment


def enrichment_ttl() -> dt.timedelta:
    return dt.timedelta(days=int(getattr(settings, "CRM_ENRICHMENT_TTL_DAYS", 30)))


def _is_verified_record(fields: dict) -> bool:
    return str(fields.get("email_status", "")).lower() in {"verified", "valid"}


def _current_value(contact: Contact, name: str) -> str:
    if name == "company":
        return contact.company.name if contact.company_id and contact.company else ""
    return getattr(contact, name) or ""


@transaction.atomic
def enrichment_apply(
    *,
    contact: Contact,
    provider: str,
    fields: dict,
    matched: bool = True,
    credits_used=0,
    demo: bool = False,
    raw_id: str = "",
    fetched_at: dt.datetime | None = None,
) -> EnrichmentRecord:
    """Store one provider answer and merge it: typed values never change, newer verified data wins over older,
    every value not applied is kept as an `EnrichmentConflict`."""
    contact = Contact.objects.select_for_update(of=("self",)).select_related("company").get(pk=contact.pk)
    fetched_at = fetched_at or timezone.now()
    clean = {k: v for k, v in (fields or {}).items() if v not in (None, "", [], {})}
    record = EnrichmentRecord.objects.create(
        workspace_id=contact.workspace_id,
        contact=contact,
        provider=provider,
        raw_id=str(raw_id or "")[:200],
        matched=bool(matched and clean),
        fetched_at=fetched_at,
        fields=clean,
        credits_used=credits_used or 0,
        demo=demo,
    )
    if not record.matched:
        return record
    verified = _is_verified_record(clean)
    typed = set(contact.typed_fields or [])
    conflicts = []
    for name in ENRICHABLE_FIELDS:
        offered = str(clean.get(name, "")).strip()
        if not offered:
            continue
        current = _current_value(contact, name)
        if current.strip().lower() == offered.lower():
            continue
        prov = contact.provenance.get(name) or {}
        if current and (name in typed or prov.get("source") in {"typed", "import"} or not prov):
            conflicts.append((name, current, offered, "kept_typed"))
            continue
        if current:
            old_rank = (bool(prov.get("verified")), prov.get("at", ""))
            new_rank = (verified, fetched_at.isoformat())
            if new_rank < old_rank:
                conflicts.append((name, current, offered, "kept_existing"))
                continue
            conflicts.append((name, current, offered, "replaced_older"))
        if name == "company":
            domain = clean.get("domain") or (offered.lower().replace(" ", "") + ".unknown")
            contact.company = company_get_or_create(workspace=contact.workspace, domain=domain, name=offered)
        else:
            setattr(contact, name, offered[: Contact._meta.get_field(name).max_length])
        contact.provenance[name] = {
            "source": "enrichment",
            "provider": provider,
            "record_id": record.pk,
            "at": fetched_at.isoformat(),
            "verified": verified,
            "demo": demo,
        }
    EnrichmentConflict.objects.bulk_create(
        [
            EnrichmentConflict(
                workspace_id=contact.workspace_id,
                contact=contact,
                record=record,
                field=f,
                current_value=str(c)[:1000],
                offered_value=str(o)[:1000],
                resolution=r,
            )
            for f, c, o, r in conflicts
        ]
    )
    contact.enriched_at = fetched_at
    contact.save()
    if contact.lifecycle == Lifecycle.NEW:
        contact_transition(contact=contact, to=Lifecycle.ENRICHED, reason=f"enriched by {provider}")
    return record


def contacts_needing_enrichment(contact_ids: Sequence[int], *, now: dt.datetime | None = None) -> list[int]:
    """Ids without a provider answer inside the TTL (fresh records are not re-fetched)."""
    cutoff = (now or timezone.now()) - enrichment_ttl()
    fresh = set(
        EnrichmentRecord.objects.filter(contact_id__in=contact_ids, fetched_at__gte=cutoff).values_list(
            "contact_id", flat=True
        )
    )
    return [i for i in contact_ids if i not in fresh]


@dataclass(frozen=True)
class ChunkOutcome:
    done: int
    failed: int
    skipped: int


MAX_RUN_CONTACTS = 100_000  # a run keeps its contact ids in Job.params (docs/CRM.md, known limits)


class RunTooLarge(ValueError):
    """The selection holds more contacts than one run takes."""


def enrichment_start(
    *,
    workspace: Workspace,
    contact_ids: Sequence[int] | None = None,
    list_id: int | None = None,
    segment_id: int | None = None,
    by=None,
    label: str = "",
) -> Job:
    """Start an enrichment run over ticked contacts, a list or a segment (resolved now, once): a Job whose
    contacts are processed by `ENRICH_LANES` Celery lanes in chunks. Raises RunTooLarge, SegmentRuleError."""
    ids = _run_contact_ids(workspace, contact_ids=contact_ids, list_id=list_id, segment_id=segment_id)
    return _run_start(
        workspace=workspace, kind="crm.enrichment", ids=ids, by=by, label=label or "Enrichment run"
    )


def verification_start(
    *,
    workspace: Workspace,
    contact_ids: Sequence[int] | None = None,
    list_id: int | None = None,
    segment_id: int | None = None,
    by=None,
) -> Job:
    """Start an email verification run; the same selection and limits as `enrichment_start`."""
    ids = _run_contact_ids(workspace, contact_ids=contact_ids, list_id=list_id, segment_id=segment_id)
    return _run_start(
        workspace=workspace, kind="crm.verification", ids=ids, by=by, label="Email verification"
    )


def _run_contact_ids(workspace, *, contact_ids, list_id, segment_id) -> list[int]:
    if contact_ids is None and list_id is None and segment_id is None:
        raise ValueError("A run needs contact ids, a list or a segment.")
    ids = list(
        contacts_for_selection(
            workspace=workspace, contact_ids=contact_ids, list_id=list_id, segment_id=segment_id
        )
        .filter(erased_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)[: MAX_RUN_CONTACTS + 1]
    )
    if len(ids) > MAX_RUN_CONTACTS:
        raise RunTooLarge(f"A run takes at most {MAX_RUN_CONTACTS:,} contacts; narrow the selection.")
    return ids


def _run_start(*, workspace, kind, ids, by, label) -> Job:
    from .tasks import contact_run_lane_task

    with transaction.atomic():
        job = job_start(
            workspace=workspace,
            kind=kind,
            total=len(ids),
            by=by,
            label=label,
            params={"contact_ids": ids, "chunk": ENRICH_CHUNK, "lanes": ENRICH_LANES},
        )
        audit_record(
            workspace=workspace, actor=by, verb=f"{kind}.started", target=job, changes={"count": len(ids)}
        )
        if not ids:
            job_mark_running(job_id=job.pk)
            return job_finish(job_id=job.pk, status=JobStatus.SUCCEEDED, message="Nothing to do.")
        lanes = min(ENRICH_LANES, (len(ids) + ENRICH_CHUNK - 1) // ENRICH_CHUNK)
        for lane in range(lanes):
            transaction.on_commit(lambda lane=lane: contact_run_lane_task.delay(job.pk, lane * ENRICH_CHUNK))
    return job


def run_lane_step(*, job_id: int, offset: int) -> int | None:
    """Process the chunk at `offset`; return the next offset for this lane or None when the lane is done.

    Raises gateway ProvidersUnavailable untouched so the task can retry this same chunk later."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.is_finished:
        return None
    job_mark_running(job_id=job_id)
    ids = job.params.get("contact_ids", [])
    chunk, lanes = job.params.get("chunk", ENRICH_CHUNK), job.params.get("lanes", ENRICH_LANES)
    batch = ids[offset : offset + chunk]
    progress = job.result.get("offsets_done", []) if job.result else []
    if batch and offset not in progress:
        if job.kind == "crm.enrichment":
            outcome = enrichment_process_chunk(job_id=job_id, contact_ids=batch)
        else:
            outcome = verification_process_chunk(job_id=job_id, contact_ids=batch)
        _mark_chunk_done(job_id, offset, outcome)
    nxt = offset + chunk * lanes
    if nxt < len(ids):
        return nxt
    _finish_if_complete(job_id)
    return None


@transaction.atomic
def _mark_chunk_done(job_id: int, offset: int, outcome: ChunkOutcome) -> None:
    job = Job.objects.select_for_update().get(pk=job_id)
    result = dict(job.result or {})
    result["offsets_done"] = sorted({*result.get("offsets_done", []), offset})
    result["skipped_fresh"] = result.get("skipped_fresh", 0) + outcome.skipped
    job.result = result
    job.save(update_fields=["result", "updated_at"])


def _finish_if_complete(job_id: int) -> None:
    job = Job.objects.get(pk=job_id)
    ids, chunk = job.params.get("contact_ids", []), job.params.get("chunk", ENRICH_CHUNK)
    expected = set(range(0, len(ids), chunk))
    if expected <= set(job.result.get("offsets_done", [])):
        job_finish(job_id=job_id, result=job.result)


def _gateway():
    from gateway import services as gateway_services

    return gateway_services


def enrichment_process_chunk(*, job_id: int, contact_ids: Sequence[int]) -> ChunkOutcome:
    from gateway.capabilities import PersonQuery
    from gateway.errors import ProviderError

    job = Job.objects.get(pk=job_id)
    todo = contacts_needing_enrichment(list(contact_ids))
    skipped = len(contact_ids) - len(todo)
    contacts = list(
        Contact.objects.filter(pk__in=todo, workspace_id=job.workspace_id).select_related("company")
    )
    queries = [
        PersonQuery(
            email=c.email,
            first_name=c.first_name,
            last_name=c.last_name,
            domain=c.company.domain if c.company else "",
            company=c.company.name if c.company else "",
        )
        for c in contacts
    ]
    done = failed = 0
    errors: list[ItemError] = []
    gw = _gateway()
    try:
        results = gw.enrich_people(workspace=job.workspace, queries=queries) if queries else []
        pairs = list(zip(contacts, results, strict=True))
    except ProviderError:
        pairs = []
        for contact, query in zip(contacts, queries, strict=True):
            try:
                pairs.append((contact, gw.enrich_people(workspace=job.workspace, queries=[query])[0]))
            except ProviderError as exc:
                failed += 1
                errors.append(
                    ItemError(
                        item=contact.email,
                        message=str(exc),
                        details={"contact_id": contact.pk, "kind": str(getattr(exc, "kind", ""))},
                    )
                )
    for contact, result in pairs:
        enrichment_apply(
            contact=contact,
            provider=result.provider,
            fields=dict(result.fields or {}),
            matched=result.matched,
            credits_used=result.credits_used,
            demo=result.demo,
            raw_id=result.raw_id,
        )
        done += 1
    job_advance(job_id=job_id, done=done + skipped, failed=failed, errors=errors)
    return ChunkOutcome(done=done, failed=failed, skipped=skipped)


def verification_process_chunk(*, job_id: int, contact_ids: Sequence[int]) -> ChunkOutcome:
    from gateway.errors import ProviderError

    job = Job.objects.get(pk=job_id)
    done = failed = 0
    errors = []
    gw = _gateway()
    for contact in Contact.objects.filter(pk__in=contact_ids, workspace_id=job.workspace_id):
        try:
            result = gw.verify_email(workspace=job.workspace, email=contact.email)
        except ProviderError as exc:
            failed += 1
            errors.append(ItemError(item=contact.email, message=str(exc), details={"contact_id": contact.pk}))
            continue
        contact_set_verification(contact=contact, verdict=str(result.verdict), provider=result.provider)
        done += 1
    job_advance(job_id=job_id, done=done, failed=failed, errors=errors)
    return ChunkOutcome(done=done, failed=failed, skipped=0)
