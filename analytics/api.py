"""Analytics API under /api/v1/analytics/: orders (list, read, idempotent create by order id, delete,
import), campaign reports and overview, comparison with significance tests, channel ranking and
attribution. Every figure endpoint also answers ``?format=csv`` (streamed)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from aicmo.api import ID_SCHEMA, WorkspaceGenericViewSet, WorkspaceRelatedField
from aicmo.api.core import JobSerializer
from aicmo.api.errors import error_response
from aicmo.api.fields import SPREADSHEET_RULE, CalendarDateField, ColumnMappingField, spreadsheet_upload
from aicmo.api.filters import FilterSet, UtcIsoDateTimeFilter
from aicmo.api.idempotency import idempotent
from aicmo.api.schema import NO_NUL
from aicmo.roles import READ
from crm.models import Contact
from publishing.models import Campaign

from . import (
    api_cohorts,
    api_contacts,
    api_scores,
    api_trends,
    assets,
    attribution,
    importing,
    kpis,
    metrics,
    orders,
    selectors,
)
from .downloads import CSVAwareMixin, csv_download
from .lifetime_api import CustomerValueViewSet, LifetimeFitViewSet
from .models import Order, OrderSource
from .rollups import workspace_zone

MAX_COMPARED = 20
MAX_ATTRIBUTION_DAYS = 3660  # "At most ten years at once."
MAX_ID = 2**63 - 1


class OrderSerializer(serializers.ModelSerializer):
    contact = WorkspaceRelatedField(queryset=Contact.objects.all(), required=False, allow_null=True)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    # the rule of orders.clean_currency: three ASCII letters, upper-cased
    currency = serializers.RegexField(
        orders.CURRENCY_PATTERN, help_text="Three letters, e.g. EUR (upper-cased)."
    )

    class Meta:
        model = Order
        fields = ["id", "external_id", "contact", "ordered_at", "amount", "currency", "source", "created_at"]
        read_only_fields = ["source", "created_at"]
        # uniqueness is the service's idempotency rule (same id + same details = the stored order)
        validators = []


ORDER_MAPPING_RULE = (
    "Field → column header of the uploaded file, as JSON. Every header named must be one of the file's; "
    "order_id, ordered_at and amount are needed, and email or customer_id, and currency unless `currency` "
    'gives a default ("" leaves a field unmapped). Without a mapping, headers are matched to fields by their '
    "usual names (Shopify, WooCommerce, Stripe exports). A 400 names each faulty field (`mapping.<field>`)."
)


class OrderImportSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="Order id, customer email or id, date, amount, currency. " + SPREADSHEET_RULE
    )
    create_contacts = serializers.BooleanField(
        default=False, help_text="create unknown customers as contacts"
    )
    # the rule of orders.clean_currency: three ASCII letters, upper-cased
    currency = serializers.RegexField(
        orders.CURRENCY_PATTERN,
        required=False,
        allow_blank=True,
        help_text="ISO 4217 code for rows without one, e.g. EUR (three letters, upper-cased).",
    )
    # a JSON object in its own part of the multipart body
    mapping = ColumnMappingField(
        shape='{"field": "Column header"}',
        required=False,
        help_text=ORDER_MAPPING_RULE,
        request_schema={
            "type": "object",
            "properties": {name: {"type": "string", "pattern": NO_NUL} for name in importing.FIELDS},
            "additionalProperties": False,
            "description": ORDER_MAPPING_RULE,
        },
    )


class OrderFilter(FilterSet):
    ordered_after = UtcIsoDateTimeFilter(field_name="ordered_at", lookup_expr="gte")
    ordered_before = UtcIsoDateTimeFilter(field_name="ordered_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields = ["contact", "source", "currency"]


class OrderViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, WorkspaceGenericViewSet
):
    """Orders. POST is idempotent by ``external_id``: 201 when created, 200 with the stored order when the
    same order is sent again, 409 when that id exists with different details."""

    queryset = Order.objects.all()
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    search_fields = ["external_id"]
    ordering_fields = ["ordered_at", "amount", "id"]

    @extend_schema(
        responses={
            201: OrderSerializer,
            200: OrderSerializer,
            409: OpenApiResponse(description="The order id is already used with other details."),
        }
    )
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            result = orders.order_record(
                workspace=request.workspace,
                external_id=data["external_id"],
                ordered_at=data["ordered_at"],
                amount=data["amount"],
                currency=data["currency"],
                contact=data.get("contact"),
                source=OrderSource.API,
                by=request.user,
            )
        except orders.OrderConflict as exc:
            return error_response(
                "conflict",
                str(exc),
                status.HTTP_409_CONFLICT,
                {"external_id": ["Already used by another order."]},
            )
        return Response(
            self.get_serializer(result.order).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(request=spreadsheet_upload(OrderImportSerializer), responses={202: JobSerializer})
    @idempotent
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FormParser, JSONParser],
    )
    def import_orders(self, request):
        """Upload order history; answers 202 with the Job (progress, per-row errors at /api/v1/jobs/{id}/errors/)."""
        upload = OrderImportSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        d = upload.validated_data
        job = importing.order_import_start(
            workspace=request.workspace,
            fh=d["file"],
            name=d["file"].name,
            mapping=d.get("mapping") or None,
            create_contacts=d["create_contacts"],
            currency=d.get("currency") or "",
            by=request.user,
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    def perform_destroy(self, instance):
        orders.order_delete(order=instance, by=self.request.user)


class CampaignReportSerializer(serializers.Serializer):
    """Shape documentation: counters, ``delivery_receipts``, money as strings, rates as floats or null."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    channel = serializers.CharField()
    status = serializers.CharField()


