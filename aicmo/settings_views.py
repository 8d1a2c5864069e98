"""Workspace settings for admins: members and roles, API keys. Thin views over the core services."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from .apikeys import api_key_create, api_key_revoke
from .models import ApiKey, Membership, Role
from .roles import MANAGE
from .tenancy import get_scoped_or_404
from .views import WorkspaceView
from .workspaces import LastAdminError, membership_remove, membership_set


class MemberAddForm(forms.Form):
    user = forms.CharField(label="Username or email", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MARKETER)

    def clean_user(self):
        value = self.cleaned_data["user"].strip()
        users = (
            get_user_model().objects.filter(is_active=True).filter(Q(username=value) | Q(email__iexact=value))
        )
        found = list(users[:2])
        if len(found) != 1:
            raise forms.ValidationError("No single active user has this username or email.")
        return found[0]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class WorkspaceSettingsView(WorkspaceView):
    required_permission = MANAGE
    post_permission = MANAGE
    template_name = "aicmo/settings.html"

    def render_page(self, request, *, member_form=None, key_form=None, new_key=None, status=200):
        context = {
            "members": Membership.objects.for_workspace(self.workspace)
            .select_related("user")
            .order_by("user__username"),
            "keys": ApiKey.objects.for_workspace(self.workspace).select_related("created_by"),
            "member_form": member_form or MemberAddForm(),
            "key_form": key_form or ApiKeyForm(),
            "roles": Role.choices,
            "new_key": new_key,
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        action = request.POST.get("action")
        if action == "add-member":
            form = MemberAddForm(request.POST)
            if not form.is_valid():
                return self.render_page(request, member_form=form, status=400)
            membership_set(
                workspace=self.workspace,
                user=form.cleaned_data["user"],
                role=form.cleaned_data["role"],
                by=request.user,
            )
            messages.success(request, f"{form.cleaned_data['user'].get_username()} is now a member.")
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
                    membership_set(
                        workspace=self.workspace,
                        user=membership.user,
                        role=form.cleaned_data["role"],
                        by=request.user,
                    )
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
