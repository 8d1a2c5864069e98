"""The Celery application. Configuration comes from Django settings (CELERY_* names).

Every task in the project is built on :class:`Task` (the app's ``task_cls``), which retries a write that
lost the race for SQLite's lock instead of failing the task for good.

Signal receivers connected here run in every process that publishes or executes tasks: publish time on
each message (queue age on the ops page and in metrics), task outcome counters (metrics), and the
request/task id carried into task logs.
"""

from __future__ import annotations

import os
import random

import celery
from celery import Celery
from celery.signals import (
    before_task_publish,
    task_failure,
    task_prerun,
    task_retry,
    task_success,
    worker_init,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aicmo.settings")


def database_locked_countdown(retries: int, *, base_delay: float, max_delay: float) -> float:
    """Seconds before retry number ``retries + 1``: exponential backoff with "equal jitter", i.e. a
    uniform draw from the upper half of ``min(max_delay, base_delay * 2**retries)`` (AWS Architecture
    Blog, "Exponential Backoff And Jitter", 2015), so workers that collided do not collide again."""
    ceiling = min(max_delay, base_delay * 2 ** max(0, retries))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class Task(celery.Task):
    """Retries "database is locked" / "database table is locked" and an unreachable database server
    (:func:`aicmo.dblocks.is_database_unavailable`) with backoff and jitter, and refuses a
    delivery after ``settings.AICMO_TASK_MAX_DELIVERIES`` earlier ones killed their worker (see
    :mod:`aicmo.deliveries`).

    Bounded by ``settings.AICMO_DB_LOCKED_RETRY`` (``max_retries``, ``base_delay`` and ``max_delay`` in
    seconds); once spent, the ``OperationalError`` propagates and the task fails as before. Any other
    exception is left to the task. Tasks are idempotent (ids in, state checks), so re-running one after a
    lock error is safe. Called directly (not through a worker), the error is raised at once."""

    def __call__(self, *args, **kwargs):
        if self.request.called_directly:
            return super().__call__(*args, **kwargs)
        # In a worker the tracer has pushed this delivery's request (id, retries); Celery's own __call__
        # would push a bare one over it, so the body runs as the tracer does for tasks without __call__.
        counted = not self.request.is_eager and bool(self.request.id)
        if counted:
            from celery.exceptions import Reject

            from .deliveries import delivery_admit, delivery_refuse

            deaths = delivery_admit(self.request.id, self.request.retries)
            if deaths is not None:
                reason = delivery_refuse(
                    task_name=self.name,
                    task_id=self.request.id,
                    deaths=deaths,
                    run=self.run,
                    args=args,
                    kwargs=kwargs,
                )
                raise Reject(reason, requeue=False)
        try:
            return self.run(*args, **kwargs)
        except Exception as exc:
            if not self.retries_database_lock(exc):
                raise
            from django.conf import settings

            policy = settings.AICMO_DB_LOCKED_RETRY
            countdown = database_locked_countdown(
                self.request.retries, base_delay=policy["base_delay"], max_delay=policy["max_delay"]
            )
            try:
                raise self.retry(exc=exc, countdown=countdown, max_retries=policy["max_retries"]) from exc
            finally:
                # retry() leaves its max_retries on the (shared) task object for autoretry_for's sake.
                self.__dict__.pop("override_max_retries", None)
        finally:
            if counted:
                from .deliveries import delivery_done

                delivery_done(self.request.id, self.request.retries)

    def retries_database_lock(self, exc: BaseException) -> bool:
        """Whether ``exc`` will be retried by this class (a lock error or an unreachable database server,
        with retries left): a task that
        records final failures itself checks this so a retried attempt is not recorded as failed."""
        from django.conf import settings

        from .dblocks import is_database_transient

        if self.request.called_directly or not is_database_transient(exc):
            return False
        return self.request.retries < settings.AICMO_DB_LOCKED_RETRY["max_retries"]


app = Celery("aicmo", task_cls=Task)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# How a worker publishes (a task enqueueing its next step, ``self.retry``, fan-out) while the broker is away:
# reconnect and try again, after 0, 1, 2, 3, 4 and then every 5 seconds, 60 times: about 4.7 minutes. With
# Celery's default (3 tries in 0.6 s) a Redis restart made the hand-off fail; the task then ended in an
# error, was acknowledged, and nothing ever ran the next step (an enrichment lane stopped for good:
# tests/reliability/test_redis_restart_enrichment.py). Web processes keep the short default: a request must
# not hang on the broker (their enqueues after commit report the failure instead).
WORKER_PUBLISH_RETRY_POLICY = {"max_retries": 60, "interval_start": 0, "interval_step": 1, "interval_max": 5}


@worker_init.connect(weak=False)
def _worker_publish_retry(sender=None, **kwargs):
    app.conf.task_publish_retry_policy = dict(WORKER_PUBLISH_RETRY_POLICY)


@before_task_publish.connect(weak=False)
def _on_publish(headers=None, **kwargs):
    from aicmo.logs import carry_request_id
    from aicmo.queues import stamp_enqueued_at

    stamp_enqueued_at(headers=headers)
    carry_request_id(headers=headers)


@task_prerun.connect(weak=False)
def _on_prerun(task=None, task_id=None, **kwargs):
    from aicmo.logs import bind_task_context

    bind_task_context(task=task, task_id=task_id)


@task_success.connect(weak=False)
def _on_success(sender=None, **kwargs):
    from aicmo.metrics import task_outcome

    task_outcome(sender, "success")


@task_failure.connect(weak=False)
def _on_failure(sender=None, **kwargs):
    from aicmo.metrics import task_outcome

    task_outcome(sender, "failure")


@task_retry.connect(weak=False)
def _on_retry(sender=None, **kwargs):
    from aicmo.metrics import task_outcome

    task_outcome(sender, "retry")
