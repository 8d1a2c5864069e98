"""Gateway dashboard: provider states, success rate, latency, breaker, recent failures, recommendations;
adding, editing, testing and deleting provider accounts (admins: accounts hold provider credentials)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from aicmo.roles import MANAGE
from aicmo.tenancy import get_scoped_or_404
from aicmo.views import WorkspaceTemplateView, WorkspaceView

from . import selectors, services
from .adapters import ADAPTERS, adapters_for
from .capabilities import Capability, capability_words
from .errors import kind_words
from .forms import AccountForm
from .health import selfcheck_account
from .models import HealthCheck, ProviderAccount


def check_outcome(check: HealthCheck | None, account: ProviderAccount) -> dict | None:
    """A self-check in words: ``{"ok", "words", "kind", "message", "at", "latency_ms"}`` or None."""
    if check is None:
        return None
    if check.ok:
        words = f"Connected: {account.adapter_label} answered in {check.latency_ms} ms. The account works."
    else:
        words = f"Not working: {kind_words(check.error_kind)}."
    return {
        "ok": check.ok,
        "words": words,
        "kind": check.error_kind,
        "message": check.message,
        "at": check.at,
        "latency_ms": check.latency_ms,
    }


class GatewayIndexView(WorkspaceTemplateView):
    template_name = "gateway/index.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rows = selectors.account_health(self.workspace)
        ctx["rows"] = rows
        ctx["recommendations"] = selectors.recommendations(self.workspace, rows)
        failures = selectors.recent_failures(self.workspace, limit=15, accounts=[r.account for r in rows])
        ctx["failures"] = (
            None
            if failures is None
            else [
                {"f": f, "words": kind_words(f.kind), "call": capability_words(f.capability)}
                for f in failures
            ]
        )
        ctx["failed_checks"] = [
            {"check": c, "words": kind_words(c.error_kind)}
            for c in selectors.failed_selfchecks(self.workspace, limit=15)
        ]
        ctx["can_manage"] = self.tenant.allows(MANAGE)
        return ctx


class AccountSelfCheckView(WorkspaceView):
    """POST: run one account's self-check now (admins only: it uses the stored credentials). From the
    account page (``next=account``) it returns there, where the outcome is shown with its detail."""

    post_permission = MANAGE

    def post(self, request, pk):
        account = get_scoped_or_404(ProviderAccount.objects.all(), request, pk=pk)
        check = selfcheck_account(account=account)
        outcome = check_outcome(check, account)
        if check.ok:
            messages.success(request, f"{account.name}: {outcome['words']}")
        else:
            messages.warning(request, f"{account.name}: {outcome['words']} Details are on the account page.")
        if request.POST.get("next") == "account":
            return HttpResponseRedirect(reverse("gateway:account-edit", args=[account.pk]) + "#connection")
        return HttpResponseRedirect(reverse("gateway:index"))


class AccountAddView(WorkspaceView):
    """GET without ``adapter``: pick what the account does and the vendor. With ``adapter`` (and optionally
    ``capability``): that adapter's form. POST creates through ``services.account_create``."""

    required_permission = MANAGE
    post_permission = MANAGE

    def _adapter(self, request):
        key = request.GET.get("adapter", "")
        return ADAPTERS.get(key) if key.isascii() else None

    def get(self, request):
        cls = self._adapter(request)
        if cls is None:
            wanted = request.GET.get("capability", "")
            groups = [
                {"capability": c, "adapters": adapters_for(c), "wanted": c.value == wanted}
                for c in Capability
            ]
            return render(request, "gateway/account_pick.html", {"groups": groups})
        initial = {}
        capability = request.GET.get("capability", "")
        if capability in {c.value for c in cls.capabilities}:
            initial["capability"] = capability
        form = AccountForm(adapter_cls=cls, initial=initial)
        return self._render(request, form)

    def post(self, request):
        cls = self._adapter(request)
        if cls is None:
            raise Http404("Unknown provider.")
        form = AccountForm(request.POST, adapter_cls=cls)
        if form.is_valid():
            try:
                account = services.account_create(
                    workspace=self.workspace,
                    by=request.user,
                    credentials=form.cleaned_credentials(),
                    **form.cleaned_fields(),
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, f"{account.name} added. Test the connection below.")
                return HttpResponseRedirect(reverse("gateway:account-edit", args=[account.pk]))
        return self._render(request, form, status=400)

    def _render(self, request, form, status=200):
        return render(
            request, "gateway/account_form.html", {"form": form, "adapter": form.adapter_cls}, status=status
        )


class AccountEditView(WorkspaceView):
    required_permission = MANAGE
    post_permission = MANAGE

    def _account(self, request, pk):
        account = get_scoped_or_404(ProviderAccount.objects.all(), request, pk=pk)
        if account.adapter_class is None:
            raise Http404("This account's adapter is no longer installed.")
        return account

    def get(self, request, pk):
        account = self._account(request, pk)
        return self._render(request, account, AccountForm(adapter_cls=account.adapter_class, account=account))

    def post(self, request, pk):
        account = self._account(request, pk)
        form = AccountForm(request.POST, adapter_cls=account.adapter_class, account=account)
        if form.is_valid():
            try:
                services.account_update(
                    account=account,
                    by=request.user,
                    credentials=form.cleaned_credentials(),
                    **form.cleaned_fields(),
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
                account.refresh_from_db()
            else:
                messages.success(request, f"{account.name} saved.")
                return HttpResponseRedirect(reverse("gateway:account-edit", args=[account.pk]))
        return self._render(request, account, form, status=400)

    def _render(self, request, account, form, status=200):
        last = HealthCheck.objects.filter(account=account).order_by("-at", "-id").first()
        return render(
            request,
            "gateway/account_form.html",
            {
                "form": form,
                "adapter": account.adapter_class,
                "account": account,
                "outcome": check_outcome(last, account),
            },
            status=status,
        )


class AccountDeleteView(WorkspaceView):
    required_permission = MANAGE
    post_permission = MANAGE

    def get(self, request, pk):
        account = get_scoped_or_404(ProviderAccount.objects.all(), request, pk=pk)
        fallbacks = (
            ProviderAccount.objects.for_workspace(self.workspace)
            .filter(capability=account.capability, enabled=True)
            .exclude(pk=account.pk)
            .count()
        )
        return render(request, "gateway/account_delete.html", {"account": account, "fallbacks": fallbacks})

    def post(self, request, pk):
        account = get_scoped_or_404(ProviderAccount.objects.all(), request, pk=pk)
        name = account.name
        services.account_delete(account=account, by=request.user)
        messages.success(request, f"{name} deleted.")
        return HttpResponseRedirect(reverse("gateway:index"))
