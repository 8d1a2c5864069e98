"""Dashboard pages for trends, cohorts and engagement scores. They validate their query with the API's
serializers and read the same services, so a page shows exactly what the API and its CSV answer."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import redirect
from django.views.generic import TemplateView

from aicmo.activity import describe
from aicmo.models import AuditEvent
from aicmo.roles import MANAGE
from aicmo.tenancy import get_scoped_or_404
from aicmo.views import WorkspaceView
from crm.models import Contact, Tier
from publishing.models import Channel, EngagementKind

from . import assets, cohorts, contact360, scoring, trends
from .api_cohorts import CohortListSerializer, CohortQuerySerializer
from .api_scores import ScoreSettingsSerializer
from .api_trends import TrendQuerySerializer
from .selectors import campaigns_for, score_history


def _errors(serializer) -> list[str]:
    return [f"{field}: {' '.join(str(m) for m in msgs)}" for field, msgs in serializer.errors.items()]


class TrendsView(WorkspaceView, TemplateView):
    template_name = "analytics/trends.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        params = {k: v for k, v in self.request.GET.items() if v != ""}
        query = TrendQuerySerializer(data=params, context={"workspace": self.workspace})
        ctx.update(
            metrics=trends.METRICS,
            campaigns=campaigns_for(self.workspace).order_by("name")[:200],
            channels=Channel.choices,
            params=params,
            query_string=urlencode(params),  # the CSV link: "All" (an empty value) left out, as here
        )
        if not query.is_valid():
            ctx["errors"] = _errors(query)
            return ctx
        q = query.validated_data
        result = trends.trend(self.workspace, **q)
        points = result["points"]
        ctx["result"] = result
        change = result["summary"]["change"]
        ctx["change_percent"] = None if change is None else change * 100
        ctx["chart"] = {
            "type": "line",
            "percent": q["metric"] in trends.RATES and q["metric"] not in ("cpc", "cpm", "cpa", "roas"),
            "labels": [p["day"] for p in points],
            "series": [
                {"label": q["metric"], "data": [p["value"] for p in points]},
                {"label": "7-day average", "data": [p["ma7"] for p in points], "dashed": True},
                {"label": "28-day average", "data": [p["ma28"] for p in points], "dashed": True},
                {
                    "label": "Anomaly",
                    "kind": "markers",
                    "data": [p["value"] if p["anomaly"] else None for p in points],
                },
            ],
        }
        return ctx


def _shade(rate) -> str:
    """A light blue background for a retention rate (dark text stays readable on every shade)."""
    if rate is None:
        return "#ffffff"
    lightness = 97 - round(27 * max(0.0, min(1.0, rate)))
    return f"hsl(210, 80%, {lightness}%)"


class CohortsView(WorkspaceView, TemplateView):
    template_name = "analytics/cohorts.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        params = {k: v for k, v in self.request.GET.items() if v != ""}
        query = CohortQuerySerializer(data=params, context={"workspace": self.workspace})
        ctx.update(
            bases=cohorts.BASES,
            grains=cohorts.GRAINS,
            activities=cohorts.ACTIVITIES,
            params=params,
            query_string=urlencode(params),  # the CSV link: "All" (an empty value) left out, as here
            can_save=self.tenant.allows("write"),
        )
        if not query.is_valid():
            ctx["errors"] = _errors(query)
            return ctx
        matrix = cohorts.cohort_matrix(self.workspace, query.validated_data)
        ctx["matrix"] = matrix
        ctx["rows"] = [
            {
                **c,
                "cells": [
                    {"active": n, "rate": r, "revenue": v, "shade": _shade(r)}
                    for n, r, v in zip(c["active"], c["retention"], c["revenue"], strict=True)
                ],
            }
            for c in matrix["cohorts"]
        ]
        return ctx

    def post(self, request, *args, **kwargs):
        body = CohortListSerializer(data=request.POST.dict(), context={"workspace": self.workspace})
        if not body.is_valid():
            for line in _errors(body):
                messages.error(request, line)
            return redirect(request.get_full_path())
        try:
            saved, added = cohorts.cohort_cell_save_list(
                workspace=self.workspace, by=request.user, **body.validated_data
            )
        except ValidationError as exc:
            for line in exc.messages:
                messages.error(request, line)
            return redirect(request.get_full_path())
        messages.success(request, f"List “{saved.name}” saved with {added} contacts.")
        return redirect("crm:list", pk=saved.pk)


class ScoresView(WorkspaceView, TemplateView):
    """The workspace's score rule (admins change it here) and how many contacts are in each tier."""

    template_name = "analytics/scores.html"
    post_permission = MANAGE

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rule = scoring.score_settings_for(self.workspace)
        counts = dict(
            Contact.objects.for_workspace(self.workspace)
            .values("engagement_tier")
            .annotate(n=Count("pk"))
            .order_by()
            .values_list("engagement_tier", "n")
        )
        tiers = [{"tier": t.label, "value": t.value, "contacts": counts.get(t.value, 0)} for t in Tier]
        tiers.append({"tier": "Not scored", "value": "", "contacts": counts.get("", 0)})
        ctx.update(
            rule=rule,
            weights=[{"kind": k, "points": rule.weights.get(k, 0)} for k in EngagementKind.values],
            tiers=tiers,
            can_manage=self.tenant.allows(MANAGE),
            chart={
                "type": "bar",
                "labels": [t["tier"] for t in tiers],
                "series": [{"label": "Contacts", "data": [t["contacts"] for t in tiers]}],
            },
        )
        return ctx

    def post(self, request, *args, **kwargs):
        data = {
            name: request.POST[name]
            for name in scoring.RULE_FIELDS
            if name != "weights" and request.POST.get(name, "") != ""
        }
        data["weights"] = {
            kind: request.POST[f"weight_{kind}"]
            for kind in EngagementKind.values
            if request.POST.get(f"weight_{kind}", "") != ""
        }
        body = ScoreSettingsSerializer(data=data, partial=True)
        if not body.is_valid():
            for line in _errors(body):
                messages.error(request, line)
            return redirect("analytics:scores")
        try:
            _, job = scoring.score_settings_update(
                workspace=self.workspace, changes=dict(body.validated_data), by=request.user
            )
        except ValidationError as exc:
            for line in exc.messages:
                messages.error(request, line)
            return redirect("analytics:scores")
        messages.success(request, "Score rule saved; recomputing every score." if job else "Nothing changed.")
        return redirect("analytics:scores")


