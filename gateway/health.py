"""Health of provider accounts: per-minute call rollups, rolling stats, state derivation, self-checks."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Max, Sum
from django.db.models.functions import Greatest
from django.utils import timezone

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


def record_call(
    *, account: ProviderAccount, kind: ErrorKind | None, latency_ms: int, at: datetime | None = None
) -> None:
    """Add one call to the account's current-minute row (an UPDATE with F(); INSERT only for a new minute)."""
    minute = (at or timezone.now()).replace(second=0, microsecond=0)
    column = outcome_column(kind)
    latency_ms = max(0, int(latency_ms))
    increments = {
        "calls": F("calls") + 1,
        column: F(column) + 1,
        "latency_ms_sum": F("latency_ms_sum") + latency_ms,
        "latency_ms_max": Greatest(F("latency_ms_max"), latency_ms),
    }
    rows = HealthMinute.objects.filter(account_id=account.pk, minute=minute)
    if rows.update(**increments):
        return
    try:
        with transaction.atomic():
            HealthMinute.objects.create(
                workspace_id=account.workspace_id,
                account_id=account.pk,
                minute=minute,
                calls=1,
                latency_ms_sum=latency_ms,
                latency_ms_max=latency_ms,
                **{column: 1},
            )
    except IntegrityError:
        rows.update(**increments)  # another process inserted this minute first


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
    """Re-derive and store the state of every account of a workspace; returns how many changed."""
    accounts = list(ProviderAccount.objects.for_workspace(workspace))
    ids = [a.pk for a in accounts]
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
