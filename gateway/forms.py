"""The dashboard's provider-account form, generated from the adapter's declared ``field_specs``.

Credentials are write-only: secret fields never render their stored value, and a blank secret on an edit
keeps the stored one. Values are handed to ``services.account_create`` / ``account_update``, whose
``ValidationError`` (SSRF guard, unknown options, CA PEM, unique name) the view puts back on the form.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from .adapters.base import Adapter, FieldSpec
from .capabilities import Capability
from .models import ProviderAccount

CRED_PREFIX = "cred_"
OPT_PREFIX = "opt_"


def _spec_for(cls: type[Adapter], name: str) -> FieldSpec:
    spec = cls.field_specs.get(name)
    if spec is not None:
        return spec
    secret = name in cls.credential_fields
    return FieldSpec(name.replace("_", " ").capitalize(), kind="secret" if secret else "text")


def _form_field(spec: FieldSpec, *, secret_stored: bool) -> forms.Field:
    common = {"label": spec.label, "help_text": spec.help}
    if spec.kind == "secret":
        help_text = spec.help + (" Leave blank to keep the stored value." if secret_stored else "")
        return forms.CharField(
            label=spec.label,
            help_text=help_text.strip(),
            required=spec.required and not secret_stored,
            strip=False,
            max_length=4000,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        )
    if spec.kind == "bool":
        return forms.BooleanField(required=False, initial=True, **common)
    if spec.kind == "number":
        return forms.FloatField(required=spec.required, min_value=spec.minimum, **common)
    if spec.kind == "email":
        return forms.EmailField(required=spec.required, max_length=254, **common)
    return forms.CharField(required=spec.required, max_length=500, **common)


class AccountForm(forms.Form):
    """``AccountForm(data, adapter_cls=..., account=None)``; ``cleaned_fields()`` and
    ``cleaned_credentials()`` give what the services take."""

    capability = forms.ChoiceField(label="What it does")
    name = forms.CharField(max_length=100, help_text="Your name for this account, e.g. “Office SMTP”.")
    base_url = forms.CharField(label="Server URL", max_length=500, required=False)
    priority = forms.IntegerField(
        min_value=0,
        max_value=32767,
        initial=100,
        help_text="Lower is tried first; the next one is the fallback.",
    )
    enabled = forms.BooleanField(required=False, initial=True, label="Enabled")
    timeout_seconds = forms.FloatField(label="Timeout (seconds)", min_value=0.1, max_value=600, initial=10.0)
    rate_limit_per_second = forms.FloatField(
        label="Rate limit (calls per second)", min_value=0.001, required=False, help_text="Blank: no limit."
    )
    rate_limit_burst = forms.IntegerField(label="Burst", min_value=1, max_value=100000, initial=1)
    ca_pem = forms.CharField(
        label="Private CA certificate (PEM)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Only for a server whose certificate a private CA signed. Blank: the system trust store.",
    )

    def __init__(self, *args, adapter_cls: type[Adapter], account: ProviderAccount | None = None, **kwargs):
        self.adapter_cls = adapter_cls
        self.account = account
        stored: dict[str, Any] = account.get_credentials() if account is not None else {}
        self.stored_credentials = stored
        if account is not None and "initial" not in kwargs:
            kwargs["initial"] = self._initial_from(account, stored)
        super().__init__(*args, **kwargs)
        caps = [c for c in Capability if c in adapter_cls.capabilities]
        self.fields["capability"].choices = [(c.value, c.label) for c in caps]
        if account is not None or len(caps) == 1:
            self.fields["capability"].disabled = True
            self.fields["capability"].initial = account.capability if account else caps[0].value
        url = self.fields["base_url"]
        url.required = adapter_cls.base_url_required
        url.help_text = adapter_cls.base_url_help or (
            f"Blank: {adapter_cls.default_base_url}." if adapter_cls.default_base_url else ""
        )
        if not adapter_cls.base_url_required and adapter_cls.default_base_url:
            url.label = "Server URL (only to override the vendor's)"
        for name in adapter_cls.credential_fields:
            spec = _spec_for(adapter_cls, name)
            self.fields[CRED_PREFIX + name] = _form_field(spec, secret_stored=bool(stored.get(name)))
        for name in adapter_cls.option_fields:
            spec = _spec_for(adapter_cls, name)
            self.fields[OPT_PREFIX + name] = _form_field(spec, secret_stored=False)

    @staticmethod
    def _initial_from(account: ProviderAccount, stored: dict[str, Any]) -> dict[str, Any]:
        initial: dict[str, Any] = {
            f: getattr(account, f)
            for f in ("capability", "name", "base_url", "priority", "enabled", "timeout_seconds")
        }
        initial.update(
            rate_limit_per_second=account.rate_limit_per_second,
            rate_limit_burst=account.rate_limit_burst,
            ca_pem=account.ca_pem,
        )
        cls = account.adapter_class
        for name in getattr(cls, "credential_fields", ()):
            if _spec_for(cls, name).kind != "secret":
                initial[CRED_PREFIX + name] = stored.get(name, "")
        for name, value in (account.options or {}).items():
            initial[OPT_PREFIX + name] = value
        return initial

    @property
    def general_fields(self) -> list[forms.BoundField]:
        return [self[n] for n in ("capability", "name", "base_url", "enabled")]

    @property
    def credential_fields(self) -> list[forms.BoundField]:
        return [self[CRED_PREFIX + n] for n in self.adapter_cls.credential_fields]

    @property
    def option_fields(self) -> list[forms.BoundField]:
        return [self[OPT_PREFIX + n] for n in self.adapter_cls.option_fields]

    @property
    def advanced_fields(self) -> list[forms.BoundField]:
        names = ("priority", "timeout_seconds", "rate_limit_per_second", "rate_limit_burst", "ca_pem")
        return [self[n] for n in names]

    def cleaned_fields(self) -> dict[str, Any]:
        """The account's own fields, as ``account_create`` / ``account_update`` take them."""
        data = self.cleaned_data
        options = {}
        for name in self.adapter_cls.option_fields:
            value = data.get(OPT_PREFIX + name)
            if value not in (None, ""):
                options[name] = value
        fields = {
            "name": data["name"].strip(),
            "base_url": data.get("base_url", "").strip(),
            "priority": data["priority"],
            "enabled": data["enabled"],
            "timeout_seconds": data["timeout_seconds"],
            "rate_limit_per_second": data.get("rate_limit_per_second"),
            "rate_limit_burst": data["rate_limit_burst"],
            "options": options,
            "ca_pem": data.get("ca_pem", ""),
        }
        if self.account is None:
            fields.update(capability=data["capability"], adapter=self.adapter_cls.key)
        return fields

    def clean(self):
        """On an edit that moves the account to another server, a stored secret left blank is an error on
        its field: the services send credentials only where they were given
        (``services.account_update``), so the secret must be entered again for the new server."""
        data = super().clean()
        moved = self.account is not None and (data.get("base_url") or "").strip() != self.account.base_url
        if moved and "base_url" not in self.errors:
            for name in self.adapter_cls.credential_fields:
                field = CRED_PREFIX + name
                secret = _spec_for(self.adapter_cls, name).kind == "secret"
                if (
                    secret
                    and not data.get(field)
                    and self.stored_credentials.get(name)
                    and field in self.fields
                ):
                    self.add_error(
                        field, "Enter it again: a stored secret is only sent to the server it was given for."
                    )
        return data

    def cleaned_credentials(self) -> dict[str, Any] | None:
        """The credentials to store, or None when nothing changed (an edit keeps blank secrets)."""
        merged: dict[str, Any] = {}
        for name in self.adapter_cls.credential_fields:
            value = self.cleaned_data.get(CRED_PREFIX + name) or ""
            secret = _spec_for(self.adapter_cls, name).kind == "secret"
            if value == "" and secret and self.stored_credentials.get(name):
                value = self.stored_credentials[name]
            if value != "":
                merged[name] = value
        if self.account is None:
            return merged or None
        return None if merged == self.stored_credentials else merged

    def add_service_errors(self, exc: ValidationError) -> None:
        """Put a service's ValidationError on the fields it names (the rest above the form)."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for field, errors in exc.message_dict.items():
            target = field if field in self.fields else None
            if field == "options":
                target = None
            for message in errors:
                self.add_error(target, message)
