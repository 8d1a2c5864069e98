"""The chain: one capability call tried across a workspace's provider accounts, ordered by health then
priority, with retries (exponential backoff + full jitter, Retry-After honoured) inside a retry budget,
the shared circuit breaker and rate limit per account, and health recorded for every attempt.

It never fakes success: when no account can answer within the budget the caller gets
``ProvidersUnavailable(retry_at=...)`` (its task retries later), and bad input is raised at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

from aicmo.redis import get_redis

from . import breaker, ratelimit
from .errors import ErrorKind, ProviderError, ProvidersUnavailable, classify_exception
from .health import build_adapter, record_call_command
from .models import STATE_RANK, AccountState, ProviderAccount

log = logging.getLogger(__name__)

REDIS_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class RetryBudget:
    max_attempts: int = 6  # provider calls in total, across all accounts
    max_seconds: float = 20.0  # wall-clock bound for the whole call, waits included
    base_delay: float = 0.2  # first backoff ceiling; doubles per round
    max_delay: float = 5.0  # backoff ceiling
    max_wait_seconds: float = 5.0  # longest single wait for a cooling / rate-limited account


def retry_budget(**overrides) -> RetryBudget:
    """Defaults overridable with ``settings.GATEWAY_RETRY = {"max_attempts": 3, ...}`` and per call."""
    return RetryBudget(**(getattr(settings, "GATEWAY_RETRY", {}) | overrides))


def backoff_delay(round_no: int, budget: RetryBudget) -> float:
    """Full jitter: uniform in [0, min(max_delay, base_delay * 2**round_no)]."""
    return random.uniform(0, min(budget.max_delay, budget.base_delay * (2**round_no)))  # noqa: S311


def _serves(account: ProviderAccount, adapter_keys: frozenset[str] | None) -> bool:
    return adapter_keys is None or account.adapter in adapter_keys or account.is_demo


def candidate_accounts(workspace, capability: str, *, adapter_keys=None) -> tuple[list[ProviderAccount], str]:
    """Enabled accounts that may serve ``capability``; demo ones only when no real one is configured.

    Returns (accounts, why-empty). Accounts needing re-authentication stay configured (they still keep
    demo data out) but are not tried.
    """
    keys = frozenset(adapter_keys) if adapter_keys is not None else None
    enabled = [
        a
        for a in ProviderAccount.objects.for_workspace(workspace).filter(capability=capability, enabled=True)
        if a.adapter_class is not None and _serves(a, keys)
    ]
    real = [a for a in enabled if not a.is_demo]
    pool = real or enabled
    usable = [a for a in pool if a.state != AccountState.NEEDS_REAUTH]
    if not pool:
        return [], f"no provider account is configured for {capability}"
    if not usable:
        return [], "every provider account needs re-authentication: " + ", ".join(a.name for a in pool)
    return usable, ""


def order_accounts(accounts: list[ProviderAccount]) -> list[ProviderAccount]:
    """Healthy before degraded before cooling (live breaker state from Redis), then priority.

    An account whose cool-down is over sorts as if healthy: its half-open probe must get real traffic.
    """
    statuses = breaker.statuses([a.pk for a in accounts])

    def rank(account: ProviderAccount) -> tuple[int, int, int]:
        st = statuses.get(account.pk)
        if st is not None and st.state == breaker.OPEN:
            state_rank = STATE_RANK[AccountState.COOLING]
        else:
            # Closed, or half-open (cool-down over): in its normal place, so the probe really happens and a
            # recovered primary gets its traffic back. A stored "cooling" with a closed breaker is stale.
            degraded = account.state == AccountState.DEGRADED
            state_rank = STATE_RANK[AccountState.DEGRADED if degraded else AccountState.HEALTHY]
        return state_rank, account.priority, account.pk

    return sorted(accounts, key=rank)


class AdapterPool(threading.local):
    """Adapters kept per thread and per account version, so HTTP keep-alive connections (and TLS contexts)
    are reused across calls instead of rebuilt every time. Per thread because not every client (smtplib,
    imaplib) may be shared between threads; keyed by ``updated_at`` and the credential token, so any change
    to the account yields a fresh adapter."""

    max_size = 32

    def __init__(self) -> None:
        self.items: OrderedDict[tuple, Any] = OrderedDict()

    def get(self, account: ProviderAccount):
        key = (account.pk, account.updated_at, account.credentials_encrypted)
        adapter = self.items.get(key)
        if adapter is not None:
            self.items.move_to_end(key)
            return adapter
        for old_key in [k for k in self.items if k[0] == account.pk]:
            self.items.pop(old_key).close()
        adapter = build_adapter(account)
        self.items[key] = adapter
        while len(self.items) > self.max_size:
            self.items.popitem(last=False)[1].close()
        return adapter

    def discard(self, account: ProviderAccount) -> None:
        """Close and forget the account's adapter (after a transport failure its connection may be dead)."""
        for old_key in [k for k in self.items if k[0] == account.pk]:
            self.items.pop(old_key).close()

    def clear(self) -> None:
        while self.items:
            self.items.popitem()[1].close()


