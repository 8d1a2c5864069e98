"""Contact 360 API: ``GET /api/v1/analytics/contacts/{id}/`` (every figure of the contact 360 page) and
``GET /api/v1/analytics/contacts/{id}/timeline/`` (the cross-app timeline, paginated, newest first). Both
answer ``?format=csv``: the figures one per line (section, name, value), the timeline streamed whole."""

from __future__ import annotations

from collections.abc import Iterator

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from aicmo.api import WorkspaceGenericViewSet
from aicmo.roles import MANAGE, READ
from crm.models import Contact

from . import contact360
from .downloads import CSVAwareMixin, csv_download

CSV_CHUNK = 2000


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    source = serializers.ChoiceField(choices=["engagement", "order", "crm", "audit"])
    kind = serializers.CharField(help_text="event kind, `order`, `lifecycle`, `consent given`, `audit`, …")
    title = serializers.CharField(
        help_text="campaign name, order id, stage change, consent kind, provider, verb"
    )
    detail = serializers.CharField(help_text="channel, order source, reason, consent source, match, actor")
    amount = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    currency = serializers.CharField(allow_blank=True)
    ref = serializers.IntegerField(help_text="id of the row in its source table")


def figure_lines(figures: dict) -> Iterator[dict]:
    """The figures as ``{section, name, value}`` lines (the CSV form): nested sections become
    ``parent.child`` (orders per currency ``orders.EUR``, score history ``score_history`` by day)."""
    for section in ("contact", "engagement"):
        for name, value in figures[section].items():
            yield {"section": section, "name": name, "value": value}
    score = figures["score"]
    for name in ("score", "tier", "last_human_at"):
        yield {"section": "score", "name": name, "value": score[name]}
    for h in score["history"]:
        yield {"section": "score_history", "name": h["day"].isoformat(), "value": f"{h['score']} {h['tier']}"}
    for row in figures["orders"]:
        for name, value in row.items():
            if name != "currency":
                yield {"section": f"orders.{row['currency']}", "name": name, "value": value}
    pred = figures["prediction"]
    yield {"section": "prediction", "name": "state", "value": pred["state"]}
    for part in ("fit", "value"):
        for name, value in (pred[part] or {}).items():
            yield {"section": f"prediction.{part}", "name": name, "value": value}


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


class ContactInsightViewSet(CSVAwareMixin, WorkspaceGenericViewSet):
    """One contact's figures and cross-app timeline (every role). Audit entries are in the timeline for
    admins only, as the audit log is."""

    queryset = Contact.objects.select_related("company")
    serializer_class = TimelineEntrySerializer
    filter_backends = []
    action_permissions = {"retrieve": READ, "timeline": READ}
    paginated_actions = ("timeline",)

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="No such contact.")},
        description="Profile, score and tier with their history, engagement counts per kind, orders per "
        "currency, RFM and the latest lifetime fit's prediction (`prediction.state`: no_fit, not_in_fit, "
        "not_predicted, predicted).",
    )
    def retrieve(self, request, pk=None):
        contact = self.get_object()
        figures = contact360.contact_figures(self.workspace, contact)
        if self.wants_csv():
            rows = ({**line, "value": _iso(line["value"])} for line in figure_lines(figures))
            return csv_download(rows, f"contact-{contact.pk}.csv", columns=["section", "name", "value"])
        return Response(figures)

    @extend_schema(responses=TimelineEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def timeline(self, request, pk=None):
        contact = self.get_object()
        rows = contact360.timeline(self.workspace, contact.pk, include_audit=request.tenant.allows(MANAGE))
        if self.wants_csv():
            return csv_download(
                (
                    TimelineEntrySerializer(contact360.entry(r)).data
                    for r in rows.iterator(chunk_size=CSV_CHUNK)
                ),
                f"contact-{contact.pk}-timeline.csv",
                columns=list(contact360.TIMELINE_COLUMNS),
            )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(
            TimelineEntrySerializer([contact360.entry(r) for r in page], many=True).data
        )