class CompareQuery(serializers.Serializer):
    campaigns = serializers.CharField(help_text="comma-separated campaign ids; the first is the baseline")
    metric = serializers.ChoiceField(choices=sorted(metrics.PROPORTIONS), default="ctr")

    def validate_campaigns(self, value: str) -> list[int]:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not 2 <= len(parts) <= MAX_COMPARED:
            raise serializers.ValidationError(f"Give 2 to {MAX_COMPARED} campaign ids.")
        if not all(p.isascii() and p.isdigit() and 0 < int(p) <= MAX_ID for p in parts):
            raise serializers.ValidationError("Campaign ids are positive integers.")
        ids = list(dict.fromkeys(int(p) for p in parts))
        if len(ids) < 2:
            raise serializers.ValidationError("Give two different campaigns.")
        return ids


class ChannelQuery(serializers.Serializer):
    metric = serializers.ChoiceField(choices=selectors.RANKABLE, default="ctr")


class KpiQuery(serializers.Serializer):
    days = serializers.ChoiceField(choices=kpis.PERIODS, default=7, help_text="the period: last 7 or 30 days")
    date_to = CalendarDateField(
        required=False, help_text="last workspace-local day of the period (default: today)"
    )
    part = serializers.ChoiceField(
        choices=["kpis", "daily", "channels"],
        default="kpis",
        help_text="With format=csv: the KPIs (default), the daily series or the top channels.",
    )


class AttributionQuery(serializers.Serializer):
    model = serializers.ChoiceField(choices=attribution.MODELS, default="last_touch")
    window_days = serializers.IntegerField(min_value=1, max_value=365, default=30)
    date_from = CalendarDateField(
        required=False,
        help_text=f"first workspace-local day (default: 30 days before date_to); not after date_to, at most "
        f"{MAX_ATTRIBUTION_DAYS} days before it",
    )
    date_to = CalendarDateField(
        required=False, help_text="last workspace-local day (default: today); not before date_from"
    )

    def validate(self, attrs):
        zone = workspace_zone(self.context["workspace"].pk)
        today = datetime.now(UTC).astimezone(zone).date()
        last = attrs.get("date_to") or today
        first = attrs.get("date_from") or last - timedelta(days=30)
        if last < first:
            raise serializers.ValidationError({"date_to": "Ends before date_from."})
        if (last - first).days > MAX_ATTRIBUTION_DAYS:
            raise serializers.ValidationError({"date_from": "At most ten years at once."})
        attrs["start"] = datetime.combine(first, time.min, tzinfo=zone)
        attrs["end"] = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
        return attrs


# `campaigns` as the schema states it (CompareQuery.validate_campaigns enforces the same): 2-20 different ids,
# comma-separated (`?campaigns=3,5`, OpenAPI style form, explode false).
CAMPAIGNS_PARAM = OpenApiParameter(
    "campaigns",
    {"type": "array", "items": ID_SCHEMA, "minItems": 2, "maxItems": MAX_COMPARED, "uniqueItems": True},
    required=True,
    style="form",
    explode=False,
    description=f"2 to {MAX_COMPARED} different campaign ids, comma-separated; the first is the baseline.",
)

PART_PARAM = OpenApiParameter(
    "part",
    str,
    enum=["daily", "variants"],
    description="With format=csv: the daily rows (default) or the variants.",
)


def _query(serializer_class, request):
    query = serializer_class(data=request.query_params, context={"workspace": request.workspace})
    query.is_valid(raise_exception=True)
    return query.validated_data


