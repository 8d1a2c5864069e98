"""Publishing admin: scoped by WorkspaceAdmin. Campaign actions call the same campaign services as the
API and the dashboard; contents and campaigns are written through the API/dashboard (their validation
lives in the services), so here they are read-only apart from the actions."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from aicmo.admin import ManageOnlyAdmin, WorkspaceAdmin

from .models import (
    ABTest,
    Campaign,
    Content,
    ContentVersion,
    Delivery,
    DkimKey,
    EngagementEvent,
    InboundHook,
    Layout,
    PublishingSettings,
    Sender,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from .services import abtests as abtest_services
from .services import approval as approval_services
from .services import campaigns as campaign_services
from .services import content as content_services
from .services import dkim as dkim_services
from .services import inbound as inbound_services
from .services import webhooks as webhook_services


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Sender)
class SenderAdmin(ManageOnlyAdmin):
    list_display = ["email", "name", "workspace", "verified_at"]
    list_filter = ["workspace"]
    fields = ["workspace", "email", "name", "max_per_second", "max_per_hour"]
    actions = ["verify"]

    def get_readonly_fields(self, request, obj=None):
        # verification vouches for the address: it is set once, on creation
        return ["workspace", "email"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        limits = {"max_per_second": obj.max_per_second, "max_per_hour": obj.max_per_hour}
        if change:
            content_services.sender_update(sender=obj, name=obj.name, by=request.user, **limits)
            return
        created = content_services.sender_create(
            workspace=obj.workspace, email=obj.email, name=obj.name, by=request.user, **limits
        )
        obj.pk = created.pk

    @admin.action(description="Mark selected senders verified")
    def verify(self, request, queryset):
        for sender in queryset:
            content_services.sender_verify(sender=sender, by=request.user)
        self.message_user(request, f"Verified {queryset.count()} sender(s).")


@admin.register(PublishingSettings)
class PublishingSettingsAdmin(ManageOnlyAdmin):
    list_display = ["workspace", "approval_required", "updated_at"]
    fields = ["workspace", "approval_required"]

    def save_model(self, request, obj, form, change):
        saved = approval_services.publishing_settings_save(
            workspace=obj.workspace, approval_required=obj.approval_required, by=request.user
        )
        obj.pk = saved.pk


@admin.register(Layout)
class LayoutAdmin(WorkspaceAdmin):
    list_display = ["name", "workspace", "updated_at"]
    fields = ["workspace", "name", "html", "css"]

    def save_model(self, request, obj, form, change):
        existing = Layout.objects.get(pk=obj.pk) if change else None
        saved = content_services.layout_save(
            workspace=obj.workspace,
            layout=existing,
            name=obj.name,
            html=obj.html,
            css=obj.css,
            by=request.user,
        )
        obj.pk = saved.pk


class VersionInline(ReadOnlyMixin, admin.StackedInline):
    model = ContentVersion
    fields = ["channel", "subject", "preheader", "sender", "from_name", "reply_to", "layout", "html", "text"]
    readonly_fields = fields
    extra = 0


@admin.register(Content)
class ContentAdmin(ReadOnlyMixin, WorkspaceAdmin):
    list_display = ["name", "workspace", "updated_at"]
    inlines = [VersionInline]


class CampaignActionForm(ActionForm):
    scheduled_at = forms.DateTimeField(
        required=False,
        help_text="For “Schedule”: wall-clock time in the campaign's time zone (YYYY-MM-DD HH:MM)",
    )


@admin.register(Campaign)
class CampaignAdmin(WorkspaceAdmin):
    list_display = [
        "name",
        "workspace",
        "status",
        "scheduled_at",
        "started_at",
        "finished_at",
        "waiting_reason",
    ]
    list_filter = ["status", "workspace"]
    readonly_fields = [f.name for f in Campaign._meta.fields]
    action_form = CampaignActionForm
    actions = ["schedule", "send_now", "pause", "resume", "cancel", "resend_uncertain"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _each(self, request, queryset, service, verb: str, **kwargs) -> None:
        done = 0
        for campaign in queryset:
            try:
                service(campaign=campaign, by=request.user, **kwargs)
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"{campaign}: {'; '.join(exc.messages)}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb}: {done} campaign(s).")

    @admin.action(description="Schedule selected campaigns")
    def schedule(self, request, queryset):
        try:
            when = CampaignActionForm.base_fields["scheduled_at"].clean(request.POST.get("scheduled_at", ""))
        except ValidationError:
            when = None
        if when is None:
            self.message_user(request, "Give the time to schedule at first.", messages.WARNING)
            return
        self._each(
            request,
            queryset,
            campaign_services.campaign_schedule,
            "Scheduled",
            when=when.replace(tzinfo=None),
        )

    @admin.action(description="Send selected campaigns now")
    def send_now(self, request, queryset):
        self._each(request, queryset, campaign_services.campaign_send_now, "Sending")

    @admin.action(description="Pause selected campaigns")
    def pause(self, request, queryset):
        self._each(request, queryset, campaign_services.campaign_pause, "Paused")

    @admin.action(description="Resume selected campaigns")
    def resume(self, request, queryset):
        self._each(request, queryset, campaign_services.campaign_resume, "Resumed")

    @admin.action(description="Cancel selected campaigns")
    def cancel(self, request, queryset):
        self._each(request, queryset, campaign_services.campaign_cancel, "Cancelled")

    @admin.action(description="Resend uncertain deliveries")
    def resend_uncertain(self, request, queryset):
        self._each(
            request, queryset, campaign_services.campaign_resend_uncertain, "Uncertain deliveries queued"
        )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyMixin, WorkspaceAdmin):
    list_display = [
        "email",
        "campaign",
        "status",
        "skip_reason",
        "attempts",
        "sent_at",
        "retry_at",
        "provider",
    ]
    list_filter = ["status", "workspace"]
    search_fields = ["email"]


@admin.register(EngagementEvent)
class EngagementEventAdmin(ReadOnlyMixin, WorkspaceAdmin):
    list_display = ["kind", "channel", "campaign", "contact", "occurred_at", "machine"]
    list_filter = ["kind", "machine", "workspace"]


class InboundHookForm(forms.ModelForm):
    secret = forms.CharField(
        widget=forms.PasswordInput,
        help_text="Mailgun: webhook signing key. Postmark, Amazon SES (SNS), Brevo: basic auth user:password "
        "(choose both; they go into the URL you give the provider). "
        "SendGrid: the signed event webhook's public key.",
    )

    class Meta:
        model = InboundHook
        fields = ["workspace", "provider"]

    def clean(self):
        data = super().clean()
        if data.get("provider") and data.get("secret"):
            try:
                inbound_services.hook_secret_check(provider=data["provider"], secret=data["secret"])
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    self.add_error(field, errors)
        return data


@admin.register(InboundHook)
class InboundHookAdmin(ManageOnlyAdmin):
    """Provider webhooks: created through ``hook_create`` (random URL key); the secret is never shown."""

    form = InboundHookForm
    list_display = ["provider", "workspace", "webhook_url", "created_at"]
    list_filter = ["provider", "workspace"]
    shown = ["workspace", "provider", "webhook_url", "setup", "confirm_subscription"]

    def get_fields(self, request, obj=None):
        return ["workspace", "provider", "secret"] if obj is None else self.shown

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.shown

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            kwargs["form"] = forms.ModelForm
        return super().get_form(request, obj, change=change, **kwargs)

    @admin.display(description="Webhook URL")
    def webhook_url(self, obj) -> str:
        return inbound_services.hook_url(obj)

    @admin.display(description="URL to paste into the provider")
    def setup(self, obj) -> str:
        return inbound_services.hook_setup_text(obj)

    @admin.display(description="Amazon SNS subscription")
    def confirm_subscription(self, obj) -> str:
        if not obj.confirm_url:
            return "-"
        return format_html(
            'Waiting since {}: <a href="{}" target="_blank" rel="noopener noreferrer">confirm the '
            "subscription at Amazon SNS</a>",
            obj.confirm_requested_at,
            obj.confirm_url,
        )

    def save_model(self, request, obj, form, change):
        if change:
            return
        created = inbound_services.hook_create(
            workspace=obj.workspace,
            provider=obj.provider,
            secret=form.cleaned_data["secret"],
            by=request.user,
        )
        obj.pk = created.pk

    def delete_model(self, request, obj):
        inbound_services.hook_delete(hook=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for hook in queryset:
            inbound_services.hook_delete(hook=hook, by=request.user)


class DkimKeyForm(forms.ModelForm):
    private_key = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "autocomplete": "off"}),
        help_text="Leave empty to generate a new RSA 2048 key, or paste an unencrypted RSA private key (PEM).",
    )

    class Meta:
        model = DkimKey
        fields = ["workspace", "domain", "selector"]

    def clean(self):
        data = super().clean()
        try:
            dkim_services.dkim_key_check(
                domain=data.get("domain", ""),
                selector=data.get("selector", ""),
                private_key_pem=data.get("private_key", ""),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field, errors)
        return data


@admin.register(DkimKey)
class DkimKeyAdmin(ManageOnlyAdmin):
    """DKIM keys per sending domain: created through ``dkim_key_create`` (generated or uploaded); shows the
    DNS record to publish, never the private key."""

    form = DkimKeyForm
    list_display = ["domain", "selector", "workspace", "active", "dns_name", "created_at"]
    list_filter = ["active", "workspace"]
    actions = ["activate"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["workspace", "domain", "selector", "private_key"]
        return [
            "workspace",
            "domain",
            "selector",
            "active",
            "activated_at",
            "dns_name",
            "dns_value",
            "private_key_hint",
        ]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            kwargs["form"] = forms.ModelForm
        return super().get_form(request, obj, change=change, **kwargs)

    @admin.display(description="DNS TXT name")
    def dns_name(self, obj) -> str:
        return dkim_services.dns_record(obj).name

    @admin.display(description="DNS TXT value")
    def dns_value(self, obj) -> str:
        return dkim_services.dns_record(obj).value

    @admin.display(description="Private key")
    def private_key_hint(self, obj) -> str:
        return "Stored encrypted; never shown."

    def save_model(self, request, obj, form, change):
        if change:
            return
        created = dkim_services.dkim_key_create(
            workspace=obj.workspace,
            domain=form.cleaned_data["domain"],
            selector=form.cleaned_data["selector"],
            private_key_pem=form.cleaned_data.get("private_key", ""),
            by=request.user,
        )
        obj.pk = created.pk

    def has_delete_permission(self, request, obj=None):
        # the active key of a domain with other keys stays until another one is activated
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or dkim_services.dkim_key_deletable(obj))

    def delete_model(self, request, obj):
        dkim_services.dkim_key_delete(key=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for key in queryset:
            try:
                dkim_services.dkim_key_delete(key=key, by=request.user)
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)

    @admin.action(description="Sign the domain's mail with this key")
    def activate(self, request, queryset):
        for key in queryset:
            dkim_services.dkim_key_activate(key=key, by=request.user)
        self.message_user(request, f"{queryset.count()} key(s) activated.", messages.SUCCESS)


@admin.register(ABTest)
class ABTestAdmin(WorkspaceAdmin):
    """Read-only numbers, plus the person's choice: send the current leader to the held rest."""

    list_display = ["campaign", "metric", "phase", "verdict", "winner", "decided_at"]
    list_filter = ["phase", "workspace"]
    readonly_fields = [
        "campaign",
        "test_share",
        "metric",
        "wait_minutes",
        "auto_winner",
        "phase",
        "winner",
        "result",
    ]
    fields = readonly_fields
    actions = ["send_leader"]

    @admin.display(description="Significance")
    def verdict(self, obj) -> str:
        return obj.verdict

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Send the current leader to the rest", permissions=["change"])
    def send_leader(self, request, queryset):
        for abtest in queryset:
            comparison = abtest_services.abtest_evaluate(abtest)
            if comparison.leader is None:
                self.message_user(request, f"{abtest.campaign}: no leader yet.", level=messages.ERROR)
                continue
            try:
                abtest_services.abtest_choose_winner(
                    abtest=abtest, variant=abtest.variants.get(label=comparison.leader)
                )
            except ValidationError as exc:
                self.message_user(
                    request, f"{abtest.campaign}: {'; '.join(exc.messages)}", level=messages.ERROR
                )
                continue
            self.message_user(request, f"{abtest.campaign}: variant {comparison.leader} goes to the rest.")


