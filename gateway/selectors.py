"""Gateway reads: accounts, live health per account, recent failures (real calls, self-checks) and
operator recommendations.

Recommendations are computed on demand from the live signals (account flags, Redis breaker, per-minute
rollups, self-check history) rather than stored: they are cheap aggregates, always current, and there is
no second copy of the truth to expire or reconcile when a provider recovers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone
from redis.exceptions import RedisError

from . import breaker
from .capabilities import capability_words
from .errors import DNS_CAUSE, kind_words
from .health import (
    FAILING_CHECK_KINDS,
    FAILURES_KEPT,
    RollingStats,
    call_failures,
    derive_state,
    latest_checks,
    rolling_stats,
)
from .models import AccountState, HealthCheck, ProviderAccount

THROTTLED_SHARE_WARNING = 0.2
MIN_CALLS_FOR_RATES = 5


def accounts_for(workspace) -> QuerySet[ProviderAccount]:
    return ProviderAccount.objects.for_workspace(workspace).order_by("capability", "priority", "id")


@dataclass
class AccountHealth:
    account: ProviderAccount
    state: str
    cause: str
    breaker: breaker.BreakerStatus
    last_15m: RollingStats
    last_1h: RollingStats
    last_24h: RollingStats
    last_check: HealthCheck | None

    @property
    def state_label(self) -> str:
        return AccountState(self.state).label

    @property
    def badge(self) -> str:
        return STATE_BADGES.get(self.state, "badge-muted")


STATE_BADGES = {
    AccountState.HEALTHY: "badge-ok",
    AccountState.DEGRADED: "badge-warn",
    AccountState.COOLING: "badge-warn",
    AccountState.NEEDS_REAUTH: "badge-bad",
    AccountState.DISABLED: "badge-muted",
}


def account_health(workspace, accounts: list[ProviderAccount] | None = None) -> list[AccountHealth]:
    """Live health of every account (a handful of queries and one Redis round trip, whatever the count)."""
    accounts = list(accounts_for(workspace)) if accounts is None else accounts
    ids = [a.pk for a in accounts]
    now = timezone.now()
    try:
        statuses = breaker.statuses(ids)
    except RedisError:  # the page still shows what the database knows
        unknown = breaker.BreakerStatus("unknown", None, 0, 0, 0, "breaker store unavailable")
        statuses = dict.fromkeys(ids, unknown)
    s15 = rolling_stats(workspace, window=timedelta(minutes=15), now=now)
    s1h = rolling_stats(workspace, window=timedelta(hours=1), now=now)
    s24 = rolling_stats(workspace, window=timedelta(hours=24), now=now)
    checks = latest_checks(ids)
    rows = []
    for a in accounts:
        state, cause = derive_state(a, statuses.get(a.pk), s15.get(a.pk), checks.get(a.pk))
        rows.append(
            AccountHealth(
                account=a,
                state=state,
                cause=cause,
                breaker=statuses[a.pk],
                last_15m=s15.get(a.pk, RollingStats()),
                last_1h=s1h.get(a.pk, RollingStats()),
                last_24h=s24.get(a.pk, RollingStats()),
                last_check=checks.get(a.pk),
            )
        )
    return rows


def failures_by_account(accounts: list[ProviderAccount], *, per_account: int = FAILURES_KEPT):
    """Recent failed calls of each account, newest first; ``None`` when Redis cannot be reached."""
    try:
        return call_failures(accounts, per_account=per_account)
    except RedisError:
        return None


def recent_failures(workspace, *, limit: int = 20, accounts: list[ProviderAccount] | None = None):
    """Failed real calls across a workspace's accounts, newest first (``None``: Redis unreachable)."""
    accounts = list(accounts_for(workspace)) if accounts is None else accounts
    by_account = failures_by_account(accounts, per_account=limit)
    if by_account is None:
        return None
    merged = [f for rows in by_account.values() for f in rows]
    return sorted(merged, key=lambda f: f.at, reverse=True)[:limit]


def failed_selfchecks(workspace, *, limit: int = 20) -> QuerySet[HealthCheck]:
    """Failed self-checks, newest first."""
    return (
        HealthCheck.objects.for_workspace(workspace)
        .filter(ok=False)
        .select_related("account")
        .order_by("-at", "-id")[:limit]
    )


