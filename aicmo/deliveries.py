"""A bound on redeliveries of a task whose worker died while running it.

Tasks acknowledge late and are re-queued when their worker process is lost (``acks_late`` +
``reject_on_worker_lost``), so a crash or a deploy does not drop work. A task that itself kills the process
(out of memory, a segfault in a C library) would then be delivered again and again, forever. Before a task
body runs, :func:`delivery_admit` counts the delivery in Redis under the task id and retry number (a
``self.retry()`` is a new attempt, not a redelivery); the count is removed when the body returns or raises,
so only deliveries that never came back are counted. Once ``settings.AICMO_TASK_MAX_DELIVERIES`` deliveries
have died, the next one is refused: the task does not run, its job (an argument named ``job_id``) is marked
failed with the reason, and the message is dropped (``Reject(requeue=False)``) so the task ends in
``FAILURE`` instead of looping.

If Redis cannot be reached the delivery is admitted (and logged): the bound is lost for that delivery, the
work is not.
"""

from __future__ import annotations

import inspect
import logging

from django.conf import settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "aicmo:deliveries:"


def died_message(deaths: int) -> str:
    return f"The worker died {deaths} times running this task (out of memory?); it was not retried again."


def _key(task_id: str, retries: int) -> str:
    return f"{KEY_PREFIX}{task_id}:{retries}"


def _ttl_seconds() -> int:
    # Longer than every redelivery can take: each waits at most the broker's visibility timeout.
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    return max(86400, (settings.AICMO_TASK_MAX_DELIVERIES + 1) * int(visibility))


def delivery_admit(task_id: str, retries: int) -> int | None:
    """Count this delivery; returns None to run it, or the number of earlier deliveries that died (at
    least ``AICMO_TASK_MAX_DELIVERIES``) when it must not run."""
    from redis.exceptions import RedisError

    from .redis import get_redis

    key = _key(task_id, retries)
    try:
        pipe = get_redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, _ttl_seconds())
        delivery = pipe.execute()[0]
    except RedisError:
        logger.warning(
            "task %s: delivery not counted (Redis unavailable); running it", task_id, exc_info=True
        )
        return None
    deaths = delivery - 1
    if deaths >= settings.AICMO_TASK_MAX_DELIVERIES:
        return deaths
    return None


def delivery_done(task_id: str, retries: int) -> None:
    """The body came back (returned or raised): this delivery did not kill its worker."""
    from redis.exceptions import RedisError

    from .redis import get_redis

    try:
        get_redis().delete(_key(task_id, retries))
    except RedisError:
        logger.warning("task %s: delivery count not cleared (Redis unavailable)", task_id, exc_info=True)


def job_id_argument(run, args: tuple, kwargs: dict) -> int | None:
    """The ``job_id`` argument of a task call, if the task has one."""
    try:
        bound = inspect.signature(run).bind_partial(*args, **kwargs)
    except TypeError:
        return None
    value = bound.arguments.get("job_id")
    return value if isinstance(value, int) else None


def delivery_refuse(*, task_name: str, task_id: str, deaths: int, run, args: tuple, kwargs: dict) -> str:
    """Record a refused delivery: fail the task's job (if any) with the reason; returns the reason."""
    from .jobs import job_fail
    from .models import Job

    reason = died_message(deaths)
    logger.error("task %s[%s] refused: %s", task_name, task_id, reason)
    job_id = job_id_argument(run, args, kwargs)
    if job_id is not None and Job.objects.filter(pk=job_id).exists():
        job_fail(job_id=job_id, message=reason)
    return reason
