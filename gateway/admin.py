"""Gateway admin: accounts with coloured states, write-only credentials, and a "run self-check" action.
Every change goes through gateway.services (audit log, encryption, breaker reset)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from aicmo.admin import WorkspaceAdmin

from . import services
from .health import selfcheck_account
from .models import AccountState, HealthCheck, ProviderAccount

STATE_COLOURS = {
    AccountState.HEALTHY: "#1a7f37",
    AccountState.DEGRADED: "#b35900",
    AccountState.COOLING: "#9a6700",
    AccountState.NEEDS_REAUTH: "#cf222e",
    AccountState.DISABLED: "#6e7781",
}


class ProviderAccountForm(forms.ModelForm):
    credentials = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text='Write-only, never shown again. JSON object, e.g. {"api_key": "…"}. '
        "Leave blank to keep the stored credentials.",
    )

    class Meta:
        model = ProviderAccount
        fields = ["workspace", *services.EDITABLE_FIELDS]

    def clean_credentials(self):
        raw = self.cleaned_data.get("credentials", "").strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg}.") from exc
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise forms.ValidationError("Enter a JSON object of credential fields.")
        return {k: str(v) for k, v in value.items()}


@admin.action(description="Run self-check")
def run_selfcheck(modeladmin, request, queryset):
    ok = failed = 0
    for account in queryset:
        check = selfcheck_account(account=account)
        ok, failed = (ok + 1, failed) if check.ok else (ok, failed + 1)
    level = messages.SUCCESS if not failed else messages.WARNING
    modeladmin.message_user(request, f"Self-check: {ok} passed, {failed} failed.", level)


@admin.action(description="Reset circuit breaker")
def reset_breaker(modeladmin, request, queryset):
    for account in queryset:
        services.account_reset_breaker(account=account, by=request.user)
    modeladmin.message_user(request, f"Breaker reset for {queryset.count()} account(s).", messages.SUCCESS)


@admin.register(ProviderAccount)
class ProviderAccountAdmin(WorkspaceAdmin):
    write_permission = "manage"
    form = ProviderAccountForm
    list_display = [
        "name",
        "capability",
        "adapter",
        "workspace",
        "priority",
        "enabled",
        "state_badge",
        "credentials_hint",
        "state_changed_at",
    ]
    list_filter = ["capability", "state", "enabled", "adapter"]
    search_fields = ["name", "adapter"]
    readonly_fields = [
        "credentials_hint",
        "credentials_changed_at",
        "state",
        "state_cause",
        "state_changed_at",
    ]
    actions = [run_selfcheck, reset_breaker]
    list_select_related = ["workspace"]

    @admin.display(description="State", ordering="state")
    def state_badge(self, obj):
        colour = STATE_COLOURS.get(obj.state, "#6e7781")
        return format_html(
            '<span class="gateway-state" style="background:{};color:#fff;padding:1px 8px;border-radius:8px" '
            'title="{}">{}</span>',
            colour,
            obj.state_cause,
            obj.get_state_display(),
        )

    def save_model(self, request, obj, form, change):
        credentials = form.cleaned_data.get("credentials")
        editable = [f for f in services.EDITABLE_FIELDS if f in form.cleaned_data]
        if change:
            original = ProviderAccount.objects.get(pk=obj.pk)
            changed = {f: getattr(obj, f) for f in editable if f in form.changed_data}
            saved = services.account_update(
                account=original, by=request.user, credentials=credentials, **changed
            )
        else:
            saved = services.account_create(
                workspace=obj.workspace,
                by=request.user,
                credentials=credentials,
                **{f: getattr(obj, f) for f in editable},
            )
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request, obj):
        services.account_delete(account=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for account in queryset:
            services.account_delete(account=account, by=request.user)


@admin.register(HealthCheck)
class HealthCheckAdmin(WorkspaceAdmin):
    list_display = ["account", "at", "ok", "latency_ms", "error_kind", "message"]
    list_filter = ["ok", "error_kind"]
    list_select_related = ["account"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