adapter_pool = AdapterPool()


def _epoch(monotonic_at: float) -> datetime:
    return datetime.fromtimestamp(time.time() + (monotonic_at - time.monotonic()), tz=UTC)


class OutcomeBuffer:
    """Outcomes of a run of calls that may wait for the run's next Redis round trip: the health sample
    and breaker record of a successful call that was not a half-open probe. They are sent just before the
    next call's gate, in the same pipeline and in order, so that gate answers as if they had been recorded
    at once — one round trip per call instead of two. A success rarely changes the breaker (it can bring
    the window to ``min_calls`` with the failure rate at the threshold): the deferred record's answer is
    still read and a transition noted on the account (`_run`). Failures and probe outcomes are recorded at
    once, after whatever waits here. Owned by the caller of the run (`gateway.services.EmailBatch`),
    which calls `flush` when it ends; a process that dies first loses those samples, as with Redis down."""

    def __init__(self) -> None:
        self.pending: list[tuple[ProviderAccount, list[tuple]]] = []

    def take(self) -> list[tuple[ProviderAccount, list[tuple]]]:
        pending, self.pending = self.pending, []
        return pending

    def flush(self) -> None:
        pending = self.take()
        if not pending:
            return
        try:
            _run(pending, [])
        except RedisError:
            log.warning("%s buffered outcome(s) not recorded: Redis unavailable", len(pending))


def _note_transition(account: ProviderAccount, reply, cause: str = "") -> breaker.Transition:
    from . import services

    transition = breaker.transition_of(reply)
    if transition.changed:
        services.account_note_breaker(account=account, transition=transition, cause=cause)
    return transition


def _run(pending: list[tuple[ProviderAccount, list[tuple]]], commands: list[tuple]) -> list:
    """Buffered outcomes (`OutcomeBuffer.take`), then ``commands`` (``EVAL`` arguments), in one round trip;
    a transition a buffered breaker record caused is noted on its account. The replies of ``commands``."""
    if not pending and len(commands) == 1:
        return [get_redis().eval(*commands[0])]
    pipe = get_redis().pipeline(transaction=False)
    for command in (*(c for _account, cs in pending for c in cs), *commands):
        pipe.eval(*command)
    replies = pipe.execute()
    at = 0
    for account, buffered in pending:
        at += len(buffered)
        if len(buffered) == 2:  # health, breaker record
            _note_transition(account, replies[at - 1])
    return replies[at:]


