"""Gateway dashboard: provider states, success rate, latency, breaker, recent failures, recommendations."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse

from aicmo.roles import MANAGE
from aicmo.tenancy import get_scoped_or_404
from aicmo.views import WorkspaceTemplateView, WorkspaceView

from . import selectors
from .health import selfcheck_account
from .models import ProviderAccount


class GatewayIndexView(WorkspaceTemplateView):
    template_name = "gateway/index.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rows = selectors.account_health(self.workspace)
        ctx["rows"] = rows
        ctx["recommendations"] = selectors.recommendations(self.workspace, rows)
        ctx["failures"] = selectors.recent_failures(
            self.workspace, limit=15, accounts=[r.account for r in rows]
        )
        ctx["failed_checks"] = selectors.failed_selfchecks(self.workspace, limit=15)
        ctx["can_manage"] = self.tenant.allows(MANAGE)
        return ctx


class AccountSelfCheckView(WorkspaceView):
    """POST: run one account's self-check now (admins only: it uses the stored credentials)."""

    post_permission = MANAGE

    def post(self, request, pk):
        account = get_scoped_or_404(ProviderAccount.objects.all(), request, pk=pk)
        check = selfcheck_account(account=account)
        if check.ok:
            messages.success(request, f"{account.name}: self-check passed in {check.latency_ms} ms.")
        else:
            messages.warning(request, f"{account.name}: self-check failed: {check.message}")
        return HttpResponseRedirect(reverse("gateway:index"))
