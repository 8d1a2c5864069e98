"""Thin Celery tasks: ids in, one service call, idempotent on redelivery."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=0, ignore_result=True)
def build_renditions_task(
    asset_id: int, job_id: int | None = None, specs: list[str] | None = None, force: bool = False
) -> int:
    return services.asset_build_renditions(asset_id=asset_id, job_id=job_id, specs=specs, force=force)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def compute_suggestions_task(job_id: int) -> int:
    return services.suggestions_refresh(job_id=job_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def compute_asset_suggestions_task(asset_id: int) -> int:
    return services.asset_refresh_suggestions(asset_id=asset_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def refresh_all_suggestions_task() -> int:
    """Daily (beat): CTR medians and "unused for 90 days" change with time, so suggestions are recomputed."""
    return services.suggestions_refresh_all()
