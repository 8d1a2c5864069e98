"""Core reads: jobs, audit events and invitations of a workspace."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from .models import AuditEvent, Invitation, Job, JobStatus, Workspace


def jobs_for(workspace: Workspace) -> QuerySet[Job]:
    return Job.objects.for_workspace(workspace).select_related("started_by").order_by("-created_at")


def audit_events_for(workspace: Workspace) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.for_workspace(workspace).select_related("actor").order_by("-at", "-id")


def invitations_open_for(workspace: Workspace) -> QuerySet[Invitation]:
    """Invitations neither accepted nor revoked (pending or expired), newest first."""
    return Invitation.objects.for_workspace(workspace).filter(
        accepted_at__isnull=True, revoked_at__isnull=True
    )


# Operator (fleet-wide) reads: the staff operations page and /metrics see every workspace on purpose.
# They are never reachable by a workspace member: the page is staff-only and /metrics is token/network
# guarded (aicmo.metrics.scrape_allowed).


def job_counts_open() -> list[dict]:
    """``[{"kind", "status", "n"}]`` for queued and running jobs of all workspaces (one query)."""
    return list(
        Job.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        .values("kind", "status")
        .annotate(n=Count("id"))
        .order_by("kind", "status")
    )


def jobs_running_progress(limit: int = 200) -> QuerySet[Job]:
    """Running jobs (oldest first, at most ``limit``) with only the fields progress needs."""
    return (
        Job.objects.filter(status=JobStatus.RUNNING)
        .only("id", "kind", "total", "done", "failed")
        .order_by("started_at", "id")[:limit]
    )


def jobs_failed_recent(limit: int = 50) -> QuerySet[Job]:
    """Failed jobs of all workspaces, newest first, with their workspace (operations page)."""
    return (
        Job.objects.filter(status=JobStatus.FAILED)
        .select_related("workspace")
        .order_by("-finished_at", "-id")[:limit]
    )
