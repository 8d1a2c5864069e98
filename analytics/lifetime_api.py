"""Lifetime value API under /api/v1/analytics/: ``lifetime-fits/`` (list, read, latest, start a fit job
with an ``Idempotency-Key``) and ``customer-values/`` (per-contact values with filters, ordering and
pagination; ``distribution/`` of them)."""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from aicmo.api import WorkspaceGenericViewSet
from aicmo.api.core import JobSerializer
from aicmo.api.errors import error_response
from aicmo.api.fields import CalendarDateField
from aicmo.api.filters import FilterSet
from aicmo.api.idempotency import idempotent
from aicmo.roles import READ

from . import lifetime, lifetime_selectors, rfm
from .models import CUSTOMER_VALUE_FIGURES, CustomerValue, LifetimeFit
from .orders import CURRENCY_PATTERN


class LifetimeFitSerializer(serializers.ModelSerializer):
    job_status = serializers.CharField(source="job.status", default=None, read_only=True, allow_null=True)

    class Meta:
        model = LifetimeFit
        fields = [
            "id",
            "job",
            "job_status",
            "observation_date",
            "holdout_end",
            "currency",
            "months",
            "monthly_discount",
            "customers",
            "bgnbd",
            "gamma_gamma",
            "calibration",
            "error",
            "created_at",
            "finished_at",
        ]


class LifetimeFitStartSerializer(serializers.Serializer):
    observation_date = CalendarDateField(
        required=False,
        help_text="workspace-local day the summary is built as of (default: yesterday); not in the future",
    )
    holdout_end = CalendarDateField(
        required=False,
        allow_null=True,
        help_text="last day of a holdout period for the calibration table: after the observation date and "
        "not in the future (workspace-local)",
    )
    months = serializers.IntegerField(
        min_value=1, max_value=lifetime.MAX_MONTHS, default=12, help_text="CLV horizon"
    )
    monthly_discount = serializers.FloatField(
        min_value=0, max_value=1, default=0.01, help_text="discount rate per month (0.01 = 1 %)"
    )
    currency = serializers.RegexField(
        CURRENCY_PATTERN,
        required=False,
        allow_blank=True,
        help_text="orders in this currency, three letters (default: the workspace's)",
    )


class CustomerValueSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustomerValue
        fields = ["id", "contact", "fit", *CUSTOMER_VALUE_FIGURES]


class CustomerValueFilter(FilterSet):
    segment = django_filters.ChoiceFilter(choices=[(s, s) for s in rfm.SEGMENTS])
    r_score = django_filters.NumberFilter(min_value=1, max_value=5)
    f_score = django_filters.NumberFilter(min_value=1, max_value=5)
    m_score = django_filters.NumberFilter(min_value=1, max_value=5)
    min_clv = django_filters.NumberFilter(field_name="clv", lookup_expr="gte")
    max_clv = django_filters.NumberFilter(field_name="clv", lookup_expr="lt")
    min_p_alive = django_filters.NumberFilter(field_name="p_alive", lookup_expr="gte")

    class Meta:
        model = CustomerValue
        fields = ["contact", "segment", "r_score", "f_score", "m_score"]


class LifetimeFitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceGenericViewSet):
    """Fits of the lifetime-value models, newest first. POST starts a fit job (202 with the Job)."""

    queryset = LifetimeFit.objects.select_related("job")
    serializer_class = LifetimeFitSerializer
    filter_backends = []
    action_permissions = {"latest": READ}

    @extend_schema(
        request=LifetimeFitStartSerializer,
        responses={202: JobSerializer},  # the header and its 409/422: aicmo.api.idempotency + the schema hook
    )
    @idempotent
    def create(self, request):
        query = LifetimeFitStartSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        try:
            options = lifetime.clean_fit_options(workspace=request.workspace, **query.validated_data)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        job = lifetime.lifetime_fit_start(workspace=request.workspace, options=options, by=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={200: LifetimeFitSerializer, 404: OpenApiResponse(description="No finished fit yet.")}
    )
    @action(detail=False, methods=["get"])
    def latest(self, request):
        """The latest finished fit: parameters, diagnostics and calibration table."""
        fit = lifetime_selectors.latest_fit(self.workspace)
        if fit is None:
            return error_response(
                "not_found", "No finished lifetime-value fit yet.", status.HTTP_404_NOT_FOUND
            )
        return Response(self.get_serializer(fit).data)


class CustomerValueViewSet(mixins.ListModelMixin, WorkspaceGenericViewSet):
    """Per-contact lifetime values of the latest fit (paginated; filters by segment, scores, CLV and
    P(alive); ordering by clv, p_alive, revenue, expected_purchases)."""

    queryset = CustomerValue.objects.all()
    serializer_class = CustomerValueSerializer
    filterset_class = CustomerValueFilter
    ordering_fields = ["clv", "p_alive", "revenue", "expected_purchases", "contact"]
    action_permissions = {"distribution": READ}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def distribution(self, request):
        """CLV buckets, P(alive) tenths, RFM segments and the R × F grid (counts)."""
        return Response(lifetime_selectors.value_distribution(self.workspace))
