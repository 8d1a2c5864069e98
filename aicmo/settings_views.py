"""Workspace settings for admins: members and roles, invitations, API keys. Thin views over the core
services."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from .apikeys import api_key_create, api_key_revoke
from .invitations import accept_url, invitation_create, invitation_resend, invitation_revoke
from .models import ApiKey, Invitation, Membership, Role
from .roles import MANAGE
from .selectors import invitations_open_for
from .tenancy import get_scoped_or_404
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


class WorkspaceSettingsView(WorkspaceView):
    required_permission = MANAGE
    post_permission = MANAGE
    template_name = "aicmo/settings.html"

    def render_page(self, request, *, invite_form=None, key_form=None, new_key=None, status=200):
        context = {
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
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
                return self.render_page(request, invite_form=form, status=400)
            messages.success(request, f"Invitation for {invitation.email} created; the link is below.")
        elif action == "create-key":
            form = ApiKeyForm(request.POST)
            if not form.is_valid():
                return self.render_page(request, key_form=form, status=400)
            created = api_key_create(workspace=self.workspace, by=request.user, **form.cleaned_data)
            # The full key is shown in this response only; it is never stored or shown again.
            return self.render_page(request, new_key=created)
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