class _Chain:
    def __init__(
        self,
        *,
        workspace,
        capability: str,
        method: str,
        budget: RetryBudget,
        use_breaker: bool,
        outcomes: OutcomeBuffer | None = None,
    ):
        self.workspace = workspace
        self.capability = capability
        self.method = method
        self.budget = budget
        self.use_breaker = use_breaker
        self.config = breaker.breaker_config()
        self.errors: dict[str, ProviderError] = {}
        self.attempts = 0
        self.outcomes = outcomes

    def unavailable(self, retry_at: float | None, why: str = "") -> ProvidersUnavailable:
        errors = dict(self.errors)
        if why and not errors:
            errors["gateway"] = ProviderError(ErrorKind.TRANSIENT, why, provider="gateway")
        return ProvidersUnavailable(
            self.capability, _epoch(retry_at) if retry_at is not None else None, errors
        )

    def attempt(self, account: ProviderAccount, probe: bool, args, kwargs) -> tuple[bool, Any]:
        """One provider call. Returns (True, result) or (False, ProviderError); records health + breaker."""
        from . import services

        self.attempts += 1
        started = time.perf_counter()
        error: ProviderError | None = None
        result = None
        try:
            adapter = adapter_pool.get(account)
            result = getattr(adapter, self.method)(*args, **kwargs)
        except ProviderError as exc:
            error = exc
        except NotImplementedError:
            if probe:
                breaker.release_probe(account.pk)
            raise
        except Exception as exc:
            log.exception("provider account %s raised an unclassified error", account.pk)
            error = classify_exception(exc, provider=account.adapter)
        latency_ms = round((time.perf_counter() - started) * 1000)
        kind = error.kind if error else None
        if kind == ErrorKind.TRANSIENT:
            adapter_pool.discard(account)
        # Health and breaker outcome in one pipelined round trip (two scripts, in this order).
        health = record_call_command(
            account=account,
            kind=kind,
            latency_ms=latency_ms,
            error=error,
            capability=self.capability,
            method=self.method,
        )
        failed = kind is not None and kind.counts_as_failure
        commands = [health]
        if self.use_breaker:
            commands.append(
                breaker.record_command(
                    account.pk,
                    ok=not failed,
                    probe=probe,
                    cause=str(error) if failed else "",
                    config=self.config,
                )
            )
        if error is None and not probe and self.outcomes is not None:
            self.outcomes.pending.append((account, commands))  # sent with the next gate (`OutcomeBuffer`)
            return True, result
        earlier = self.outcomes.take() if self.outcomes is not None else []
        try:
            replies = _run(earlier, commands)
        except RedisError:
            # The provider already answered: losing one health and breaker sample beats losing (or
            # repeating) the call.
            log.warning("outcome for account %s not recorded: Redis unavailable", account.pk)
        else:
            if self.use_breaker:
                _note_transition(account, replies[-1], str(error or ""))
        if error is None:
            return True, result
        if error.kind == ErrorKind.REAUTH:
            services.account_mark_needs_reauth(account=account, cause=str(error))
        elif error.kind == ErrorKind.THROTTLED and error.retry_after and self.use_breaker:
            # Without the breaker the answer is the far end's, not the account's (a webhook receiver's
            # 429): holding the account would stall every other endpoint behind it.
            ratelimit.hold(account.pk, error.retry_after)
        return False, error

    def run(self, accounts: list[ProviderAccount], args, kwargs, *, ordered: bool = False):
        """``ordered``: ``accounts`` were just ordered by `order_accounts` (a batch's), so the first round
        uses that order instead of reading the breaker states again; later rounds re-read them."""
        budget = self.budget
        deadline = time.monotonic() + budget.max_seconds
        excluded: set[int] = set()
        round_no = 0
        first = True
        while True:
            soonest: float | None = None  # monotonic time at which a refused account may be tried
            tried = False
            live = [a for a in accounts if a.pk not in excluded]
            for account in live if (first and ordered) else order_accounts(live):
                if self.attempts >= budget.max_attempts:
                    break
                if self.use_breaker:  # gate and token (after any buffered outcomes): one round trip
                    earlier = self.outcomes.take() if self.outcomes is not None else []
                    (reply,) = _run(earlier, [breaker.admit_command(account, self.config)])
                    gate, wait = breaker.admitted(reply)
                else:
                    gate, wait = breaker.Gate(True, "closed"), ratelimit.try_acquire(account)
                if not gate.allowed:
                    at = time.monotonic() + max(0.0, (gate.retry_at or time.time()) - time.time())
                    soonest = at if soonest is None else min(soonest, at)
                    continue
                if wait > 0:  # no token; an admitted probe slot was given back
                    at = time.monotonic() + wait
                    soonest = at if soonest is None else min(soonest, at)
                    continue
                tried = True
                ok, outcome = self.attempt(account, gate.probe, args, kwargs)
                if ok:
                    return outcome
                self.errors[account.name] = outcome
                if outcome.kind in (ErrorKind.BAD_INPUT, ErrorKind.NO_MATCH):
                    raise outcome
                if outcome.kind == ErrorKind.REAUTH:
                    excluded.add(account.pk)
                elif outcome.retry_after:
                    at = time.monotonic() + outcome.retry_after
                    soonest = at if soonest is None else min(soonest, at)
            first = False
            if len(excluded) == len(accounts):
                raise self.unavailable(None, "every provider account needs re-authentication")
            now = time.monotonic()
            if self.attempts >= budget.max_attempts:
                retry_at = soonest if soonest is not None else now + backoff_delay(round_no, budget)
                raise self.unavailable(retry_at, f"retry budget of {budget.max_attempts} attempts used")
            if tried:
                delay = backoff_delay(round_no, budget)
                round_no += 1
            elif soonest is not None:
                delay = soonest - now
                if delay > budget.max_wait_seconds:
                    raise self.unavailable(soonest, "every provider account is cooling down or rate limited")
            else:  # nothing tried, nothing to wait for: cannot happen with a non-empty account list
                raise self.unavailable(None, "no provider account could be tried")
            if now + delay > deadline:
                raise self.unavailable(now + delay, f"retry budget of {budget.max_seconds:g} s used")
            time.sleep(max(0.0, delay))


