"""The invitation link's page, /invitations/<token>/: accept while logged in, or log in / sign up first."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from .invitations import InvitationInvalid, invitation_accept, invitation_check, invitation_sign_up
from .tenancy import SESSION_KEY

TEMPLATE = "aicmo/invitation.html"


class SignUpForm(UserCreationForm):
    """Username and password (Django's validators); the email is the invited address, not a field."""


class InvitationAcceptView(View):
    """GET shows the invitation; POST ``action=accept`` (logged in) or ``action=signup`` (not logged in).
    A link that cannot be used answers 404 (unknown/tampered) or 410 (expired, revoked, used)."""

    def _invalid(self, request, exc: InvitationInvalid):
        status = 404 if exc.reason == "unknown" else 410
        return render(request, TEMPLATE, {"error": str(exc)}, status=status)

    def _page(self, request, invitation, token, *, signup_form=None, status=200):
        context = {
            "invitation": invitation,
            "token": token,
            "signup_form": signup_form or SignUpForm(),
            "login_url": f"{reverse('login')}?{urlencode({'next': request.path})}",
        }
        return render(request, TEMPLATE, context, status=status)

    def get(self, request, token):
        try:
            invitation = invitation_check(token)
        except InvitationInvalid as exc:
            return self._invalid(request, exc)
        return self._page(request, invitation, token)

    def post(self, request, token):
        action = request.POST.get("action")
        try:
            if action == "accept" and request.user.is_authenticated:
                accepted = invitation_accept(token=token, user=request.user)
            elif action == "signup" and not request.user.is_authenticated:
                form = SignUpForm(request.POST)
                if not form.is_valid():
                    return self._page(request, invitation_check(token), token, signup_form=form, status=400)
                accepted = invitation_sign_up(
                    token=token,
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"],
                )
                login(request, accepted.membership.user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                return self._page(request, invitation_check(token), token, status=400)
        except InvitationInvalid as exc:
            return self._invalid(request, exc)
        workspace = accepted.invitation.workspace
        request.session[SESSION_KEY] = workspace.pk
        if accepted.joined:
            messages.success(
                request, f"Welcome to {workspace.name}: you joined as {accepted.membership.role}."
            )
        else:
            messages.info(
                request,
                f"You were already a member of {workspace.name} ({accepted.membership.role}); "
                "your role was not changed.",
            )
        return HttpResponseRedirect(reverse("home"))
