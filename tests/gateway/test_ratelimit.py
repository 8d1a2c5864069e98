"""The token bucket on real Redis: never exceeded by concurrent threads, Retry-After holds, waits bounded."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from gateway import ratelimit


def _account(pk, rate, burst=1):
    return SimpleNamespace(pk=pk, rate_limit_per_second=rate, rate_limit_burst=burst)


def test_burst_then_refusal_with_wait(redis_client):
    acct = _account(1, rate=2, burst=3)
    assert [ratelimit.try_acquire(acct) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = ratelimit.try_acquire(acct)
    assert 0.3 < wait <= 0.5


def test_unlimited_account_always_acquires(redis_client):
    acct = _account(2, rate=None)
    assert all(ratelimit.try_acquire(acct) == 0.0 for _ in range(50))


def _grant_time(client, account_id: int) -> float:
    """The bucket's timestamp (Redis ``TIME``), written with every grant."""
    return float(client.hget(ratelimit.keys_of(account_id)[0], "ts"))


def _redis_seconds(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


def test_acquire_waits_up_to_bound_or_returns_needed_wait(redis_client):
    acct = _account(3, rate=5, burst=1)
    assert ratelimit.acquire(acct, timeout=0) == 0.0
    first = _grant_time(redis_client, 3)
    started = time.monotonic()
    assert ratelimit.acquire(acct, timeout=1) == 0.0
    # It waited (a wall-clock lower bound holds on any machine) for a token granted 0.2 s later on the
    # bucket's own clock; Lua's tostring keeps 0.1 ms of the timestamp.
    assert time.monotonic() - started > 0.1
    assert _grant_time(redis_client, 3) - first >= 0.2 - 0.0002
    slow = _account(4, rate=0.5, burst=1)
    assert ratelimit.acquire(slow, timeout=0) == 0.0
    assert ratelimit.acquire(slow, timeout=0.1) > 1.5  # returns at once with the wait needed


def test_hold_refuses_until_it_expires_and_never_shortens(redis_client):
    acct = _account(5, rate=None)
    ratelimit.hold(5, 0.3)
    ratelimit.hold(5, 0.1)
    assert 0.2 < ratelimit.try_acquire(acct) <= 0.3
    time.sleep(0.35)
    assert ratelimit.try_acquire(acct) == 0.0


def test_rate_never_exceeded_under_concurrent_threads(redis_client):
    """8 threads race for one bucket. Grants are counted, not timed: a thread's clock after a grant is
    late by however long the machine kept it waiting, while every grant lies between two readings of the
    bucket's own clock (Redis ``TIME``) taken before the threads start and after they stop."""
    rate, burst, seconds = 20.0, 2, 1.5
    acct = _account(6, rate=rate, burst=burst)
    grants = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker():
        nonlocal grants
        while time.monotonic() < stop:
            if ratelimit.acquire(acct, timeout=0.2) == 0.0:
                with lock:
                    grants += 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    began = _redis_seconds(redis_client)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = _redis_seconds(redis_client) - began
    # Token-bucket bound: an interval of length T holds at most burst + rate * T grants.
    assert grants <= burst + rate * elapsed
    # And the threads got most of what the bucket offered while they asked (until `stop`).
    assert grants >= rate * seconds * 0.5
