"""Fixtures for the operations tests."""

from __future__ import annotations

import pytest

from aicmo.celery import app


@pytest.fixture
def redis_broker(redis_client, redis_url, settings):
    """Point Celery's broker at the test Redis (database 1), restoring the in-memory broker afterwards."""
    from tests.fixtures.services import _reset_celery_connections

    saved = app.conf.broker_url
    app.conf.broker_url = redis_url.rsplit("/", 1)[0] + "/1"
    _reset_celery_connections(app)
    from aicmo.queues import broker_redis

    broker_redis().flushdb()
    yield broker_redis()
    app.conf.broker_url = saved
    _reset_celery_connections(app)
