"""Two-factor pages: enrol / remove (``/two-factor/``) and the code asked after the password login
(``/two-factor/verify/``). The rules live in aicmo/twofactor.py."""

from __future__ import annotations

from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from .twofactor import device_confirm, device_remove, device_start, qr_svg, two_factor_required_for


class TokenForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        label="Code from your authenticator app",
        error_messages={"invalid": "Enter the 6 digits shown by your authenticator app."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 8}),
    )


def _next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or reverse("home")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return reverse("home")
    return target


class TwoFactorView(LoginRequiredMixin, View):
    template_name = "aicmo/two_factor.html"

    def render_page(self, request, *, form=None, status=200):
        confirmed = TOTPDevice.objects.filter(user=request.user, confirmed=True).first()
        context = {"confirmed": confirmed, "form": form or TokenForm(), "next": _next(request)}
        context["required"] = two_factor_required_for(request.user)
        if confirmed is None:
            pending = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
            if pending is None:
                pending = device_start(user=request.user)
            context |= {"uri": pending.config_url, "qr": qr_svg(pending.config_url), "secret": pending.key}
        return render(request, self.template_name, context, status=status)

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        form = TokenForm(request.POST)
        if not form.is_valid():
            return self.render_page(request, form=form, status=400)
        token = form.cleaned_data["token"].strip()
        if request.POST.get("action") == "remove":
            device = TOTPDevice.objects.filter(user=request.user, confirmed=True).first()
            if device is None or not device.verify_token(token):
                form.add_error("token", "That code is not right (or has expired); try the current one.")
                return self.render_page(request, form=form, status=400)
            try:
                device_remove(user=request.user)
            except ValidationError as exc:
                form.add_error(None, exc)
                return self.render_page(request, form=form, status=400)
            return HttpResponseRedirect(reverse("two-factor"))
        device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
        if device is None or not device_confirm(device=device, token=token):
            form.add_error("token", "That code is not right (or has expired); try the current one.")
            return self.render_page(request, form=form, status=400)
        otp_login(request, device)
        return HttpResponseRedirect(_next(request))


class TwoFactorVerifyView(LoginRequiredMixin, View):
    template_name = "aicmo/two_factor_verify.html"

    def get(self, request):
        return render(request, self.template_name, {"form": TokenForm(), "next": _next(request)})

    def post(self, request):
        form = TokenForm(request.POST)
        if form.is_valid():
            token = form.cleaned_data["token"].strip()
            device = TOTPDevice.objects.filter(user=request.user, confirmed=True).first()
            if device is not None and device.verify_token(token):
                otp_login(request, device)
                return HttpResponseRedirect(_next(request))
            form.add_error("token", "That code is not right (or has expired); try the current one.")
        return render(request, self.template_name, {"form": form, "next": _next(request)}, status=400)