def call(
    *args,
    workspace,
    capability: str,
    method: str | None = None,
    adapter_keys=None,
    budget: RetryBudget | None = None,
    use_breaker: bool = True,
    **kwargs,
):
    """Call ``method`` (default: the capability's name) on the best available account for ``capability``.

    Positional ``args`` and other keyword ``kwargs`` go to the adapter method. ``adapter_keys`` narrows the
    accounts to those adapters (e.g. one social network). Raises the ProviderError for bad input / no
    match, or ProvidersUnavailable(retry_at=...) when no account answered within the retry budget.
    """
    capability = str(capability)
    accounts, why = candidate_accounts(workspace, capability, adapter_keys=adapter_keys)
    return call_accounts(
        accounts,
        why,
        *args,
        workspace=workspace,
        capability=capability,
        method=method,
        budget=budget,
        use_breaker=use_breaker,
        **kwargs,
    )


def call_accounts(
    accounts: list[ProviderAccount],
    why: str,
    *args,
    workspace,
    capability: str,
    method: str | None = None,
    budget: RetryBudget | None = None,
    use_breaker: bool = True,
    ordered: bool = False,
    outcomes: OutcomeBuffer | None = None,
    **kwargs,
):
    """`call` over accounts the caller already read with `candidate_accounts` (``why``: its reason when
    empty) — for callers that make many calls in a row (``gateway.services.EmailBatch``). ``ordered``: see
    ``_Chain.run``; ``outcomes``: see `OutcomeBuffer` (the caller flushes it). Same errors as `call`."""
    capability = str(capability)
    chain = _Chain(
        workspace=workspace,
        capability=capability,
        method=method or capability,
        budget=budget or retry_budget(),
        use_breaker=use_breaker,
        outcomes=outcomes,
    )
    if not accounts:
        raise chain.unavailable(None, why)
    try:
        return chain.run(accounts, args, kwargs, ordered=ordered)
    except RedisError as exc:
        # Without the shared breaker and rate limit we cannot call providers safely: retry the work later.
        log.warning("gateway call for %s deferred: Redis unavailable (%s)", capability, exc)
        raise chain.unavailable(
            time.monotonic() + REDIS_RETRY_SECONDS, f"breaker store unavailable: {exc}"
        ) from exc