def _each(request, items, call, label) -> None:
    """``call(item)`` for each item; a ValidationError becomes an error message naming ``label(item)``."""
    for item in items:
        try:
            call(item)
        except ValidationError as exc:
            messages.error(request, f"{label(item)}: {' '.join(exc.messages)}")


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=WebhookEventType.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["workspace", "url", "description", "event_types", "active"]

    def clean_url(self):
        try:
            return webhook_services.url_clean(self.cleaned_data.get("url"))
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["url"]) from exc


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ManageOnlyAdmin):
    """Outbound webhook endpoints, written through ``services.webhooks``; a new or rotated secret is shown
    once, in the confirmation message."""

    form = WebhookEndpointForm
    list_display = ["url", "description", "workspace", "active", "consecutive_failures", "disabled_reason"]
    list_filter = ["active", "workspace"]
    search_fields = ["url", "description"]
    readonly_fields = ["secret_hint", "disabled_reason", "disabled_at", "consecutive_failures"]
    actions = ["rotate_secret", "send_test"]

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data[k] for k in ("url", "description", "event_types", "active")}
        try:
            if change:
                webhook_services.endpoint_update(endpoint=obj, by=request.user, **data)
            else:
                endpoint, secret = webhook_services.endpoint_create(
                    workspace=form.cleaned_data["workspace"], by=request.user, **data
                )
                obj.pk = endpoint.pk
                messages.warning(request, f"Signing secret (shown once): {secret}")
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))

    def delete_model(self, request, obj):
        webhook_services.endpoint_delete(endpoint=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            webhook_services.endpoint_delete(endpoint=endpoint, by=request.user)

    @admin.action(description="Rotate the signing secret (the new one is shown once)")
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            secret = webhook_services.endpoint_rotate_secret(endpoint=endpoint, by=request.user)
            messages.warning(request, f"{endpoint.url}: new signing secret (shown once): {secret}")

    @admin.action(description="Send a test event")
    def send_test(self, request, queryset):
        _each(
            request,
            queryset,
            lambda endpoint: webhook_services.endpoint_send_test(endpoint=endpoint, by=request.user),
            lambda endpoint: endpoint.url,
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, ManageOnlyAdmin):
    list_display = [
        "event_type",
        "event_id",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "created_at",
    ]
    list_filter = ["status", "event_type", "workspace"]
    search_fields = ["event_id"]
    actions = ["retry"]

    @admin.action(description="Deliver again now (same webhook-id)")
    def retry(self, request, queryset):
        _each(
            request,
            queryset,
            lambda delivery: webhook_services.delivery_retry(delivery=delivery, by=request.user),
            lambda delivery: delivery.event_id,
        )
