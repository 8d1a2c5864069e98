"""Cohort API: the retention matrix (JSON or ``?format=csv``, one row per cohort × period) and "save this
cell as a static list" (crm's list services)."""

from __future__ import annotations

from datetime import UTC, datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from aicmo.api import WorkspaceGenericViewSet
from aicmo.api.fields import CalendarDateField
from aicmo.roles import READ, WRITE
from crm.models import Contact

from . import cohorts
from .downloads import CSVAwareMixin, csv_download
from .orders import default_currency
from .rollups import workspace_zone

MAX_COHORTS = 120
DEFAULT_COHORTS = 12


class CohortQuerySerializer(serializers.Serializer):
    basis = serializers.ChoiceField(choices=cohorts.BASES, default="first_seen")
    grain = serializers.ChoiceField(choices=cohorts.GRAINS, default="month")
    activity = serializers.ChoiceField(choices=cohorts.ACTIVITIES, default="engagement")
    date_from = CalendarDateField(
        required=False,
        help_text="first cohort: the week/month holding this local day (default: 11 before the last); not "
        f"after date_to's, at most {MAX_COHORTS} cohorts from it to date_to's",
    )
    date_to = CalendarDateField(
        required=False,
        help_text="last cohort: the week/month holding this local day (default: the current one); not before "
        "date_from's",
    )
    periods = serializers.IntegerField(min_value=1, max_value=cohorts.MAX_PERIODS, default=12)
    currency = serializers.RegexField(
        r"^[A-Za-z]{3}$", required=False, help_text="revenue currency (default: the workspace default)"
    )

    def validate(self, attrs):
        grain = attrs["grain"]
        zone = workspace_zone(self.context["workspace"].pk)
        today = datetime.now(UTC).astimezone(zone).date()
        last = cohorts.period_start(attrs.get("date_to") or today, grain)
        first = cohorts.period_start(
            attrs.get("date_from") or cohorts.add_periods(last, 1 - DEFAULT_COHORTS, grain), grain
        )
        if last < first:
            raise serializers.ValidationError({"date_to": "Ends before date_from."})
        if cohorts.period_index(first, last, grain) >= MAX_COHORTS:
            raise serializers.ValidationError({"date_from": f"At most {MAX_COHORTS} cohorts at once."})
        return cohorts.CohortQuery(
            basis=attrs["basis"],
            grain=grain,
            activity=attrs["activity"],
            first=first,
            last=last,
            periods=attrs["periods"],
            currency=(attrs.get("currency") or default_currency()).upper(),
        )


class CohortListSerializer(CohortQuerySerializer):
    cohort = CalendarDateField(help_text="the cohort: a local day in its week/month")
    period = serializers.IntegerField(min_value=0, max_value=cohorts.MAX_PERIODS - 1)
    name = serializers.CharField(max_length=120, help_text="name of the new static list")

    def validate(self, attrs):
        query = super().validate(attrs)
        return {
            "query": query,
            "cohort": cohorts.period_start(attrs["cohort"], query.grain),
            "period": attrs["period"],
            "name": attrs["name"],
        }


class SavedListSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    contacts = serializers.IntegerField(help_text="contacts added")


class CohortViewSet(CSVAwareMixin, WorkspaceGenericViewSet):
    """Retention by cohort in the workspace's time zone (see docs/ANALYTICS.md, Cohorts)."""

    queryset = Contact.objects.all()
    serializer_class = CohortQuerySerializer
    pagination_class = None
    filter_backends = []
    action_permissions = {"retention": READ, "save_list": WRITE}
    query_parameters = {"retention": [CohortQuerySerializer]}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def retention(self, request):
        query = CohortQuerySerializer(data=request.query_params, context={"workspace": self.workspace})
        query.is_valid(raise_exception=True)
        matrix = cohorts.cohort_matrix(self.workspace, query.validated_data)
        if self.wants_csv():
            return csv_download(cohorts.cohort_rows(matrix), "cohorts.csv")
        return Response(matrix)

    @extend_schema(request=CohortListSerializer, responses={201: SavedListSerializer})
    @action(detail=False, methods=["post"], url_path="save-list")
    def save_list(self, request):
        body = CohortListSerializer(data=request.data, context={"workspace": self.workspace})
        body.is_valid(raise_exception=True)
        saved, added = cohorts.cohort_cell_save_list(
            workspace=self.workspace, by=request.user, **body.validated_data
        )
        return Response(
            {"id": saved.pk, "name": saved.name, "contacts": added}, status=status.HTTP_201_CREATED
        )
