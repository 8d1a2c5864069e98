"""Per-account token bucket in Redis, shared by every worker: ``rate_limit_per_second`` tokens refill per
second up to ``rate_limit_burst``; one call takes one token. A provider's Retry-After is stored as a
"not before" key that the same script honours, so every process backs off together.
"""

from __future__ import annotations

import math
import time

from aicmo.redis import get_redis

# The bucket, as the body of a Lua function (KEYS/ARGV are its parameters), shared by `bucket_take` and
# `breaker.admit`.
TAKE_BODY = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local hold = redis.call('PTTL', KEYS[2])
if hold > 0 then return {0, tostring(hold / 1000)} end
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
if rate <= 0 then return {1, '0'} end
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or ARGV[2])
local ts = tonumber(redis.call('HGET', KEYS[1], 'ts') or tostring(now))
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local ttl = math.ceil(burst / rate * 1000) + 1000
if tokens >= 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {1, '0'}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], ttl)
return {0, tostring((1 - tokens) / rate)}
"""
_TAKE = "redis.replicate_commands()\n" + TAKE_BODY


def keys_of(account_id: int) -> list[str]:
    """[bucket, hold] keys of an account (under its hash tag, like the breaker's)."""
    base = f"aicmo:gw:{{acct:{account_id}}}:rl"
    return [base, f"{base}:hold"]


def try_acquire(account) -> float:
    """Take a token if one is free: 0.0 when taken, else the seconds to wait before one will be."""
    rate = account.rate_limit_per_second
    keys = keys_of(account.pk)
    if not rate:
        hold = get_redis().pttl(keys[1])
        return hold / 1000 if hold and hold > 0 else 0.0
    return bucket_take(keys, rate, account.rate_limit_burst)


def bucket_take(keys: list[str], rate: float, burst: int) -> float:
    """The same bucket under any caller's ``keys`` (``[bucket, hold]``; keep them in one hash slot):
    ``rate`` tokens per second up to ``burst``. 0.0 when a token was taken, else the seconds until one."""
    granted, wait = get_redis().eval(_TAKE, 2, *keys, float(rate), max(1, int(burst)))
    if granted:
        return 0.0
    return max(float(wait.decode() if isinstance(wait, bytes) else wait), 0.001)


def acquire(account, timeout: float) -> float:
    """Wait up to ``timeout`` seconds for a token: 0.0 when taken, else the wait that would be needed."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        wait = try_acquire(account)
        if wait == 0.0:
            return 0.0
        remaining = deadline - time.monotonic()
        if wait > remaining:
            return wait
        time.sleep(wait)


def hold(account_id: int, seconds: float) -> None:
    """Refuse tokens for ``seconds`` (the provider said Retry-After); never shortens an existing hold."""
    if seconds <= 0:
        return
    key = keys_of(account_id)[1]
    ms = math.ceil(seconds * 1000)
    get_redis().eval(
        "local cur = redis.call('PTTL', KEYS[1]) if cur < tonumber(ARGV[1]) then "
        "redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end return 1",
        1,
        key,
        ms,
    )


def held_for(account_id: int) -> float:
    ms = get_redis().pttl(keys_of(account_id)[1])
    return ms / 1000 if ms and ms > 0 else 0.0


def reset(account_id: int) -> None:
    get_redis().delete(*keys_of(account_id))
