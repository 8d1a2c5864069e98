"""What is waiting in the Celery queues, read straight from the Redis broker (metrics and the ops page).

Queue names and routes live in settings (``AICMO_QUEUES``, ``CELERY_TASK_ROUTES``). With the Redis
transport (kombu) a queue is a Redis list named after it: producers ``LPUSH`` and workers ``BRPOP``, so
the oldest waiting message is the list's last element. Every message carries the publish time in its
``aicmo_enqueued_at`` header (set by :func:`stamp_enqueued_at`, connected in ``aicmo.celery``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from django.conf import settings

log = logging.getLogger(__name__)

ENQUEUED_AT_HEADER = "aicmo_enqueued_at"


class BrokerNotRedis(RuntimeError):
    """Queue statistics need the Redis transport (the only broker AICMO supports in production)."""


@dataclass(frozen=True)
class QueueStats:
    name: str
    depth: int  # messages waiting (not yet taken by a worker)
    oldest_age_seconds: float | None  # age of the oldest waiting message; None when empty or unstamped


def stamp_enqueued_at(headers=None, **_kwargs) -> None:
    """``before_task_publish`` receiver: record when the message was published (epoch seconds)."""
    if headers is not None:
        headers.setdefault(ENQUEUED_AT_HEADER, time.time())


def broker_redis():
    """A redis client on the Celery broker (``CELERY_BROKER_URL``); BrokerNotRedis for other transports."""
    from aicmo.celery import app
    from aicmo.redis import get_redis

    url = app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise BrokerNotRedis(f"queue statistics need a Redis broker, not {url.split(':', 1)[0]!r}")
    return get_redis(url)


def _enqueued_at(raw: bytes | None) -> float | None:
    if not raw:
        return None
    try:
        value = json.loads(raw).get("headers", {}).get(ENQUEUED_AT_HEADER)
        return float(value) if value is not None else None
    except (ValueError, TypeError, AttributeError):
        return None


def queue_stats(now: float | None = None) -> list[QueueStats]:
    """Depth and oldest-message age of every declared queue, in one Redis round trip."""
    client = broker_redis()
    names = list(settings.AICMO_QUEUES)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.llen(name)
        pipe.lindex(name, -1)
    replies = pipe.execute()
    now = time.time() if now is None else now
    out = []
    for i, name in enumerate(names):
        enqueued = _enqueued_at(replies[2 * i + 1])
        age = max(0.0, now - enqueued) if enqueued is not None else None
        out.append(QueueStats(name=name, depth=int(replies[2 * i]), oldest_age_seconds=age))
    return out