class ContactScoresView(WorkspaceView, TemplateView):
    """One contact's score and tier and the days they changed (the contact timeline's score track)."""

    template_name = "analytics/contact_scores.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        contact = get_scoped_or_404(Contact.objects.all(), self.request, pk=kwargs["pk"])
        history = score_history(self.workspace, contact.pk)
        ctx.update(
            contact=contact,
            history=history,
            chart={
                "type": "line",
                "labels": [h["day"].isoformat() for h in history],
                "series": [{"label": "Score", "data": [h["score"] for h in history]}],
            },
        )
        return ctx


# The contact 360's engagement counts in words (the API keeps the keys).
ENGAGEMENT_WORDS = {
    **dict(EngagementKind.choices),
    "open_human": "Open (person)",
    "open_machine": "Open (machine: privacy proxy or scanner)",
}


def _in_words(entry: dict, contact) -> dict:
    """An audit row of the timeline as the activity feed's sentence (``aicmo.activity``), the verb kept as
    its detail; other rows unchanged. The API keeps the verb and the actor as they are."""
    if entry["source"] != "audit":
        return entry | {"kind": ENGAGEMENT_WORDS.get(entry["kind"], entry["kind"])}
    event = AuditEvent(verb=entry["title"], actor_label=entry["detail"], target_repr=contact.email)
    return entry | {"title": describe(event), "detail": entry["title"]}


class Contact360View(WorkspaceView, TemplateView):
    """One contact across apps: profile, score and tier with the score-history chart, engagement counts,
    orders per currency, RFM and the latest lifetime prediction, and the timeline (50 a page, newest first,
    times in the reader's zone). The same selectors as ``/api/v1/analytics/contacts/{id}/``."""

    template_name = "analytics/contact_360.html"
    TIMELINE_PAGE = 50

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        contact = get_scoped_or_404(Contact.objects.select_related("company"), self.request, pk=kwargs["pk"])
        figures = contact360.contact_figures(self.workspace, contact)
        history = figures["score"]["history"]
        rows = contact360.timeline(self.workspace, contact.pk, include_audit=self.tenant.allows(MANAGE))
        page = Paginator(rows, self.TIMELINE_PAGE).get_page(self.request.GET.get("page"))
        engagement = figures["engagement"]
        ctx.update(
            contact=contact,
            figures=figures,
            engagement_rows=[
                {"kind": kind, "label": ENGAGEMENT_WORDS.get(kind, kind), "events": engagement[kind]}
                for kind in (
                    "sent",
                    "delivered",
                    "open_human",
                    "open_machine",
                    "click",
                    "reply",
                    "conversion",
                    "bounce_hard",
                    "bounce_soft",
                    "unsubscribe",
                    "complaint",
                )
            ],  # fmt: skip
            page=page,
            entries=[_in_words(contact360.entry(r), contact) for r in page.object_list],
            chart={
                "type": "line",
                "labels": [h["day"].isoformat() for h in history],
                "series": [{"label": "Score", "data": [h["score"] for h in history]}],
            },
        )
        return ctx


class AssetPerformanceView(WorkspaceView, TemplateView):
    """Media asset performance: the campaigns carrying each asset and what channels reported for it, as a
    chart of the top assets' CTRs beside the full table (the API's rows)."""

    template_name = "analytics/assets.html"
    CHARTED = 20

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rows = assets.asset_performance(self.workspace)
        charted = rows[: self.CHARTED]
        ctx.update(
            rows=rows,
            chart={
                "type": "bar",
                "percent": True,
                "labels": [f"{r['title'][:30] or r['asset_id']}" for r in charted],
                "series": [
                    {"label": "CTR of the campaigns carrying it", "data": [r["ctr"] for r in charted]},
                    {"label": "Reported CTR", "data": [r["reported_ctr"] for r in charted]},
                ],
            },
        )
        return ctx
