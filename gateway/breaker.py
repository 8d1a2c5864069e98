"""Circuit breaker per provider account, with its state in Redis so every web and worker process agrees.

Closed: outcomes go into a sliding window (two sorted sets: calls and failures, scored by Redis time);
the breaker opens when the failure rate over the window reaches ``failure_rate`` with at least
``min_calls`` calls, or after ``consecutive_failures`` failures in a row. Open: calls are refused until
``cooldown_seconds`` have passed. Half-open: at most ``half_open_probes`` calls at once (a counter with a
TTL, so a crashed probe cannot wedge the breaker); a probe success closes it, a probe failure re-opens it.
Every transition happens inside one Lua script, so concurrent processes never see a torn state; time is
Redis server time, so clocks of different machines do not matter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from aicmo.redis import get_redis

from . import ratelimit

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class BreakerConfig:
    window_seconds: float = 60.0
    min_calls: int = 10
    failure_rate: float = 0.5
    consecutive_failures: int = 5
    cooldown_seconds: float = 30.0
    half_open_probes: int = 1
    probe_ttl_seconds: float = 60.0


def breaker_config() -> BreakerConfig:
    """Defaults overridable with ``settings.GATEWAY_BREAKER = {"cooldown_seconds": 5, ...}``."""
    return BreakerConfig(**getattr(settings, "GATEWAY_BREAKER", {}))


@dataclass(frozen=True)
class Gate:
    allowed: bool
    state: str
    retry_at: float | None = None  # epoch seconds when a refused call may be admitted
    probe: bool = False  # the admitted call is a half-open probe; its outcome decides


@dataclass(frozen=True)
class Transition:
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class BreakerStatus:
    state: str
    open_until: float | None
    consecutive_failures: int
    window_calls: int
    window_failures: int
    cause: str


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# The gate, as the body of a Lua function (KEYS/ARGV are its parameters), shared by `allow` and `admit`.
_ALLOW_BODY = (
    _NOW
    + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {1, 'closed', '0', 0} end
if state == 'open' then
  local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
  if now < open_until then return {0, 'open', tostring(open_until), 0} end
  redis.call('HSET', KEYS[1], 'state', 'half_open')
  redis.call('DEL', KEYS[2])
end
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[2])
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl < 0 then ttl = 0 end
  return {0, 'half_open', tostring(now + math.min(ttl / 1000, tonumber(ARGV[3]))), 0}
end
return {1, 'half_open', '0', 1}
"""
)
_ALLOW = "redis.replicate_commands()\n" + _ALLOW_BODY

_RECORD = (
    "redis.replicate_commands()\n"
    + _NOW
    + """
local ok = ARGV[1] == 'ok'
local probe = ARGV[2] == '1'
local window, min_calls = tonumber(ARGV[3]), tonumber(ARGV[4])
local rate, consecutive, cooldown = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if probe and tonumber(redis.call('GET', KEYS[4]) or '0') > 0 then redis.call('DECR', KEYS[4]) end
local function open(from)
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', tostring(now + cooldown),
             'opened_at', tostring(now), 'cause', ARGV[8], 'consec', '0')
  redis.call('DEL', KEYS[2], KEYS[3])
  return {'open', from}
end
if state == 'half_open' then
  if not probe then return {state, state} end
  if ok then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'consec', '0', 'cause', '')
    redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
    return {'closed', 'half_open'}
  end
  redis.call('DEL', KEYS[4])
  return open('half_open')
end
if state ~= 'closed' then return {state, state} end
local member = tostring(redis.call('INCR', KEYS[5]))
redis.call('ZADD', KEYS[2], now, member)
local consec = 0
if ok then
  redis.call('HSET', KEYS[1], 'consec', '0')
else
  redis.call('ZADD', KEYS[3], now, member)
  consec = redis.call('HINCRBY', KEYS[1], 'consec', 1)
  redis.call('HSET', KEYS[1], 'cause', ARGV[8])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
local ttl = math.floor(window * 1000) + 1000
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
local total = redis.call('ZCARD', KEYS[2])
local failed = redis.call('ZCARD', KEYS[3])
if (total >= min_calls and failed / total >= rate) or consec >= consecutive then
  return open('closed')
end
return {'closed', 'closed'}
"""
)


def _keys(account_id: int) -> list[str]:
    base = f"aicmo:gw:{{acct:{account_id}}}:br"
    return [base, f"{base}:calls", f"{base}:fails", f"{base}:probes", f"{base}:seq"]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def allow(account_id: int, config: BreakerConfig | None = None) -> Gate:
    """May a call go to this account now? Admits half-open probes up to the configured limit."""
    cfg = config or breaker_config()
    keys = _keys(account_id)
    allowed, state, retry_at, probe = get_redis().eval(
        _ALLOW,
        2,
        keys[0],
        keys[3],
        cfg.half_open_probes,
        int(cfg.probe_ttl_seconds * 1000),
        cfg.cooldown_seconds,
    )
    retry = float(_text(retry_at))
    return Gate(allowed=bool(allowed), state=_text(state), retry_at=retry or None, probe=bool(probe))