class CampaignReportViewSet(CSVAwareMixin, WorkspaceGenericViewSet):
    """Campaign figures from rollups. List: one row per campaign (paginated; CSV streams every campaign)."""

    queryset = Campaign.objects.order_by("-created_at", "-id")
    serializer_class = CampaignReportSerializer
    filterset_fields = ["channel", "status"]
    search_fields = ["name"]
    ordering_fields = ["created_at", "name", "id"]
    query_parameters = {"retrieve": [PART_PARAM], "compare": [CompareQuery, CAMPAIGNS_PARAM]}
    CSV_CHUNK = 500

    def _rows(self, campaigns):
        return selectors.campaign_rows(self.workspace, campaigns)

    def _all_rows(self, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        for i in range(0, len(ids), self.CSV_CHUNK):
            chunk = ids[i : i + self.CSV_CHUNK]
            by_id = {c.pk: c for c in Campaign.objects.filter(pk__in=chunk)}
            yield from self._rows([by_id[pk] for pk in chunk])

    @extend_schema(responses=CampaignReportSerializer(many=True))
    def list(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        if self.wants_csv():
            return csv_download(self._all_rows(queryset), "campaigns.csv")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self._rows(page))

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def retrieve(self, request, pk=None):
        report = selectors.campaign_report(self.workspace, self.get_object())
        if self.wants_csv():
            part = request.query_params.get("part", "daily")
            rows = report["variants"] if part == "variants" else report["daily"]
            return csv_download(
                rows, f"campaign-{report['campaign_id']}-{'variants' if part == 'variants' else 'daily'}.csv"
            )
        return Response(report)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def compare(self, request):
        query = _query(CompareQuery, request)
        found = {c.pk: c for c in self.get_queryset().filter(pk__in=query["campaigns"])}
        missing = [i for i in query["campaigns"] if i not in found]
        if missing:
            return error_response(
                "not_found",
                "Unknown campaign.",
                status.HTTP_404_NOT_FOUND,
                {"campaigns": [str(m) for m in missing]},
            )
        result = selectors.campaign_comparison(
            self.workspace, [found[i] for i in query["campaigns"]], query["metric"]
        )
        if self.wants_csv():
            return csv_download(result["campaigns"], "campaign-comparison.csv")
        return Response(result)


class FiguresViewSet(CSVAwareMixin, WorkspaceGenericViewSet):
    """Workspace-wide figures: overview, channel ranking, attribution."""

    queryset = Campaign.objects.all()
    serializer_class = CampaignReportSerializer
    pagination_class = None
    filter_backends = []
    action_permissions = {
        "overview": READ,
        "channels": READ,
        "attribution": READ,
        "kpis": READ,
        "assets": READ,
    }
    query_parameters = {"channels": [ChannelQuery], "attribution": [AttributionQuery], "kpis": [KpiQuery]}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def overview(self, request):
        data = selectors.overview(self.workspace)
        if self.wants_csv():
            return csv_download([data], "overview.csv")
        return Response(data)

    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        description="The last 7 or 30 workspace-local days against the days before: sent, unique human opens, "
        "unique clicks, conversions, revenue, CTR and CTOR with their daily series, campaigns in flight and "
        "active, top channels (`analytics.kpis`).",
    )
    @action(detail=False, methods=["get"])
    def kpis(self, request):
        query = _query(KpiQuery, request)
        data = kpis.overview_kpis(self.workspace, days=int(query["days"]), date_to=query.get("date_to"))
        if self.wants_csv():
            part = query["part"]
            if part == "daily":
                return csv_download(data["daily"], f"kpis-{data['days']}d-daily.csv")
            if part == "channels":
                return csv_download(data["top_channels"], f"kpis-{data['days']}d-channels.csv")
            rows = ({k: v for k, v in row.items() if k != "series"} for row in data["kpis"])
            return csv_download(
                rows, f"kpis-{data['days']}d.csv", columns=["key", "label", "current", "previous", "change"]
            )
        return Response(data)

    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        description="Per media asset: the campaigns whose content carries it and their summed figures, and "
        "the impressions and clicks channels reported for the asset itself (`analytics.assets`).",
    )
    @action(detail=False, methods=["get"])
    def assets(self, request):
        rows = assets.asset_performance(self.workspace)
        if self.wants_csv():
            return csv_download(rows, "asset-performance.csv")
        return Response({"assets": rows})

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def channels(self, request):
        query = _query(ChannelQuery, request)
        rows = selectors.channel_ranking(self.workspace, query["metric"])
        if self.wants_csv():
            return csv_download(rows, "channels.csv")
        return Response({"metric": query["metric"], "channels": rows})

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def attribution(self, request):
        query = _query(AttributionQuery, request)
        result = attribution.attribute(
            self.workspace,
            model=query["model"],
            window_days=query["window_days"],
            first=query["start"],
            last=query["end"],
        )
        if self.wants_csv():
            return csv_download(result["rows"], f"attribution-{query['model']}.csv")
        return Response(result)


router = DefaultRouter()
router.register("orders", OrderViewSet, basename="analytics-order")
router.register("campaigns", CampaignReportViewSet, basename="analytics-campaign")
router.register("figures", FiguresViewSet, basename="analytics-figures")
router.register("scores", api_scores.ScoreSettingsViewSet, basename="analytics-scores")
router.register("scores/contacts", api_scores.ContactScoreViewSet, basename="analytics-contact-scores")
router.register("cohorts", api_cohorts.CohortViewSet, basename="analytics-cohorts")
router.register("contacts", api_contacts.ContactInsightViewSet, basename="analytics-contact")
router.register("trends", api_trends.TrendViewSet, basename="analytics-trends")
router.register("lifetime-fits", LifetimeFitViewSet, basename="analytics-lifetime-fit")
router.register("customer-values", CustomerValueViewSet, basename="analytics-lifetime-customer")

urlpatterns = router.urls
