"""Trend API: one rolled-up metric as a daily series with moving averages, period-over-period change,
slope and anomaly flags (JSON or ``?format=csv``, one row per day)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from aicmo.api import WorkspaceGenericViewSet
from aicmo.api.fields import FIRST_YEAR, CalendarDateField
from aicmo.conflicts import MISSING
from aicmo.roles import READ
from publishing.models import Campaign, Channel

from . import trends
from .downloads import CSVAwareMixin, csv_download
from .rollups import workspace_zone

MAX_DAYS = 1096
DEFAULT_DAYS = 90
MAX_ID = 2**63 - 1


class TrendQuerySerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=trends.METRICS, default="engagements")
    date_from = CalendarDateField(
        required=False,
        help_text=f"first local day (default: 89 days before date_to); not after date_to, at most {MAX_DAYS} "
        "days with it",
    )
    date_to = CalendarDateField(
        required=False, help_text="last local day (default: today); not before date_from"
    )
    campaign = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="one campaign"
    )
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    k = serializers.FloatField(
        required=False,
        min_value=1,
        max_value=50,
        help_text="anomaly cut-off in robust z (residual / (1.4826 × MAD)); default: the family-wise cut-off "
        "for the series' length (about 3 % of noise-only series get any flag)",
    )

    def validate(self, attrs):
        workspace = self.context["workspace"]
        today = datetime.now(UTC).astimezone(workspace_zone(workspace.pk)).date()
        last = attrs.get("date_to") or today
        first = attrs.get("date_from") or max(last - timedelta(days=DEFAULT_DAYS - 1), date(FIRST_YEAR, 1, 1))
        if last < first:
            raise serializers.ValidationError({"date_to": "Ends before date_from."})
        if (last - first).days >= MAX_DAYS:
            raise serializers.ValidationError({"date_from": f"At most {MAX_DAYS} days at once."})
        campaign = attrs.get("campaign")
        if campaign and not Campaign.objects.for_workspace(workspace).filter(pk=campaign).exists():
            # names no row of the workspace: a 404 in the API, like compare's ids (aicmo.conflicts.MISSING)
            raise serializers.ValidationError(
                {"campaign": [serializers.ErrorDetail("No such campaign.", MISSING)]}
            )
        # exactly the keyword arguments of `trends.trend`
        return {
            "metric": attrs["metric"],
            "first": first,
            "last": last,
            "campaign_id": campaign,
            "channel": attrs.get("channel"),
            "k": attrs.get("k"),
        }


class TrendViewSet(CSVAwareMixin, WorkspaceGenericViewSet):
    """A metric's daily trend in the workspace's time zone (see docs/ANALYTICS.md, Trends)."""

    queryset = Campaign.objects.all()
    serializer_class = TrendQuerySerializer
    pagination_class = None
    filter_backends = []
    action_permissions = {"series": READ}
    query_parameters = {"series": [TrendQuerySerializer]}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def series(self, request):
        query = TrendQuerySerializer(data=request.query_params, context={"workspace": self.workspace})
        query.is_valid(raise_exception=True)
        q = query.validated_data
        result = trends.trend(self.workspace, **q)
        if self.wants_csv():
            return csv_download(result["points"], f"trend-{q['metric']}.csv")
        return Response(result)
