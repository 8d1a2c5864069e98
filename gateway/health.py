"""Health of provider accounts: per-minute call rollups, rolling stats, state derivation, self-checks."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Max, Sum
from django.utils import timezone
from redis.exceptions import RedisError

from aicmo.redis import get_redis

from . import breaker
from .errors import ErrorKind, ProviderError, classify_exception
from .models import AccountState, HealthCheck, HealthMinute, ProviderAccount

log = logging.getLogger(__name__)

SUCCESS, FAILURE, THROTTLED = "successes", "failures", "throttled"

# A success rate under this over the last 15 minutes (with enough calls) marks an account degraded.
DEGRADED_BELOW = 0.9
DEGRADED_MIN_CALLS = 5
FAILING_CHECK_KINDS = (ErrorKind.TRANSIENT.value, ErrorKind.THROTTLED.value)


def outcome_column(kind: ErrorKind | None) -> str:
    """Which HealthMinute counter an outcome goes to: no-match and bad input mean the provider worked."""
    if kind is None or kind in (ErrorKind.NO_MATCH, ErrorKind.BAD_INPUT):
        return SUCCESS
    if kind == ErrorKind.THROTTLED:
        return THROTTLED
    return FAILURE


# Per-minute counters are buffered in Redis (one script call per provider call, no database write on the
# hot path) and written to HealthMinute by ``health_flush`` (beat, every minute). The flush writes each
# minute's absolute totals, so running it twice, or from two workers at once, gives the same rows.
MINUTE_TTL_SECONDS = 2 * 3600  # a minute survives ~120 missed flushes before it is lost
FAILURES_KEPT = 50  # recent failures kept per account (a capped list: LPUSH + LTRIM)
FAILURES_TTL_SECONDS = 7 * 86400
FAILURE_MESSAGE_CHARS = 300
_COUNTERS = ("calls", SUCCESS, FAILURE, THROTTLED, "latency_ms_sum", "latency_ms_max")

_RECORD = """
local h = KEYS[1]
local latency = tonumber(ARGV[2])
redis.call('HINCRBY', h, 'calls', 1)
redis.call('HINCRBY', h, ARGV[1], 1)
redis.call('HINCRBY', h, 'latency_ms_sum', latency)
if latency > tonumber(redis.call('HGET', h, 'latency_ms_max') or '-1') then
  redis.call('HSET', h, 'latency_ms_max', latency)
end
redis.call('EXPIRE', h, ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if ARGV[5] ~= '' then
  redis.call('LPUSH', KEYS[3], ARGV[5])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[6]) - 1)
  redis.call('EXPIRE', KEYS[3], ARGV[7])
