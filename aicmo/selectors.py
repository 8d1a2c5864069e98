"""Core reads: jobs and audit events of a workspace."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import AuditEvent, Job, Workspace


def jobs_for(workspace: Workspace) -> QuerySet[Job]:
    return Job.objects.for_workspace(workspace).select_related("started_by").order_by("-created_at")


def audit_events_for(workspace: Workspace) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.for_workspace(workspace).select_related("actor").order_by("-at", "-id")
