"""Core reads: jobs, audit events and invitations of a workspace."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import AuditEvent, Invitation, Job, Workspace


def jobs_for(workspace: Workspace) -> QuerySet[Job]:
    return Job.objects.for_workspace(workspace).select_related("started_by").order_by("-created_at")


def audit_events_for(workspace: Workspace) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.for_workspace(workspace).select_related("actor").order_by("-at", "-id")


def invitations_open_for(workspace: Workspace) -> QuerySet[Invitation]:
    """Invitations neither accepted nor revoked (pending or expired), newest first."""
    return Invitation.objects.for_workspace(workspace).filter(
        accepted_at__isnull=True, revoked_at__isnull=True
    )
