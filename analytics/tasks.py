"""Celery tasks: ids in, one service call; re-running rebuilds the same rollups."""

from __future__ import annotations

from celery import shared_task

from . import rollups


@shared_task(acks_late=True, ignore_result=True)
def rollup_tick_task() -> int:
    return rollups.rollup_tick()


@shared_task(acks_late=True, ignore_result=True)
def order_import_task(job_id: int) -> int:
    from .importing import order_import_execute

    return order_import_execute(job_id=job_id)


@shared_task(acks_late=True, ignore_result=True)
def lifetime_fit_task(job_id: int) -> int:
    from .lifetime import lifetime_fit_run

    return lifetime_fit_run(job_id=job_id)
