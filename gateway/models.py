"""Provider accounts (per workspace, credentials encrypted at rest), per-minute health rollups and
self-check history. Breaker and rate-limit state live in Redis (gateway.breaker / gateway.ratelimit)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from aicmo.models import WorkspaceOwned

from .capabilities import Capability
from .crypto import EncryptedTokenField, decrypt_credentials
from .errors import DNS_CAUSE
from .tls import validate_ca_pem

# Option names that used to (or could) name a file on the server; refused with a pointer to ca_pem.
PATH_OPTIONS = frozenset(
    {"ca_file", "ca_path", "cafile", "capath", "cert_file", "key_file", "certfile", "keyfile"}
)


class AccountState(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    DEGRADED = "degraded", "Degraded"
    COOLING = "cooling", "Cooling down"
    NEEDS_REAUTH = "needs_reauth", "Needs re-authentication"
    DISABLED = "disabled", "Disabled"


# Order in which the chain prefers accounts; needs_reauth and disabled accounts are never tried.
STATE_RANK = {AccountState.HEALTHY: 0, AccountState.DEGRADED: 1, AccountState.COOLING: 2}


class ProviderAccount(WorkspaceOwned):
    capability = models.CharField(max_length=32, choices=Capability.choices, db_index=True)
    adapter = models.CharField(
        max_length=40, help_text="Adapter key, e.g. 'apollo', 'hunter', 'smtp', 'demo'."
    )
    name = models.CharField(max_length=100)
    priority = models.PositiveSmallIntegerField(default=100, help_text="Lower is tried first (after health).")
    enabled = models.BooleanField(default=True)
    base_url = models.CharField(
        max_length=500, blank=True, help_text="Blank: the adapter's default endpoint."
    )
    timeout_seconds = models.FloatField(default=10.0, validators=[MinValueValidator(0.1)])
    rate_limit_per_second = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.001)], help_text="Blank: no limit."
    )
    rate_limit_burst = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    options = models.JSONField(
        default=dict, blank=True, help_text="Non-secret adapter options (only those the adapter declares)."
    )
    ca_pem = models.TextField(
        blank=True,
        help_text="PEM text of the private CA certificate(s) to trust for this provider, in addition to "
        "the system store. Blank: system store only.",
    )
    credentials_encrypted = EncryptedTokenField(blank=True, editable=False)
    credentials_hint = models.CharField(max_length=40, blank=True, editable=False)
    credentials_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    state = models.CharField(max_length=16, choices=AccountState.choices, default=AccountState.HEALTHY)
    state_cause = models.CharField(max_length=500, blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["capability", "priority", "id"]
        indexes = [models.Index(fields=["workspace", "capability", "enabled"])]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "capability", "name"], name="gateway_account_unique_name"
            ),
            models.CheckConstraint(
                condition=Q(timeout_seconds__gt=0), name="gateway_account_timeout_positive"
            ),
            models.CheckConstraint(
                condition=Q(rate_limit_per_second__isnull=True) | Q(rate_limit_per_second__gt=0),
                name="gateway_account_rate_positive",
            ),
            models.CheckConstraint(
                condition=Q(rate_limit_burst__gte=1), name="gateway_account_burst_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.adapter}, {self.capability})"

    @property
    def audit_label(self) -> str:
        """The name the activity feed shows (the adapter and capability are in the audit row's details)."""
        return self.name

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials_encrypted)

    def get_credentials(self) -> dict[str, Any]:
        return decrypt_credentials(self.credentials_encrypted)

    @property
    def adapter_class(self):
        from .adapters import adapter_for

        try:
            return adapter_for(self.adapter)
        except (KeyError, LookupError):
            return None

    @property
    def is_demo(self) -> bool:
        cls = self.adapter_class
        return bool(cls is not None and getattr(cls, "is_demo", False))

    @property
    def adapter_label(self) -> str:
        cls = self.adapter_class
        return getattr(cls, "label", self.adapter) if cls is not None else self.adapter

    def clean(self) -> None:
        cls = self.adapter_class
        if cls is None:
            raise ValidationError({"adapter": f"Unknown adapter {self.adapter!r}."})
        caps = {str(c) for c in getattr(cls, "capabilities", ())}
        if self.capability and caps and self.capability not in caps:
            raise ValidationError({"adapter": f"{self.adapter} does not provide {self.capability}."})
        self.clean_options(cls)
        self.ca_pem = validate_ca_pem(self.ca_pem)
        self.clean_base_url(cls)

    def clean_options(self, cls) -> None:
        """Only the options the adapter declares (none of which names a file on the server)."""
        if not isinstance(self.options, dict):
            raise ValidationError({"options": "Options must be a JSON object."})
        allowed = tuple(getattr(cls, "option_fields", ()) or ())
        unknown = sorted(set(self.options) - set(allowed))
        if unknown:
            hint = f" Allowed: {', '.join(allowed)}." if allowed else " This adapter takes no options."
            if any(k in PATH_OPTIONS for k in unknown):
                hint += " A private CA is pasted as PEM text in ca_pem, never given as a server path."
            raise ValidationError(
                {"options": f"Unknown option(s) for {self.adapter}: {', '.join(unknown)}.{hint}"}
            )

    def clean_base_url(self, cls) -> None:
        """The base URL goes through the SSRF guard with the adapter's schemes, resolving the host now
        (the same check runs again at every connect)."""
        from .ssrf import HostUnresolvable, UnsafeURL, check_url

        if not self.base_url:
            if getattr(cls, "base_url_required", False):
                raise ValidationError({"base_url": f"{cls.label} needs a server URL: {cls.base_url_help}"})
            return
        try:
            check_url(self.base_url, schemes=cls.url_schemes)
        except HostUnresolvable as exc:
            raise ValidationError({"base_url": f"{DNS_CAUSE} ({exc})"}) from exc
        except UnsafeURL as exc:
            raise ValidationError({"base_url": str(exc)}) from exc


class HealthMinute(WorkspaceOwned):
    """Outcomes of real calls for one account in one UTC minute (upserted, never a row per call).

    ``successes`` includes no-match and bad-input answers (the provider worked); ``failures`` are
    transient and re-auth errors; ``throttled`` are rate-limit answers.
    """

    account = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="health_minutes")
    minute = models.DateTimeField()
    calls = models.PositiveIntegerField(default=0)
    successes = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    throttled = models.PositiveIntegerField(default=0)
    latency_ms_sum = models.BigIntegerField(default=0)
    latency_ms_max = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-minute"]
        constraints = [
            models.UniqueConstraint(fields=["account", "minute"], name="gateway_health_minute_unique")
        ]
        indexes = [models.Index(fields=["workspace", "minute"])]

    def __str__(self) -> str:
        return f"{self.account_id} @ {self.minute:%Y-%m-%d %H:%M}: {self.successes}/{self.calls}"


class HealthCheck(WorkspaceOwned):
    """One self-check of an account (its adapter's cheapest health endpoint)."""

    account = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="health_checks")
    at = models.DateTimeField(db_index=True)
    ok = models.BooleanField()
    latency_ms = models.PositiveIntegerField(default=0)
    error_kind = models.CharField(max_length=16, blank=True)
    message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["account", "-at"])]

    def __str__(self) -> str:
        return f"{self.account_id} @ {self.at:%Y-%m-%d %H:%M:%S}: {'ok' if self.ok else self.error_kind}"
