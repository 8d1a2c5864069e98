"""Gateway writes and the public facade other apps call (enrich_people, verify_email, send_email, ...).

Facade functions take the workspace and typed values, return typed results, and raise
``ProviderError`` (bad input: fix the data) or ``ProvidersUnavailable`` (retry the work at ``retry_at``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from email.utils import make_msgid, parseaddr
from typing import Any

from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from aicmo.audit import audit_record
from aicmo.conflicts import Conflict

from . import breaker, ratelimit
from . import capabilities as cap
from .adapters.mail import ascii_domain
from .capabilities import Capability
from .chain import OutcomeBuffer, call, call_accounts, candidate_accounts, order_accounts
from .crypto import decrypt_credentials, encrypt_credentials, encrypted_columns, mask_secret, rotate_token
from .errors import ErrorKind, ProviderError
from .health import account_set_state
from .models import AccountState, ProviderAccount

ENRICH_BATCH_SIZE = 10  # Apollo bulk_match's limit; one chain call per batch keeps a failover cheap
EDITABLE_FIELDS = (
    "capability",
    "adapter",
    "name",
    "priority",
    "enabled",
    "base_url",
    "timeout_seconds",
    "rate_limit_per_second",
    "rate_limit_burst",
    "options",
    "ca_pem",
)


# -- accounts ---------------------------------------------------------------------------------------------


def _credentials_hint(account: ProviderAccount, credentials: dict[str, Any]) -> str:
    if not credentials:
        return ""
    fields = list(getattr(account.adapter_class, "credential_fields", ()) or ()) or sorted(credentials)
    name = next((f for f in fields if credentials.get(f)), next(iter(sorted(credentials))))
    return f"{name} {mask_secret(credentials.get(name, ''))}"[:40]


def _apply_credentials(account: ProviderAccount, credentials: dict[str, Any]) -> None:
    clean = {str(k): v for k, v in (credentials or {}).items() if v not in (None, "")}
    account.credentials_encrypted = encrypt_credentials(clean)
    account.credentials_hint = _credentials_hint(account, clean)
    account.credentials_changed_at = timezone.now()


def _full_clean(account: ProviderAccount) -> None:
    account.full_clean(exclude=["workspace"], validate_unique=False)
    clash = ProviderAccount.objects.filter(
        workspace_id=account.workspace_id, capability=account.capability, name=account.name
    ).exclude(pk=account.pk)
    if clash.exists():
        raise Conflict({"name": "Another account for this capability already has this name."})


@transaction.atomic
def account_create(*, workspace, by, credentials: dict[str, Any] | None = None, **fields) -> ProviderAccount:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"Unknown account fields: {sorted(unknown)}")
    account = ProviderAccount(workspace=workspace, **fields)
    _full_clean(account)
    if credentials:
        _apply_credentials(account, credentials)
    account.state = AccountState.HEALTHY if account.enabled else AccountState.DISABLED
    account.state_changed_at = timezone.now()
    account.save()
    audit_record(
        workspace=workspace,
        actor=by,
        verb="gateway.account_created",
        target=account,
        changes={
            "adapter": account.adapter,
            "capability": account.capability,
            "credentials": "set" if credentials else "none",
        },
    )
    return account


# The fields that say where an account's credentials are sent: the vendor and its server.
DESTINATION = frozenset({"adapter", "base_url"})


@transaction.atomic
def account_update(
    *, account: ProviderAccount, by, credentials: dict[str, Any] | None = None, **fields
) -> ProviderAccount:
    """Change the given fields (and credentials when given). Naming the ``adapter`` gives its whole
    configuration: ``options`` and ``base_url`` not given return to their defaults ({} and blank, the
    adapter's own endpoint), so another adapter never inherits the old one's (whatever is stored, the
    same request is accepted or refused alike). Raises ValidationError per field, Conflict for a name in
    use.

    Stored credentials go only to the destination they were given for: a change of ``adapter`` or
    ``base_url`` (the vendor and the server the secret is sent to) without ``credentials`` in the same call
    clears them (audited as ``gateway.credentials_cleared``), so a key can never be redirected to another
    vendor or to a host the caller controls; the account then needs its credentials again, like a new one.
    """
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"Unknown account fields: {sorted(unknown)}")
    if "adapter" in fields:
        fields = {"options": {}, "base_url": ""} | fields
    changes = {}
    for name, value in fields.items():
        if getattr(account, name) != value:
            changes[name] = [getattr(account, name), value]
            setattr(account, name, value)
    _full_clean(account)
    clear_credentials = credentials is None and account.has_credentials and bool(DESTINATION & set(changes))
    if clear_credentials:
        account.credentials_encrypted, account.credentials_hint = "", ""
        account.credentials_changed_at = timezone.now()
    if "enabled" in changes:
        account.state = AccountState.HEALTHY if account.enabled else AccountState.DISABLED
        account.state_cause = "" if account.enabled else "disabled by an operator"
        account.state_changed_at = timezone.now()
    account.save()
    if changes:
        audit_record(
            workspace=account.workspace,
            actor=by,
            verb="gateway.account_updated",
            target=account,
            changes={k: [str(v[0]), str(v[1])] for k, v in changes.items()},
        )
    if clear_credentials:
        audit_record(
            workspace=account.workspace,
            actor=by,
            verb="gateway.credentials_cleared",
            target=account,
            changes={"because": sorted(DESTINATION & set(changes))},
        )
    if credentials is not None:
        account_set_credentials(account=account, by=by, credentials=credentials)
    return account


@transaction.atomic
def account_set_credentials(*, account: ProviderAccount, by, credentials: dict[str, Any]) -> ProviderAccount:
    """Store new credentials (encrypted) and give the account a fresh start: clears needs_reauth and the
    shared breaker / rate-limit state."""
    _apply_credentials(account, credentials)
    fields = ["credentials_encrypted", "credentials_hint", "credentials_changed_at", "updated_at"]
    if account.state == AccountState.NEEDS_REAUTH:
        account.state, account.state_cause, account.state_changed_at = (
            AccountState.HEALTHY,
            "",
            timezone.now(),
        )
        fields += ["state", "state_cause", "state_changed_at"]
    account.save(update_fields=fields)
    audit_record(
        workspace=account.workspace,
        actor=by,
        verb="gateway.credentials_changed",
        target=account,
        changes={"fields": sorted(credentials)},
    )
    pk = account.pk
    transaction.on_commit(lambda: (breaker.reset(pk), ratelimit.reset(pk)))
    return account


@transaction.atomic
def account_delete(*, account: ProviderAccount, by) -> None:
    audit_record(workspace=account.workspace, actor=by, verb="gateway.account_deleted", target=account)
    pk = account.pk
    account.delete()
    transaction.on_commit(lambda: (breaker.reset(pk), ratelimit.reset(pk)))


def account_mark_needs_reauth(*, account: ProviderAccount, cause: str) -> None:
    """The provider rejected the credentials: stop using the account until they change."""
    account_set_state(account=account, state=AccountState.NEEDS_REAUTH, cause=cause)


def account_note_breaker(
    *, account: ProviderAccount, transition: breaker.Transition, cause: str = ""
) -> None:
    """Mirror breaker transitions into the stored state (cooling while open; healthy once a probe passed)."""
    if account.state in (AccountState.NEEDS_REAUTH, AccountState.DISABLED):
        return
    if transition.after == breaker.OPEN:
        account_set_state(account=account, state=AccountState.COOLING, cause=f"circuit open: {cause}")
    elif transition.after == breaker.CLOSED:
        account_set_state(account=account, state=AccountState.HEALTHY, cause="")


def account_reset_breaker(*, account: ProviderAccount, by) -> None:
    breaker.reset(account.pk)
    ratelimit.reset(account.pk)
    if account.state == AccountState.COOLING:
        account_set_state(account=account, state=AccountState.HEALTHY, cause="")
    audit_record(workspace=account.workspace, actor=by, verb="gateway.breaker_reset", target=account)


def rotate_credentials(*, batch_size: int = 200) -> dict[str, int]:
    """Re-encrypt every stored secret with the newest FIELD_ENCRYPTION_KEYS entry.

    Walks every :class:`~gateway.crypto.EncryptedTokenField` of the installed apps (provider credentials,
    inbound-hook secrets, DKIM private keys, …) in primary-key batches, each row locked while it is
    rewritten. Returns ``{"app_label.Model.field": rows re-encrypted}``. Raises ``CredentialsUnreadable``
    when no configured key reads a stored token (nothing after that row is touched; rows before it keep
    their new tokens, which every configured key set containing the newest key reads)."""
    counts: dict[str, int] = {}
    for model, field in encrypted_columns():
        label = f"{model._meta.label}.{field}"
        counts[label] = 0
        last_pk = 0
        while True:
            with transaction.atomic():
                rows = list(
                    model._base_manager.select_for_update()
                    .filter(pk__gt=last_pk)
                    .exclude(**{field: ""})
                    .order_by("pk")
                    .values_list("pk", field)[:batch_size]
                )
                for pk, token in rows:
                    new = rotate_token(token)
                    decrypt_credentials(new)  # proves the newest key reads what was just written
                    model._base_manager.filter(pk=pk).update(**{field: new})
                    counts[label] += 1
            if not rows:
                break
            last_pk = rows[-1][0]
    return counts


# -- facade -----------------------------------------------------------------------------------------------


def enrich_people(*, workspace, queries: Sequence[cap.PersonQuery]) -> list[cap.EnrichmentResult]:
    """Results in the order of ``queries`` (no match: ``matched=False``), in batches of 10 per provider call."""
    results: list[cap.EnrichmentResult] = []
    for start in range(0, len(queries), ENRICH_BATCH_SIZE):
        batch = list(queries[start : start + ENRICH_BATCH_SIZE])
        try:
            results.extend(
                call(batch, workspace=workspace, capability=Capability.ENRICH_PERSON, method="enrich_people")
            )
        except ProviderError as exc:
            if exc.kind != ErrorKind.NO_MATCH:
                raise
            results.extend(cap.EnrichmentResult(provider=exc.provider, matched=False, query=q) for q in batch)
    return results


def verify_email(*, workspace, email: str) -> cap.VerificationResult:
    return call(email, workspace=workspace, capability=Capability.VERIFY_EMAIL)


def message_id_new(*, from_email: str) -> str:
    """A fresh ``<…@domain>`` Message-ID (RFC 5322 §3.6.4) on the domain of ``from_email`` (a bare
    address or ``Name <address>``), written as its A-label for an internationalized domain (a msg-id is
    ASCII); ``aicmo.local`` when there is no usable domain."""
    domain = parseaddr(from_email)[1].rpartition("@")[2]
    try:
        domain = ascii_domain(domain)
    except ValueError:
        domain = ""
    return make_msgid(domain=domain or "aicmo.local")


def _with_message_id(message: cap.OutgoingEmail) -> cap.OutgoingEmail:
    """Mint the Message-ID before the chain so a retry or failover sends the same message, not a twin."""
    if message.message_id:
        return message
    return replace(message, message_id=message_id_new(from_email=message.from_email))


def send_email(*, workspace, message: cap.OutgoingEmail) -> cap.SendResult:
    return call(_with_message_id(message), workspace=workspace, capability=Capability.SEND_EMAIL)


class EmailBatch:
    """``send_email`` for a run of messages of one workspace (a campaign's batch): the accounts are read
    from the database and ordered by live health once, on the first message; every message still goes
    through the chain's breaker gate, rate limit, retries, failover and health recording. An account
    marked as needing re-authentication during the run is left out of the following messages. Make one per
    batch, so configuration changes are seen at the next batch, and close it when the batch ends (or use
    it as a context manager): a successful message's health sample and breaker record go to Redis with the
    next message's gate, one round trip per message (`chain.OutcomeBuffer`), and the last ones on close."""

    def __init__(self, *, workspace) -> None:
        self.workspace = workspace
        self._accounts: list[ProviderAccount] | None = None
        self._why = ""
        self._ordered = False
        self._outcomes = OutcomeBuffer()

    def close(self) -> None:
        """Record the outcomes still buffered (one round trip; nothing when there are none)."""
        self._outcomes.flush()

    def __enter__(self) -> EmailBatch:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def send(self, message: cap.OutgoingEmail) -> cap.SendResult:
        """Same result and errors as `send_email`."""
        if self._accounts is None:
            self._accounts, self._why = candidate_accounts(self.workspace, Capability.SEND_EMAIL)
            # Redis down: left unordered; the chain reports it as ProvidersUnavailable on the call itself.
            with contextlib.suppress(RedisError):
                self._accounts, self._ordered = order_accounts(self._accounts), True
        accounts = [a for a in self._accounts if a.state != AccountState.NEEDS_REAUTH]
        why = self._why or "every provider account needs re-authentication"
        return call_accounts(
            accounts,
            why,
            _with_message_id(message),
            workspace=self.workspace,
            capability=Capability.SEND_EMAIL,
            ordered=self._ordered,
            outcomes=self._outcomes,
        )


def send_plain_email(*, workspace, to: str, subject: str, text: str, html: str = "") -> cap.SendResult:
    """``send_email`` for callers below the gateway (the core's invitation mails), which name this function
    in settings instead of importing gateway types. Same chain, failover and errors as ``send_email``."""
    return send_email(
        workspace=workspace, message=cap.OutgoingEmail(to=to, subject=subject, text=text, html=html)
    )


def fetch_replies(
    *, workspace, since: datetime | date, known_message_ids: Iterable[str]
) -> list[cap.InboundMessage]:
    return call(since, list(known_message_ids), workspace=workspace, capability=Capability.FETCH_REPLIES)


def sync_crm(*, workspace, records: Sequence[cap.CrmRecord]) -> cap.CrmSyncResult:
    return call(list(records), workspace=workspace, capability=Capability.SYNC_CRM)


def post_social(*, workspace, network: str, post: cap.SocialPost) -> cap.SocialPostResult:
    """Publish on one network (LinkedIn, X, Instagram): only that network's accounts are tried."""
    network = str(network)
    if post.network != network:
        post = replace(post, network=network)
    return call(
        post, workspace=workspace, capability=Capability.POST_SOCIAL, adapter_keys=_network_keys(network)
    )


def social_metrics(*, workspace, network: str, external_id: str) -> cap.SocialMetrics:
    return call(
        external_id,
        workspace=workspace,
        capability=Capability.POST_SOCIAL,
        method="social_metrics",
        adapter_keys=_network_keys(str(network)),
    )


def _network_keys(network: str) -> frozenset[str]:
    from .adapters import ADAPTERS

    keys = {key for key, cls in ADAPTERS.items() if getattr(cls, "network", key) == network}
    return frozenset(keys | {network})


def run_ads(*, workspace, spec: cap.AdCampaignSpec) -> cap.AdCampaignResult:
    return call(spec, workspace=workspace, capability=Capability.RUN_ADS)


def pause_ad(*, workspace, external_id: str) -> cap.AdCampaignResult:
    return call(external_id, workspace=workspace, capability=Capability.RUN_ADS, method="pause_ad")


def resume_ad(*, workspace, external_id: str) -> cap.AdCampaignResult:
    return call(external_id, workspace=workspace, capability=Capability.RUN_ADS, method="resume_ad")


def fetch_ad_insights(*, workspace, external_id: str, since: date, until: date) -> list[cap.AdInsight]:
    return call(external_id, since, until, workspace=workspace, capability=Capability.FETCH_AD_INSIGHTS)


def dispatch_webhook(*, workspace, url: str, secret: str, event: cap.WebhookEvent) -> cap.WebhookResult:
    """One delivery attempt to a user's endpoint. The receiver's failures are not the provider's, so they
    neither trip the breaker nor fail over; the caller's task retries over hours with the same event id."""
    if not event.event_id:
        event = replace(event, event_id=f"msg_{uuid.uuid4().hex}")
    return call(
        url,
        secret,
        event,
        workspace=workspace,
        capability=Capability.DISPATCH_WEBHOOK,
        use_breaker=False,
        budget=_single_attempt(),
    )


def _single_attempt():
    from .chain import retry_budget

    return retry_budget(max_attempts=1)
