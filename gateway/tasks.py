"""Celery tasks: thin wrappers that load ids and call a gateway service."""

from __future__ import annotations

from celery import shared_task

from aicmo.models import Workspace


@shared_task(ignore_result=True)
def selfcheck_all_task() -> int:
    """Beat entry point (every 5 minutes): one self-check task per workspace that has enabled accounts."""
    from .health import health_prune
    from .models import ProviderAccount

    workspace_ids = sorted(
        set(ProviderAccount.objects.filter(enabled=True).values_list("workspace_id", flat=True))
    )
    for workspace_id in workspace_ids:
        selfcheck_workspace_task.delay(workspace_id)
    health_prune()
    return len(workspace_ids)


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def health_flush_task() -> int:
    """Beat entry point (every minute): buffered per-minute call counters from Redis to HealthMinute."""
    from .health import health_flush

    return health_flush()


@shared_task(ignore_result=True, acks_late=True, soft_time_limit=240, time_limit=300)
def selfcheck_workspace_task(workspace_id: int) -> int:
    from .health import refresh_states, selfcheck_workspace

    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return 0  # deleted meanwhile
    checks = selfcheck_workspace(workspace=workspace)
    refresh_states(workspace)
    return len(checks)
