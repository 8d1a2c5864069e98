"""Audience: crm segments and static lists with exclusions, the pre-send estimate and the frozen snapshot.

Who may receive is decided by crm (`crm.selectors.contacts_receivable`: suppression per channel, erasure,
invalid verdict); this module only counts why the others were left out and freezes the result as
`Delivery` rows when sending starts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet

from aicmo.tenancy import resolve_ids
from crm.models import Contact, ContactList, Segment, Suppression, Verdict
from crm.selectors import contacts_for_selection, contacts_receivable, in_lists_q

from ..models import Campaign, Delivery, DeliveryStatus

AUDIENCE_KEYS = ("segments", "lists", "exclude_segments", "exclude_lists")
SNAPSHOT_BATCH = 2000


def audience_clean(workspace, audience: dict | None) -> dict:
    """``{"segments": [ids], "lists": [ids], "exclude_segments": [...], "exclude_lists": [...]}`` with ids
    checked against the workspace (other workspaces' ids are "unknown"). Raises ValidationError."""
    audience = audience or {}
    if not isinstance(audience, dict):
        raise ValidationError({"audience": "Expected an object with segments/lists and exclusions."})
    errors: dict = {}
    clean: dict[str, list[int]] = {}
    for key in set(audience) - set(AUDIENCE_KEYS):
        errors[f"audience.{key}"] = ["Unknown key."]
    for key in AUDIENCE_KEYS:
        raw = audience.get(key) or []
        if not isinstance(raw, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
            errors[f"audience.{key}"] = ["Expected a list of ids."]
            continue
        model = Segment if "segments" in key else ContactList
        ids = sorted(set(raw))
        try:
            resolve_ids(model, ids, workspace)  # the one id-resolution rule (foreign or impossible ids)
        except ValidationError as exc:
            errors[f"audience.{key}"] = exc.error_list  # keeps does_not_exist: the API's 404
        clean[key] = ids
    if errors:
        raise ValidationError(errors)
    return clean


def _union(workspace, segments: list[int], lists: list[int]) -> Q | None:
    parts = [
        Q(pk__in=contacts_for_selection(workspace=workspace, segment_id=s).values("pk")) for s in segments
    ]
    if lists:
        parts.append(in_lists_q(workspace, lists))
    if not parts:
        return None
    q = parts[0]
    for part in parts[1:]:
        q |= part
    return q


def audience_base(campaign: Campaign) -> tuple[QuerySet[Contact], QuerySet[Contact]]:
    """(targeted: included minus excluded, excluded-only) contact querysets, de-duplicated by contact."""
    audience = campaign.audience or {}
    contacts = Contact.objects.for_workspace(campaign.workspace_id)
    include = _union(campaign.workspace_id, audience.get("segments", []), audience.get("lists", []))
    if include is None:
        return contacts.none(), contacts.none()
    included = contacts.filter(include)
    exclude = _union(
        campaign.workspace_id, audience.get("exclude_segments", []), audience.get("exclude_lists", [])
    )
    if exclude is None:
        return included, contacts.none()
    return included.exclude(exclude), included.filter(exclude)


# Why a contact is left out, in words (the keys are what `AudienceReport.left_out` and a snapshot hold).
LEFT_OUT_WORDS = {
    "erased": "personal data erased",
    "invalid_email": "address found invalid",
    "suppressed_unsubscribed": "unsubscribed",
    "suppressed_bounced": "bounced before",
    "suppressed_complained": "marked as spam before",
    "suppressed_manual": "suppressed by hand",
    "excluded": "in an excluded segment or list",
}


def left_out_words(reason: str) -> str:
    """A left-out reason as people read it; an unknown one (a newer reason in an old snapshot) as given."""
    return LEFT_OUT_WORDS.get(reason, str(reason).replace("_", " "))


@dataclass
class AudienceReport:
    """Expected recipients and why the others are left out: ``left_out`` maps a reason (``erased``,
    ``invalid_email``, ``suppressed_unsubscribed``/``_bounced``/``_complained``/``_manual``,
    ``excluded``) to a count."""

    expected: int = 0
    targeted: int = 0
    left_out: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"expected": self.expected, "targeted": self.targeted, "left_out": self.left_out}


def _reasons(targeted: QuerySet[Contact], channel: str) -> tuple[QuerySet[Contact], QuerySet[Suppression]]:
    """(targeted contacts not erased, their suppressions on ``channel``)."""
    not_erased = targeted.filter(erased_at__isnull=True)
    return not_erased, Suppression.objects.filter(channel=channel, contact__in=not_erased)


def audience_estimate(campaign: Campaign) -> AudienceReport:
    targeted, excluded = audience_base(campaign)
    channel = campaign.channel
    report = AudienceReport(targeted=targeted.count())
    report.expected = contacts_receivable(targeted, channel).count()
    left: dict[str, int] = {}
    erased = targeted.filter(erased_at__isnull=False).count()
    if erased:
        left["erased"] = erased
    not_erased, suppressions = _reasons(targeted, channel)
    for row in suppressions.values("reason").annotate(n=Count("pk")).order_by("reason"):
        left[f"suppressed_{row['reason']}"] = row["n"]
    invalid = (
        not_erased.filter(verification=Verdict.INVALID)
        .exclude(pk__in=suppressions.values("contact_id"))
        .count()
        if channel == "email"
        else 0
    )
    if invalid:
        left["invalid_email"] = invalid
    n_excluded = excluded.count()
    if n_excluded:
        left["excluded"] = n_excluded
    report.left_out = left
    return report


def audience_preview(*, workspace, audience: dict | None) -> AudienceReport:
    """The estimate for an audience not saved yet (the campaign builder, as the marketer picks segments and
    lists): ``audience`` is cleaned like a campaign's (`audience_clean`: ValidationError for unknown or
    other workspaces' ids), then counted for the email channel without writing anything."""
    clean = audience_clean(workspace, audience)
    return audience_estimate(Campaign(workspace_id=getattr(workspace, "pk", workspace), audience=clean))


def _token() -> str:
    return secrets.token_urlsafe(16)


def audience_snapshot(campaign: Campaign) -> AudienceReport:
    """Freeze the audience as Delivery rows (queued for receivable contacts, skipped with the reason for
    the others), bulk-created in batches; unique on (campaign, contact), so a repeat adds nothing."""
    report = audience_estimate(campaign)
    targeted, _excluded = audience_base(campaign)
    receivable = contacts_receivable(targeted, campaign.channel)
    ws = campaign.workspace_id

    def write(rows) -> None:
        Delivery.objects.bulk_create(rows, batch_size=SNAPSHOT_BATCH, ignore_conflicts=True)

    batch: list[Delivery] = []
    for pk, email in receivable.order_by("pk").values_list("pk", "email").iterator(chunk_size=SNAPSHOT_BATCH):
        batch.append(Delivery(workspace_id=ws, campaign=campaign, contact_id=pk, email=email, token=_token()))
        if len(batch) >= SNAPSHOT_BATCH:
            write(batch)
            batch = []
    left_out = targeted.exclude(pk__in=receivable.values("pk"))
    suppressed = dict(
        Suppression.objects.filter(channel=campaign.channel, contact__in=left_out).values_list(
            "contact_id", "reason"
        )
    )
    for pk, email, erased_at in (
        left_out.order_by("pk").values_list("pk", "email", "erased_at").iterator(chunk_size=SNAPSHOT_BATCH)
    ):
        if erased_at is not None:
            reason = "erased"
        elif pk in suppressed:
            reason = f"suppressed_{suppressed[pk]}"
        else:
            reason = "invalid_email"
        batch.append(
            Delivery(
                workspace_id=ws,
                campaign=campaign,
                contact_id=pk,
                email=email if erased_at is None else "",
                token=_token(),
                status=DeliveryStatus.SKIPPED,
                skip_reason=reason,
            )
        )
        if len(batch) >= SNAPSHOT_BATCH:
            write(batch)
            batch = []
    if batch:
        write(batch)
    return report
