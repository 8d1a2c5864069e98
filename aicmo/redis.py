"""The shared Redis client: ``get_redis()`` returns a ``redis.Redis`` for ``settings.REDIS_URL``.

Clients are created on first use (never at import time) and cached per URL, so changing
``settings.REDIS_URL`` (tests do, via the pytest-django ``settings`` fixture) yields a client for the
new server while every caller of the same URL shares one connection pool.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def get_redis(url: str | None = None) -> redis.Redis:
    """A client for ``url`` (default ``settings.REDIS_URL``); built lazily, cached per URL."""
    url = url or settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                client = redis.Redis.from_url(url, health_check_interval=30, socket_connect_timeout=5)
                _clients[url] = client
    return client


def reset_clients() -> None:
    """Close and forget every cached client (used when a server goes away, e.g. at test teardown)."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()
