"""The optional review rule: when a workspace turns on ``approval_required``, a campaign needs a reviewer's
(or admin's: `aicmo.roles.APPROVE`) approval before it can be scheduled or sent. Approving is audited.
Changing what was approved — the content's email version, or the campaign's own settings — withdraws the
approval, and a scheduled or missed campaign goes back to draft until it is approved again."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from aicmo.audit import audit_record
from aicmo.conflicts import Conflict
from aicmo.models import Workspace
from aicmo.roles import APPROVE, role_allows

from ..models import Campaign, CampaignStatus, PublishingSettings

REVIEWABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.MISSED)


def approval_required(workspace: Workspace | int) -> bool:
    ws_id = getattr(workspace, "pk", workspace)
    return PublishingSettings.objects.filter(workspace_id=ws_id, approval_required=True).exists()


@transaction.atomic
def publishing_settings_save(*, workspace: Workspace, approval_required: bool, by=None) -> PublishingSettings:
    """Turn the review rule on or off for the workspace (audited)."""
    row, _ = PublishingSettings.objects.select_for_update().get_or_create(workspace=workspace)
    if row.approval_required != bool(approval_required):
        row.approval_required = bool(approval_required)
        row.save()
        audit_record(
            workspace=workspace,
            actor=by,
            verb="publishing.settings.updated",
            target=row,
            changes={"approval_required": row.approval_required},
        )
    return row


def require_approved(campaign: Campaign) -> None:
    """Raise a Conflict (a ValidationError; 409 in the API) when the workspace requires approval and the
    campaign has none."""
    if campaign.approved_at is None and approval_required(campaign.workspace_id):
        raise Conflict({"campaign": ["This campaign needs a reviewer's approval first."]})


@transaction.atomic
def campaign_approve(*, campaign: Campaign, by, role: str) -> Campaign:
    """Approve a draft (or scheduled/missed) campaign as ``by`` acting with ``role``.

    PermissionDenied unless the role may approve; Conflict (a ValidationError) when it is past review."""
    if not role_allows(role, APPROVE):
        raise PermissionDenied("Only a reviewer or an admin can approve a campaign.")
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in REVIEWABLE:
        raise Conflict(f"A campaign that is {campaign.get_status_display().lower()} is past review.")
    campaign.approved_at = timezone.now()
    campaign.approved_by = by if getattr(by, "is_authenticated", False) else None
    campaign.save(update_fields=["approved_at", "approved_by", "updated_at"])
    audit_record(workspace=campaign.workspace, actor=by, verb="publishing.campaign.approved", target=campaign)
    return campaign


@transaction.atomic(savepoint=False)
def approval_withdraw(*, campaigns, by=None, reason: str) -> int:
    """Withdraw the approval of ``campaigns`` (a queryset) still in review; scheduled/missed ones go back
    to draft. Returns how many were withdrawn. Call inside the transaction of the change."""
    withdrawn = 0
    for campaign in campaigns.select_for_update().filter(approved_at__isnull=False, status__in=REVIEWABLE):
        campaign.approved_at, campaign.approved_by = None, None
        fields = ["approved_at", "approved_by", "updated_at"]
        if campaign.status != CampaignStatus.DRAFT:
            campaign.status, campaign.scheduled_at = CampaignStatus.DRAFT, None
            fields += ["status", "scheduled_at"]
        campaign.save(update_fields=fields)
        audit_record(
            workspace=campaign.workspace,
            actor=by,
            verb="publishing.campaign.approval_withdrawn",
            target=campaign,
            changes={"reason": reason},
        )
        withdrawn += 1
    return withdrawn
