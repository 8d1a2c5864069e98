"""Campaigns: CRUD of drafts and the operator actions, each one call of the campaign services; plus the
engagement events (read-only)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from aicmo.api import WorkspaceGenericViewSet, WorkspaceReadOnlyViewSet, WorkspaceRelatedField
from aicmo.api.core import JobSerializer
from aicmo.api.fields import TimeZoneField
from aicmo.api.idempotency import idempotent
from aicmo.roles import APPROVE, READ

from ..models import Campaign, Content, Delivery, DeliveryStatus, EngagementEvent
from ..selectors import campaigns_for, deliveries_for, events_for
from ..services import approval
from ..services import campaigns as services
from ..services.audience import audience_estimate
from ..services.tracking import UTM_KEYS, utm_clean
from .content import CheckSerializer


class AudienceSerializer(serializers.Serializer):
    segments = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=100
    )
    lists = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=100)
    exclude_segments = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=100
    )
    exclude_lists = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=100
    )


UTM_MAX_LENGTH = 200
# Positive whole numbers of messages (PositiveIntegerField's column); null: no cap of the campaign's own.
LIMIT_MAX = 2**31 - 1


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            key: {"type": "string", "maxLength": UTM_MAX_LENGTH, "nullable": True} for key in UTM_KEYS
        },
        "additionalProperties": False,
        "description": "Defaults appended to every tracked link that does not carry its own `utm_*`; "
        "blank or null values are dropped.",
    }
)
class UtmField(serializers.JSONField):
    """A campaign's UTM defaults, cleaned by `tracking.utm_clean` (the admin form's rule too)."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("Give the UTM parameters as an object of utm_* keys.")
        too_long = [k for k, v in data.items() if isinstance(v, str) and len(v) > UTM_MAX_LENGTH]
        if too_long:
            raise serializers.ValidationError(f"{too_long[0]} must be text of at most 200 characters.")
        try:
            return utm_clean(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["utm"]) from None


def limit_field() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=LIMIT_MAX, allow_null=True, required=False)


class CampaignSerializer(serializers.ModelSerializer):
    content = WorkspaceRelatedField(queryset=Content.objects.all())
    audience = AudienceSerializer(required=False)
    utm = UtmField(required=False)
    time_zone = TimeZoneField(required=False)
    max_per_second = limit_field()
    max_per_hour = limit_field()
    needs_approval = serializers.SerializerMethodField(
        help_text="The workspace requires a reviewer's approval and this campaign has none yet."
    )
    job = JobSerializer(read_only=True, allow_null=True)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "content",
            "channel",
            "status",
            "audience",
            "time_zone",
            "scheduled_at",
            "started_at",
            "finished_at",
            "waiting_reason",
            "snapshot",
            "utm",
            "max_per_second",
            "max_per_hour",
            "needs_approval",
            "approved_at",
            "approved_by",
            "counts",
            "job",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "channel",
            "status",
            "approved_at",
            "approved_by",
            "scheduled_at",
            "started_at",
            "finished_at",
            "waiting_reason",
            "snapshot",
            "created_at",
            "updated_at",
        ]

    def get_needs_approval(self, obj) -> bool:
        if obj.approved_at is not None:
            return False
        required = self.context.setdefault("approval_required", {})  # one query per workspace and request
        if obj.workspace_id not in required:
            required[obj.workspace_id] = approval.approval_required(obj.workspace_id)
        return required[obj.workspace_id]

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_counts(self, obj) -> dict:
        return {s: getattr(obj, f"n_{s}", 0) for s in DeliveryStatus.values}


class ScheduleSerializer(serializers.Serializer):
    scheduled_at = serializers.DateTimeField(
        help_text="ISO 8601. Without an offset: wall-clock time in the campaign's time zone.",
        default_timezone=None,
    )


class EstimateSerializer(serializers.Serializer):
    expected = serializers.IntegerField()
    targeted = serializers.IntegerField()
    left_out = serializers.DictField(child=serializers.IntegerField())


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = [
            "id",
            "contact",
            "email",
            "status",
            "skip_reason",
            "attempts",
            "sent_at",
            "retry_at",
            "message_id",
            "provider",
            "error",
        ]


class CampaignViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    WorkspaceGenericViewSet,
):
    """Campaigns. Drafts are edited with PUT/PATCH; actions move the state machine (draft → scheduled →
    sending ↔ paused → sent, plus missed, cancelled, failed) and answer 409 naming the state when refused.
    ``send``, ``resume`` and ``resend-uncertain`` accept an ``Idempotency-Key`` header."""

    queryset = Campaign.objects.all()
    serializer_class = CampaignSerializer
    action_permissions = {"estimate": READ, "check": READ, "deliveries": READ, "approve": APPROVE}
    paginated_actions = ("deliveries",)
    query_parameters = {
        "deliveries": [
            OpenApiParameter("status", str, enum=list(DeliveryStatus.values), description="Only this status.")
        ]
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Campaign.objects.none()
        return campaigns_for(self.request.workspace)

    def _fresh(self, campaign: Campaign, http_status=status.HTTP_200_OK) -> Response:
        campaign = self.get_queryset().get(pk=campaign.pk)
        return Response(
            CampaignSerializer(campaign, context=self.get_serializer_context()).data, status=http_status
        )

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        campaign = services.campaign_create(
            workspace=request.workspace,
            name=data["name"],
            content=data["content"],
            audience=data.get("audience"),
            time_zone=data.get("time_zone", ""),
            utm=data.get("utm"),
            max_per_second=data.get("max_per_second"),
            max_per_hour=data.get("max_per_hour"),
            by=request.user,
        )
        return self._fresh(campaign, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        campaign = self.get_object()
        serializer = self.get_serializer(campaign, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        campaign = services.campaign_update(campaign=campaign, by=request.user, **serializer.validated_data)
        return self._fresh(campaign)

    @extend_schema(request=None, responses=EstimateSerializer)
    @action(detail=True, methods=["get"])
    def estimate(self, request, pk=None):
        """Expected recipients now, and why the others would be left out."""
        return Response(audience_estimate(self.get_object()).as_dict())

    @extend_schema(request=None, responses=CheckSerializer)
    @action(detail=True, methods=["get"])
    def check(self, request, pk=None):
        return Response(services.campaign_check(self.get_object()))

    @extend_schema(request=ScheduleSerializer, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def schedule(self, request, pk=None):
        campaign = self.get_object()
        serializer = ScheduleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = services.campaign_schedule(
            campaign=campaign, when=serializer.validated_data["scheduled_at"], by=request.user
        )
        return self._fresh(campaign)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """A reviewer's or admin's approval (the workspace's review rule, `services.approval`); 409 once the
        campaign is past review (sending, sent, cancelled …). Audited; any later edit withdraws it."""
        campaign = approval.campaign_approve(
            campaign=self.get_object(), by=request.user, role=request.tenant.role
        )
        return self._fresh(campaign)

    def _act(self, service, http_status=status.HTTP_200_OK) -> Response:
        return self._fresh(service(campaign=self.get_object(), by=self.request.user), http_status)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def unschedule(self, request, pk=None):
        return self._act(services.campaign_unschedule)

    @extend_schema(request=None, responses={202: CampaignSerializer})
    @idempotent
    @action(detail=True, methods=["post"])
    def send(self, request, pk=None):
        """Freeze the audience and start sending now (202; follow ``job`` for progress)."""
        return self._act(services.campaign_send_now, status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._act(services.campaign_pause)

    @extend_schema(request=None, responses={202: CampaignSerializer})
    @idempotent
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._act(services.campaign_resume, status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._act(services.campaign_cancel)

    @extend_schema(request=None, responses={202: CampaignSerializer})
    @idempotent
    @action(detail=True, methods=["post"], url_path="resend-uncertain")
    def resend_uncertain(self, request, pk=None):
        """Queue the deliveries marked uncertain again (their recipients may receive a second copy)."""
        campaign = self.get_object()
        services.campaign_resend_uncertain(campaign=campaign, by=request.user)
        return self._fresh(campaign, status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=DeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        queryset = deliveries_for(self.get_object())
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in DeliveryStatus.values:
                raise serializers.ValidationError({"status": f"One of {', '.join(DeliveryStatus.values)}."})
            queryset = queryset.filter(status=wanted)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)


class EngagementEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = EngagementEvent
        fields = [
            "id",
            "kind",
            "channel",
            "campaign",
            "delivery",
            "contact",
            "occurred_at",
            "value",
            "machine",
            "metadata",
        ]


class EngagementEventViewSet(WorkspaceReadOnlyViewSet):
    queryset = EngagementEvent.objects.all()
    serializer_class = EngagementEventSerializer
    filterset_fields = ["kind", "campaign", "machine"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return EngagementEvent.objects.none()
        return events_for(self.request.workspace)