def health_checks_for(workspace, account: ProviderAccount | None = None) -> QuerySet[HealthCheck]:
    qs = HealthCheck.objects.for_workspace(workspace).select_related("account").order_by("-at", "-id")
    return qs.filter(account=account) if account is not None else qs


CRITICAL, WARNING, INFO = "critical", "warning", "info"
SEVERITY_ORDER = {CRITICAL: 0, WARNING: 1, INFO: 2}


@dataclass(frozen=True)
class Recommendation:
    severity: str
    code: str
    message: str
    capability: str = ""
    account_id: int | None = None
    details: dict = field(default_factory=dict)

    @property
    def badge(self) -> str:
        return {CRITICAL: "badge-bad", WARNING: "badge-warn"}.get(self.severity, "badge-muted")

    def as_dict(self) -> dict:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "capability": self.capability,
            "account_id": self.account_id,
            "details": self.details,
        }


def recommendations(workspace, health: list[AccountHealth] | None = None) -> list[Recommendation]:
    """What an operator should do next, most severe first, derived from the live signals."""
    health = account_health(workspace) if health is None else health
    out: list[Recommendation] = []
    by_capability: dict[str, list[AccountHealth]] = {}
    for row in health:
        a = row.account
        who = f"{a.name} ({a.adapter_label})"
        if a.enabled:
            by_capability.setdefault(a.capability, []).append(row)
        if row.state == AccountState.NEEDS_REAUTH:
            out.append(
                Recommendation(
                    CRITICAL,
                    "needs_reauth",
                    f"{who} rejected the API key: re-enter credentials",
                    a.capability,
                    a.pk,
                    {"cause": row.cause},
                )
            )
            continue
        if not a.enabled:
            continue
        if DNS_CAUSE in row.cause:
            out.append(
                Recommendation(
                    CRITICAL,
                    "dns_unresolved",
                    f"{who}: {DNS_CAUSE} ({a.base_url or 'no base URL'})",
                    a.capability,
                    a.pk,
                    {"cause": row.cause},
                )
            )
            continue
        if row.state == AccountState.COOLING:
            out.append(
                Recommendation(
                    WARNING,
                    "cooling",
                    f"{who} is cooling down after repeated failures "
                    f"({row.cause}): calls go to the fallback meanwhile",
                    a.capability,
                    a.pk,
                )
            )
        h1 = row.last_1h
        if h1.calls >= MIN_CALLS_FOR_RATES and h1.throttled_share >= THROTTLED_SHARE_WARNING:
            pct = round(h1.throttled_share * 100)
            out.append(
                Recommendation(
                    WARNING,
                    "throttled",
                    f"{who} is rate limited {pct} % of calls: lower the rate or add a fallback",
                    a.capability,
                    a.pk,
                    {"throttled": h1.throttled, "calls": h1.calls},
                )
            )
        m15 = row.last_15m
        if row.state == AccountState.DEGRADED and m15.calls >= MIN_CALLS_FOR_RATES:
            out.append(
                Recommendation(
                    WARNING,
                    "degraded",
                    f"{who} succeeds on only {m15.success_percent} % of "
                    "calls over the last 15 minutes: check the provider's status or lower its "
                    "priority",
                    a.capability,
                    a.pk,
                    {"calls": m15.calls},
                )
            )
        check = row.last_check
        if check is not None and not check.ok and check.error_kind in FAILING_CHECK_KINDS:
            out.append(
                Recommendation(
                    WARNING,
                    "selfcheck_failed",
                    f"{who} failed its last self-check: {kind_words(check.error_kind).lower()}",
                    a.capability,
                    a.pk,
                    {"kind": check.error_kind, "message": check.message},
                )
            )
    for capability, rows in sorted(by_capability.items()):
        label = capability_words(capability)
        real = [r for r in rows if not r.account.is_demo]
        if not real:
            out.append(
                Recommendation(
                    INFO,
                    "demo_only",
                    f"{label} runs on the demo provider (sample data only): configure a real provider",
                    capability,
                )
            )
        elif len(real) == 1:
            out.append(
                Recommendation(
                    WARNING,
                    "single_provider",
                    f"only one provider for {label.lower()}: add a fallback",
                    capability,
                    real[0].account.pk,
                )
            )
    return sorted(out, key=lambda r: (SEVERITY_ORDER[r.severity], r.capability, r.code))