end
return 1
"""

# Take the pending minutes of one account: unmark first, then read, so a call recorded meanwhile marks its
# minute again and the next flush writes the newer totals.
_TAKE = """
local out = {}
for i = 2, #KEYS do
  redis.call('SREM', KEYS[1], ARGV[i - 1])
  out[#out + 1] = ARGV[i - 1]
  out[#out + 1] = redis.call('HGETALL', KEYS[i])
end
return out
"""

_SECRET_PARAM = re.compile(
    r"(?i)\b(api[_-]?key|access[_-]?token|token|key|secret|password|signature)=[^&\s\"']+"
)


def _minute_keys(account_id: int) -> tuple[str, str, str]:
    base = f"aicmo:gw:{{acct:{account_id}}}"
    return f"{base}:hm:", f"{base}:hm", f"{base}:fail"


def _scrub(message: str, account: ProviderAccount) -> str:
    """No secrets in the failure log: the account's credential values and key-like URL parameters go."""
    try:
        secrets = [str(v) for v in account.get_credentials().values() if v and len(str(v)) >= 4]
    except Exception:  # undecryptable credentials must not stop the recording
        secrets = []
    for secret in sorted(secrets, key=len, reverse=True):
        message = message.replace(secret, "••••")
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=••••", message)[:FAILURE_MESSAGE_CHARS]


def failure_entry(
    *, account: ProviderAccount, error: ProviderError, at: datetime, capability: str, method: str
) -> str:
    return json.dumps(
        {
            "at": at.isoformat(),
            "capability": capability or account.capability,
            "method": method,
            "kind": error.kind.value,
            "status": error.status,
            "message": _scrub(error.message, account),
        }
    )


def record_call_command(
    *,
    account: ProviderAccount,
    kind: ErrorKind | None,
    latency_ms: int,
    at: datetime | None = None,
    error: ProviderError | None = None,
    capability: str = "",
    method: str = "",
) -> tuple:
    """The ``EVAL`` arguments of `record_call`, for a caller that pipelines it with other commands (the
    chain sends it with the breaker outcome in one round trip)."""
    at = at or timezone.now()
    minute = int(at.replace(second=0, microsecond=0).timestamp())
    prefix, pending, failures = _minute_keys(account.pk)
    entry = ""
    if error is not None and error.kind != ErrorKind.NO_MATCH:
        entry = failure_entry(account=account, error=error, at=at, capability=capability, method=method)
    return (
        _RECORD,
        3,
        f"{prefix}{minute}",
        pending,
        failures,
        outcome_column(kind),
        max(0, int(latency_ms)),
        MINUTE_TTL_SECONDS,
        minute,
        entry,
        FAILURES_KEPT,
        FAILURES_TTL_SECONDS,
    )


def record_call(**kwargs) -> None:
    """Count one call in the account's current minute and, when it failed, push it to the recent-failures
    list: one Redis script call, no database write (``health_flush`` moves the minutes to HealthMinute).
    Keywords: those of `record_call_command` (account, kind, latency_ms, at, error, capability, method).

    Losing a sample when Redis is down beats failing (or repeating) a call the provider already answered.
    """
    try:
        get_redis().eval(*record_call_command(**kwargs))
    except RedisError:
        log.warning("health of account %s not recorded: Redis unavailable", kwargs["account"].pk)


def health_flush(*, account_ids: list[int] | None = None) -> int:
    """Write the buffered per-minute counters to HealthMinute (absolute totals: idempotent). Returns rows."""
    qs = ProviderAccount.objects.all()
    if account_ids is not None:
        qs = qs.filter(pk__in=account_ids)
    workspaces = dict(qs.values_list("pk", "workspace_id"))
    if not workspaces:
        return 0
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    for account_id in workspaces:
        pipe.smembers(_minute_keys(account_id)[1])
    pending = dict(zip(workspaces, pipe.execute(), strict=True))
    pipe = client.pipeline(transaction=False)
    taken: list[tuple[int, list[bytes]]] = []
    for account_id, minutes in pending.items():
        if minutes:
            prefix, key, _ = _minute_keys(account_id)
            ms = sorted(minutes)
            pipe.eval(_TAKE, 1 + len(ms), key, *[prefix + m.decode() for m in ms], *ms)
            taken.append((account_id, ms))
    if not taken:
        return 0
    rows = []
    for (account_id, _), flat in zip(taken, pipe.execute(), strict=True):
        for minute, fields in zip(flat[::2], flat[1::2], strict=True):
            values = {k.decode(): int(v) for k, v in zip(fields[::2], fields[1::2], strict=True)}
            if not values.get("calls"):
                continue  # expired before this flush
            rows.append(
                HealthMinute(
                    workspace_id=workspaces[account_id],
                    account_id=account_id,
                    minute=datetime.fromtimestamp(int(minute), tz=UTC),
                    **{c: values.get(c, 0) for c in _COUNTERS},
                )
            )
    try:
        HealthMinute.objects.bulk_create(
            rows,
            batch_size=500,
            update_conflicts=True,
            unique_fields=["account", "minute"],
            update_fields=list(_COUNTERS),
        )
    except Exception:
        pipe = client.pipeline(transaction=False)  # mark them again: the next flush retries
        for account_id, ms in taken:
            pipe.sadd(_minute_keys(account_id)[1], *ms)
        pipe.execute()
        raise
    return len(rows)


@dataclass(frozen=True)
class CallFailure:
    """One failed provider call, as kept in the account's capped Redis list."""

    account: ProviderAccount
    at: datetime
    capability: str
    method: str
    kind: str
    status: int | None
    message: str

    def as_dict(self) -> dict:
        return {
            "account": self.account.pk,
            "at": self.at.isoformat(),
            "capability": self.capability,
            "method": self.method,
            "kind": self.kind,
            "status": self.status,
            "message": self.message,
        }


def call_failures(
    accounts: list[ProviderAccount], *, per_account: int = FAILURES_KEPT
) -> dict[int, list[CallFailure]]:
    """Newest-first recent failures of each account (one Redis round trip)."""
    if not accounts:
        return {}
    pipe = get_redis().pipeline(transaction=False)
    for account in accounts:
        pipe.lrange(_minute_keys(account.pk)[2], 0, per_account - 1)
    out: dict[int, list[CallFailure]] = {}
    for account, items in zip(accounts, pipe.execute(), strict=True):
        rows = out.setdefault(account.pk, [])
        for raw in items:
            try:
                d = json.loads(raw)
                rows.append(
                    CallFailure(
                        account=account,
                        at=datetime.fromisoformat(d["at"]),
                        capability=str(d.get("capability", "")),
                        method=str(d.get("method", "")),
                        kind=str(d.get("kind", "")),
                        status=d.get("status"),
                        message=str(d.get("message", "")),
                    )
                )
            except (ValueError, KeyError, TypeError):
                log.warning("unreadable failure entry for account %s skipped", account.pk)
    return out


@dataclass(frozen=True)
class RollingStats:
    calls: int = 0
    successes: int = 0
    failures: int = 0
    throttled: int = 0
    latency_ms_sum: int = 0
    latency_ms_max: int = 0

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.calls if self.calls else None

    @property
    def success_percent(self) -> int | None:
        rate = self.success_rate
        return None if rate is None else round(rate * 100)

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.calls if self.calls else 0.0

    @property
    def latency_ms_avg(self) -> int | None:
        return round(self.latency_ms_sum / self.calls) if self.calls else None

    def as_dict(self) -> dict:
        return {
            "calls": self.calls,
            "successes": self.successes,
            "failures": self.failures,
            "throttled": self.throttled,
            "success_rate": None if self.success_rate is None else round(self.success_rate, 4),
            "latency_ms_avg": self.latency_ms_avg,
            "latency_ms_max": self.latency_ms_max,
        }


def rolling_stats(workspace, *, window: timedelta, now: datetime | None = None) -> dict[int, RollingStats]:
    """Per-account totals over the last ``window`` (one aggregate query for the whole workspace)."""
    since = (now or timezone.now()) - window
    rows = (
        HealthMinute.objects.for_workspace(workspace)
        .filter(minute__gte=since.replace(second=0, microsecond=0))
        .values("account_id")
        .annotate(
            c=Sum("calls"),
            s=Sum("successes"),
            f=Sum("failures"),
            t=Sum("throttled"),
            ls=Sum("latency_ms_sum"),
            lm=Max("latency_ms_max"),
        )
        .order_by()
    )
    return {
        r["account_id"]: RollingStats(
            r["c"] or 0, r["s"] or 0, r["f"] or 0, r["t"] or 0, r["ls"] or 0, r["lm"] or 0
        )
        for r in rows
    }


def derive_state(
    account: ProviderAccount,
    breaker_status: breaker.BreakerStatus | None,
    stats: RollingStats | None,
    last_check: HealthCheck | None = None,
) -> tuple[str, str]:
    """The account's state right now and why, from the DB flags, the shared breaker and recent calls."""
    if not account.enabled:
        return AccountState.DISABLED, "disabled by an operator"
    if account.state == AccountState.NEEDS_REAUTH:
        return AccountState.NEEDS_REAUTH, account.state_cause or "credentials rejected by the provider"
    if breaker_status is not None and breaker_status.state in (breaker.OPEN, breaker.HALF_OPEN):
        why = f"circuit {breaker_status.state.replace('_', '-')}"
        return AccountState.COOLING, f"{why}: {breaker_status.cause}" if breaker_status.cause else why
    if stats is not None and stats.calls >= DEGRADED_MIN_CALLS and (stats.success_rate or 0) < DEGRADED_BELOW:
        return AccountState.DEGRADED, f"success rate {stats.success_percent} % over the last 15 minutes"
    if last_check is not None and not last_check.ok and last_check.error_kind in FAILING_CHECK_KINDS:
        return AccountState.DEGRADED, f"self-check failed: {last_check.message}"
    return AccountState.HEALTHY, ""


def latest_checks(account_ids: list[int]) -> dict[int, HealthCheck]:
    """The most recent self-check per account (one query)."""
    if not account_ids:
        return {}
    latest = (
        HealthCheck.objects.filter(account_id__in=account_ids)
        .values("account_id")
        .annotate(last=Max("id"))
        .values_list("last", flat=True)
        .order_by()
    )
    return {c.account_id: c for c in HealthCheck.objects.filter(id__in=list(latest))}


def account_set_state(*, account: ProviderAccount, state: str, cause: str = "") -> bool:
    """Persist a state change (no write when nothing changed). Returns whether it changed."""
    cause = cause[:500]
    if account.state == state and account.state_cause == cause:
        return False
    now = timezone.now()
    ProviderAccount.objects.filter(pk=account.pk).update(state=state, state_cause=cause, state_changed_at=now)
    account.state, account.state_cause, account.state_changed_at = state, cause, now
    return True


def refresh_states(workspace) -> int:
    """Re-derive and store the state of every account of a workspace (after flushing its buffered call
    counters, so the rates are current); returns how many changed."""
    accounts = list(ProviderAccount.objects.for_workspace(workspace))
    ids = [a.pk for a in accounts]
    health_flush(account_ids=ids)
    statuses = breaker.statuses(ids)
    stats = rolling_stats(workspace, window=timedelta(minutes=15))
    checks = latest_checks(ids)
    changed = 0
    for account in accounts:
        state, cause = derive_state(
            account, statuses.get(account.pk), stats.get(account.pk), checks.get(account.pk)
        )
        changed += account_set_state(account=account, state=state, cause=cause)
    return changed


def build_adapter(account: ProviderAccount):
    cls = account.adapter_class
    if cls is None:
        raise ProviderError(
            ErrorKind.BAD_INPUT, f"Unknown adapter {account.adapter!r}", provider=account.adapter
        )
    return cls(
        base_url=account.base_url or None,
        credentials=account.get_credentials(),
        timeout=account.timeout_seconds,
        options=account.options,
        ca_pem=account.ca_pem,
    )


def selfcheck_account(*, account: ProviderAccount) -> HealthCheck:
    """Call the adapter's cheapest health endpoint, store the result, and update the account's state."""
    started = time.perf_counter()
    error: ProviderError | None = None
    try:
        adapter = build_adapter(account)
        try:
            adapter.health_check()
        finally:
            adapter.close()
    except ProviderError as exc:
        error = exc
    except NotImplementedError as exc:
        error = ProviderError(ErrorKind.BAD_INPUT, f"no health check: {exc}", provider=account.adapter)
    except Exception as exc:  # an adapter bug must not stop the other checks
        log.exception("self-check of account %s crashed", account.pk)
        error = classify_exception(exc, provider=account.adapter)
    latency_ms = round((time.perf_counter() - started) * 1000)
    check = HealthCheck.objects.create(
        workspace_id=account.workspace_id,
        account=account,
        at=timezone.now(),
        ok=error is None,
        latency_ms=latency_ms,
        error_kind=error.kind.value if error else "",
        message=str(error)[:500] if error else "",
    )
    if error is not None and error.kind == ErrorKind.REAUTH and account.enabled:
        account_set_state(account=account, state=AccountState.NEEDS_REAUTH, cause=f"self-check: {error}")
    else:
        stats = rolling_stats(account.workspace_id, window=timedelta(minutes=15)).get(account.pk)
        state, cause = derive_state(account, breaker.status(account.pk), stats, check)
        account_set_state(account=account, state=state, cause=cause)
    return check


def selfcheck_workspace(*, workspace, include_disabled: bool = False) -> list[HealthCheck]:
    accounts = ProviderAccount.objects.for_workspace(workspace).order_by("capability", "priority", "id")
    if not include_disabled:
        accounts = accounts.filter(enabled=True)
    return [selfcheck_account(account=a) for a in accounts]


def health_prune(*, keep_days: int = 30) -> int:
    """Drop rollups and self-check history older than ``keep_days`` (the dashboards look back 24 h)."""
    cutoff = timezone.now() - timedelta(days=keep_days)
    minutes, _ = HealthMinute.objects.filter(minute__lt=cutoff).delete()
    checks, _ = HealthCheck.objects.filter(at__lt=cutoff).delete()
    return minutes + checks