def record_command(
    account_id: int, *, ok: bool, probe: bool = False, cause: str = "", config: BreakerConfig | None = None
) -> tuple:
    """The ``EVAL`` arguments of `record`, for a caller that pipelines it with other commands; its reply
    goes to `transition_of`."""
    cfg = config or breaker_config()
    return (
        _RECORD,
        5,
        *_keys(account_id),
        "ok" if ok else "fail",
        "1" if probe else "0",
        cfg.window_seconds,
        cfg.min_calls,
        cfg.failure_rate,
        cfg.consecutive_failures,
        cfg.cooldown_seconds,
        cause[:300],
    )


def transition_of(reply) -> Transition:
    after, before = reply
    return Transition(before=_text(before), after=_text(after))


def record(
    account_id: int, *, ok: bool, probe: bool = False, cause: str = "", config: BreakerConfig | None = None
) -> Transition:
    """Record the outcome of an admitted call. ``ok`` is True for anything but a provider failure."""
    return transition_of(
        get_redis().eval(*record_command(account_id, ok=ok, probe=probe, cause=cause, config=config))
    )


# `allow` and, when it admits, the account's rate-limit token (`ratelimit.TAKE_BODY`) in one script: one
# round trip instead of two, and a probe slot admitted but refused a token is given back inside it.
_ADMIT = (
    "redis.replicate_commands()\n"
    + "local function gate(KEYS, ARGV)\n"
    + _ALLOW_BODY
    + "\nend\nlocal function take(KEYS, ARGV)\n"
    + ratelimit.TAKE_BODY
    + """
end
local g = gate({KEYS[1], KEYS[2]}, {ARGV[1], ARGV[2], ARGV[3]})
if g[1] == 0 then return {g[1], g[2], g[3], g[4], 0, '0'} end
local r = take({KEYS[3], KEYS[4]}, {ARGV[4], ARGV[5]})
if r[1] == 0 and g[4] == 1 and tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
  redis.call('DECR', KEYS[2])
end
return {g[1], g[2], g[3], g[4], r[1], r[2]}
"""
)


def admit_command(account, config: BreakerConfig | None = None) -> tuple:
    """The ``EVAL`` arguments of `admit`, for a caller that pipelines it after other commands; its reply
    goes to `admitted`."""
    cfg = config or breaker_config()
    keys = _keys(account.pk)
    return (
        _ADMIT,
        4,
        keys[0],
        keys[3],
        *ratelimit.keys_of(account.pk),
        cfg.half_open_probes,
        int(cfg.probe_ttl_seconds * 1000),
        cfg.cooldown_seconds,
        float(account.rate_limit_per_second or 0),
        max(1, int(account.rate_limit_burst or 1)),
    )


def admitted(reply) -> tuple[Gate, float]:
    allowed, state, retry_at, probe, granted, wait = reply
    retry = float(_text(retry_at))
    gate = Gate(allowed=bool(allowed), state=_text(state), retry_at=retry or None, probe=bool(probe))
    if not gate.allowed or granted:
        return gate, 0.0
    return Gate(allowed=True, state=gate.state, retry_at=None, probe=False), max(float(_text(wait)), 0.001)


def admit(account, config: BreakerConfig | None = None) -> tuple[Gate, float]:
    """`allow` then `ratelimit.try_acquire` for ``account`` in one Redis round trip (both keep their
    keys under the account's hash tag). Returns (gate, wait): a refused gate takes no token (wait 0.0);
    an admitted one with ``wait > 0`` got no token and no probe slot (it was released), exactly as the
    chain did with the two calls one after the other."""
    return admitted(get_redis().eval(*admit_command(account, config)))


def release_probe(account_id: int) -> None:
    """Give back a half-open probe slot that was admitted but not used (e.g. the rate limit said wait)."""
    key = _keys(account_id)[3]
    get_redis().eval(
        "if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then return redis.call('DECR', KEYS[1]) end return 0",
        1,
        key,
    )


def reset(account_id: int) -> None:
    """Forget everything (credentials changed, operator reset): the account starts closed."""
    get_redis().delete(*_keys(account_id))


def statuses(account_ids: list[int]) -> dict[int, BreakerStatus]:
    """Breaker state of many accounts in one round trip (dashboards, API, CLI)."""
    if not account_ids:
        return {}
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    for account_id in account_ids:
        keys = _keys(account_id)
        pipe.hgetall(keys[0])
        pipe.zcard(keys[1])
        pipe.zcard(keys[2])
    replies = pipe.execute()
    now = time.time()
    out: dict[int, BreakerStatus] = {}
    for i, account_id in enumerate(account_ids):
        raw = {_text(k): _text(v) for k, v in (replies[3 * i] or {}).items()}
        state = raw.get("state", CLOSED)
        open_until = float(raw["open_until"]) if state == OPEN and raw.get("open_until") else None
        if state == OPEN and open_until is not None and open_until <= now:
            state = HALF_OPEN  # cool-down over: the next call will be a probe
        out[account_id] = BreakerStatus(
            state=state,
            open_until=open_until,
            consecutive_failures=int(raw.get("consec", 0) or 0),
            window_calls=int(replies[3 * i + 1]),
            window_failures=int(replies[3 * i + 2]),
            cause=raw.get("cause", ""),
        )
    return out


def status(account_id: int) -> BreakerStatus:
    return statuses([account_id])[account_id]
