"""Celery tasks: ids in, one service call; re-running rebuilds the same rollups."""

from __future__ import annotations

from celery import shared_task

from . import rollups


@shared_task(acks_late=True, ignore_result=True)
def rollup_tick_task() -> int:
    return rollups.rollup_tick()


@shared_task(acks_late=True, ignore_result=True)
def rollup_rebuild_task(workspace_id: int) -> int:
    return rollups.rollup_rebuild_all(workspace_id=workspace_id).rows


@shared_task(acks_late=True, ignore_result=True)
def order_import_task(job_id: int) -> int:
    from .importing import order_import_execute

    return order_import_execute(job_id=job_id)


@shared_task(acks_late=True, ignore_result=True)
def score_tick_task() -> int:
    from .scoring import score_tick

    return score_tick()


@shared_task(acks_late=True, ignore_result=True)
def score_decay_task() -> list[int]:
    from .scoring import score_decay_daily

    return score_decay_daily()


@shared_task(acks_late=True, ignore_result=True)
def scores_job_task(job_id: int) -> int:
    from .scoring import scores_job_run

    return scores_job_run(job_id=job_id)


@shared_task(acks_late=True, ignore_result=True)
def lifetime_fit_task(job_id: int) -> int:
    from .lifetime import lifetime_fit_run

    return lifetime_fit_run(job_id=job_id)
