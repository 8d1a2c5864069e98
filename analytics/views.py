"""Server-rendered campaign reports, read from the rollups through the same selectors as the API."""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.views.generic import TemplateView

from aicmo.models import JobStatus
from aicmo.tenancy import get_scoped_or_404
from aicmo.views import WorkspaceView

from . import kpis, lifetime, lifetime_selectors, selectors
from .api import KpiQuery

PAGE_SIZE = 50
KPI_RATES = (
    ("open_rate", "Open rate"),
    ("ctr", "CTR"),
    ("ctor", "CTOR"),
    ("cvr", "CVR"),
    ("unsubscribe_rate", "Unsubscribe rate"),
    ("bounce_rate", "Bounce rate"),
)


# the campaign report's daily chart: (counter, label); the daily table beside it has the same columns
DAILY_SERIES = (
    ("unique_opens_human", "Unique opens (human)"),
    ("unique_clicks", "Unique clicks"),
    ("conversions", "Conversions"),
)


class CampaignListView(WorkspaceView, TemplateView):
    template_name = "analytics/campaign_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        campaigns = selectors.campaigns_for(self.workspace).order_by("-created_at", "-id")
        page = Paginator(campaigns, PAGE_SIZE).get_page(self.request.GET.get("page"))
        ctx.update(page=page, rows=selectors.campaign_rows(self.workspace, list(page.object_list)))
        query = KpiQuery(
            data={"days": self.request.GET.get("days") or 7}, context={"workspace": self.workspace}
        )
        ctx["kpi_errors"] = [] if query.is_valid() else ["days: the period is 7 or 30 days."]
        days = int(query.validated_data["days"]) if not ctx["kpi_errors"] else 7
        ctx["periods"] = kpis.PERIODS
        ctx["period"] = period = kpis.overview_kpis(self.workspace, days=days)
        ctx["sparklines"] = kpis.sparklines(period)
        ctx["overview"] = overview = selectors.overview(self.workspace)
        ctx["kpis"] = rates = [{"label": label, "value": overview[key]} for key, label in KPI_RATES]
        ctx["kpi_chart"] = {
            "type": "bar",
            "percent": True,
            "labels": [k["label"] for k in rates],
            "series": [{"label": "All campaigns", "data": [k["value"] for k in rates]}],
        }
        return ctx


class CampaignReportView(WorkspaceView, TemplateView):
    template_name = "analytics/campaign_report.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        campaign = get_scoped_or_404(selectors.campaigns_for(self.workspace), self.request, pk=kwargs["pk"])
        ctx["report"] = report = selectors.campaign_report(self.workspace, campaign)
        daily = report["daily"]
        ctx["daily_chart"] = {
            "type": "line",
            "labels": [d["day"] for d in daily],
            "series": [{"label": label, "data": [d[key] for d in daily]} for key, label in DAILY_SERIES],
        }
        return ctx


class LifetimeValueView(WorkspaceView, TemplateView):
    """Lifetime value: the latest fit's diagnostics and calibration table, CLV and P(alive) distributions,
    RFM segments and the R × F grid as tables; a form (write role) starts a fit job."""

    template_name = "analytics/lifetime.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        fit = lifetime_selectors.latest_fit(self.workspace)
        ctx["fit"] = fit
        ctx["running"] = (
            lifetime_selectors.fits_for(self.workspace)
            .filter(job__status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
            .order_by("-id")
            .first()
        )
        ctx["distribution"] = lifetime_selectors.value_distribution(self.workspace) if fit else None
        ctx["top"] = list(
            lifetime_selectors.customer_values(self.workspace)
            .exclude(clv__isnull=True)
            .select_related("contact")
            .order_by("-clv", "contact_id")[:20]
        )
        ctx.setdefault("errors", {})
        return ctx

    def post(self, request, *args, **kwargs):
        errors = {}
        values = {}
        for name, parse in (
            ("observation_date", date.fromisoformat),
            ("holdout_end", date.fromisoformat),
            ("months", int),
            ("monthly_discount", float),
        ):
            raw = request.POST.get(name, "").strip()[:20]
            if raw:
                try:
                    values[name] = parse(raw)
                except ValueError:
                    errors[name] = "Not a valid value."
        if not errors:
            try:
                options = lifetime.clean_fit_options(workspace=self.workspace, **values)
            except ValidationError as exc:
                errors = {k: " ".join(v) for k, v in exc.message_dict.items()}
            else:
                lifetime.lifetime_fit_start(workspace=self.workspace, options=options, by=request.user)
                return redirect("analytics:lifetime")
        return self.render_to_response(self.get_context_data(errors=errors), status=400)
