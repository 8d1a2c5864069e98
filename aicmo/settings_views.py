"""Workspace settings for admins: members and roles, invitations, API keys. Thin views over the core
services."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from .apikeys import api_key_create, api_key_revoke
from .invitations import accept_url, invitation_create, invitation_resend, invitation_revoke
from .models import ApiKey, Invitation, Membership, Role
from .roles import MANAGE
from .selectors import invitations_open_for
from .tenancy import get_scoped_or_404
from .timezones import user_time_zone, user_time_zone_set, workspace_time_zone_set, zone_choices
from .twofactor import workspace_set_two_factor
from .views import WorkspaceView
from .workspaces import LastAdminError, membership_remove, membership_set


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MARKETER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at (optional)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Naive form input is read in the active (the reader's) zone: say which.
        self.fields["expires_at"].label = f"Expires at (optional, {timezone.get_current_timezone_name()})"


class WorkspaceZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone",
        help_text="The calendar days of schedules and analytics, and the zone members read unless they chose their own.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = zone_choices()


class PreferencesForm(forms.Form):
    time_zone = forms.ChoiceField(label="Your time zone", required=False)

    def __init__(self, *args, workspace_zone: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = zone_choices(
            f"The workspace's ({workspace_zone.replace('_', ' ')})"
        )


def _add_errors(form: forms.Form, exc: ValidationError) -> None:
    """A service's field errors onto the form (unknown fields become form-wide errors)."""
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


class WorkspaceSettingsView(WorkspaceView):
    required_permission = MANAGE
    post_permission = MANAGE
    template_name = "aicmo/settings.html"

    def render_page(
        self, request, *, invite_form=None, key_form=None, zone_form=None, new_key=None, status=200
    ):
        context = {
            "zone_form": zone_form or WorkspaceZoneForm(initial={"time_zone": self.workspace.time_zone}),
            "invitations": [
                (inv, accept_url(inv) if inv.status == "pending" else None)
                for inv in invitations_open_for(self.workspace).select_related("invited_by")
            ],
            "members": Membership.objects.for_workspace(self.workspace)
            .select_related("user")
            .order_by("user__username"),
            "keys": ApiKey.objects.for_workspace(self.workspace).select_related("created_by"),
            "invite_form": invite_form or InviteForm(),
            "key_form": key_form or ApiKeyForm(),
            "roles": Role.choices,
            "new_key": new_key,
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        action = request.POST.get("action")
        if action == "invite":
            form = InviteForm(request.POST)
            if not form.is_valid():
                return self.render_page(request, invite_form=form, status=400)
            try:
                invitation = invitation_create(workspace=self.workspace, by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                _add_errors(form, exc)
                return self.render_page(request, invite_form=form, status=400)
            messages.success(request, f"Invitation for {invitation.email} created; the link is below.")
        elif action == "create-key":
            form = ApiKeyForm(request.POST)
            if not form.is_valid():
                return self.render_page(request, key_form=form, status=400)
            try:
                created = api_key_create(workspace=self.workspace, by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                _add_errors(form, exc)
                return self.render_page(request, key_form=form, status=400)
            # The full key is shown in this response only; it is never stored or shown again.
            return self.render_page(request, new_key=created)
        elif action == "time-zone":
            form = WorkspaceZoneForm(request.POST)
            if not form.is_valid():
                return self.render_page(request, zone_form=form, status=400)
            workspace_time_zone_set(workspace=self.workspace, by=request.user, **form.cleaned_data)
            messages.success(request, f"The workspace's time zone is now {form.cleaned_data['time_zone']}.")
        elif action == "two-factor":
            required = request.POST.get("required") == "on"
            workspace_set_two_factor(workspace=self.workspace, required=required, by=request.user)
            messages.success(
                request,
                "Admins of this workspace must now use two-factor authentication."
                if required
                else "Two-factor authentication is now optional for admins.",
            )
        else:
            messages.error(request, "Unknown action.")
            return self.render_page(request, status=400)
        return HttpResponseRedirect(reverse("workspace-settings"))


class MemberRoleView(WorkspaceView):
    required_permission = MANAGE
    post_permission = MANAGE

    def post(self, request, pk):
        membership = get_scoped_or_404(Membership.objects.select_related("user"), request, pk=pk)
        try:
            if request.POST.get("action") == "remove":
                membership_remove(membership=membership, by=request.user)
                messages.success(request, f"{membership.user.get_username()} was removed.")
            else:
                form = RoleForm(request.POST)
                if not form.is_valid():
                    messages.error(request, "Choose a valid role.")
                else:
                    membership_set(membership=membership, role=form.cleaned_data["role"], by=request.user)
                    messages.success(
                        request, f"{membership.user.get_username()} is now {form.cleaned_data['role']}."
                    )
        except LastAdminError as exc:
            messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("workspace-settings"))


class ApiKeyRevokeView(WorkspaceView):
    required_permission = MANAGE
    post_permission = MANAGE

    def post(self, request, pk):
        key = get_scoped_or_404(ApiKey.objects.all(), request, pk=pk)
        api_key_revoke(api_key=key, by=request.user)
        messages.success(request, f"API key {key.name} was revoked.")
        return HttpResponseRedirect(reverse("workspace-settings"))


class InvitationActionView(WorkspaceView):
    """POST /settings/invitations/<pk>/resend/ or /revoke/ (admins; other workspaces' ids 404)."""

    required_permission = MANAGE
    post_permission = MANAGE
    ACTIONS = {"resend": invitation_resend, "revoke": invitation_revoke}

    def post(self, request, pk, action):
        service = self.ACTIONS.get(action)
        if service is None:
            raise Http404("No such action.")
        invitation = get_scoped_or_404(Invitation.objects.all(), request, pk=pk)
        try:
            service(invitation=invitation, by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            done = "sent again with a new link" if action == "resend" else "revoked"
            messages.success(request, f"Invitation for {invitation.email} {done}.")
        return HttpResponseRedirect(reverse("workspace-settings"))


class PreferencesView(LoginRequiredMixin, View):
    """A person's own settings (any signed-in user, whatever their role): the zone they read times in."""

    template_name = "aicmo/preferences.html"

    def _workspace_zone(self, request) -> str:
        tenant = getattr(request, "tenant", None)
        return tenant.workspace.time_zone if tenant else timezone.get_default_timezone_name()

    def get(self, request):
        form = PreferencesForm(
            initial={"time_zone": user_time_zone(request.user)}, workspace_zone=self._workspace_zone(request)
        )
        return render(request, self.template_name, {"form": form})

    def post(self, request):
        form = PreferencesForm(request.POST, workspace_zone=self._workspace_zone(request))
        if not form.is_valid():
            return render(request, self.template_name, {"form": form}, status=400)
        user_time_zone_set(
            user=request.user, time_zone=form.cleaned_data["time_zone"], session=request.session
        )
        messages.success(request, "Saved. Times are shown in your chosen zone.")
        return HttpResponseRedirect(reverse("preferences"))
