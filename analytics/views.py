"""Server-rendered campaign reports, read from the rollups through the same selectors as the API."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.views.generic import TemplateView

from aicmo.tenancy import get_scoped_or_404
from aicmo.views import WorkspaceView

from . import selectors

PAGE_SIZE = 50
KPI_RATES = (
    ("open_rate", "Open rate"),
    ("ctr", "CTR"),
    ("ctor", "CTOR"),
    ("cvr", "CVR"),
    ("unsubscribe_rate", "Unsubscribe rate"),
    ("bounce_rate", "Bounce rate"),
)


class CampaignListView(WorkspaceView, TemplateView):
    template_name = "analytics/campaign_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        campaigns = selectors.campaigns_for(self.workspace).order_by("-created_at", "-id")
        page = Paginator(campaigns, PAGE_SIZE).get_page(self.request.GET.get("page"))
        ctx.update(page=page, rows=selectors.campaign_rows(self.workspace, list(page.object_list)))
        ctx["overview"] = overview = selectors.overview(self.workspace)
        ctx["kpis"] = kpis = [{"label": label, "value": overview[key]} for key, label in KPI_RATES]
        ctx["kpi_chart"] = {
            "type": "bar",
            "percent": True,
            "labels": [k["label"] for k in kpis],
            "series": [{"label": "All campaigns", "data": [k["value"] for k in kpis]}],
        }
        return ctx


class CampaignReportView(WorkspaceView, TemplateView):
    template_name = "analytics/campaign_report.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        campaign = get_scoped_or_404(selectors.campaigns_for(self.workspace), self.request, pk=kwargs["pk"])
        ctx["report"] = selectors.campaign_report(self.workspace, campaign)
        return ctx
